import { readFileSync } from 'node:fs';
import type { Job, Queue, Worker } from 'bullmq';
import { bullmq } from '../deps/bullmq.js';
import type { RedisClient } from '../redis/connection.js';
import type { Logger } from 'pino';
import { CronExpressionParser } from 'cron-parser';
import { parseDuration } from '../config/duration.js';
import { PermanentJobError } from './errors.js';
import type { JobFamily } from './family.js';
import type { EnqueueOptions, EnqueueResult } from './producer.js';
import { SCHEDULES_QUEUE } from './queues.js';
import { FleetWorker } from './tolerant-job.js';
import { isRowId, type RowScope } from './scope.js';

export interface Schedule {
  /** Also the BullMQ job scheduler id. */
  name: string;
  family: string;
  /** Cron pattern (minute hour day month weekday), or */
  pattern?: string;
  /** an interval such as "30s", "5m", "1h". */
  every?: string;
  scope: RowScope;
}

export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

function everyMs(every: string): number {
  const ms = parseDuration(every);
  if (ms === null || every.endsWith('ms') || ms < 1_000) throw new ScheduleError(`"every" must look like 30s, 5m or 1h (at least 1s), got "${every}"`);
  return ms;
}

/** Checks a cron pattern as BullMQ will read it (five fields, each in range), so that a bad one is refused before anything is installed. */
function checkPattern(pattern: string): void {
  if (pattern.trim().split(/\s+/).length !== 5) throw new ScheduleError(`"pattern" must be a 5-field cron pattern, got "${pattern}"`);
  try {
    CronExpressionParser.parse(pattern);
  } catch (error) {
    throw new ScheduleError(`"pattern" ${JSON.stringify(pattern)} is not a valid cron pattern (${(error as Error).message})`);
  }
}

function parseScope(where: string, raw: unknown): RowScope {
  if (raw === undefined) return { kind: 'all' };
  const scope = raw as Partial<Record<string, unknown>>;
  if (scope?.kind === 'all' || scope?.kind === 'changed') return { kind: scope.kind };
  if ((scope?.kind === 'portfolio' || scope?.kind === 'user') && isRowId(scope.id)) return { kind: scope.kind, id: scope.id };
  if (scope?.kind === 'investments' && Array.isArray(scope.ids) && scope.ids.every(isRowId)) return { kind: 'investments', ids: scope.ids };
  throw new ScheduleError(
    `${where}: scope must be {"kind":"all"}, {"kind":"changed"}, {"kind":"portfolio"|"user","id":ID} or {"kind":"investments","ids":[...]}`,
  );
}

/**
 * Reads and checks the whole schedule file before anything is installed:
 * every entry names a known family, a scope it takes, and exactly one of a
 * valid cron pattern or an interval. A file with bad entries is refused
 * whole, with every bad entry named.
 */
export function loadSchedules(file: string, families: readonly JobFamily[]): Schedule[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ScheduleError(`cannot read schedules from ${file}: ${(error as Error).message}`);
  }
  const list = (parsed as { schedules?: unknown })?.schedules;
  if (!Array.isArray(list)) throw new ScheduleError(`${file}: expected {"schedules": [...]}`);
  const names = new Set<string>();
  const problems: string[] = [];
  const schedules = list.flatMap((raw, i) => {
    try {
      return [checkEntry(raw as Record<string, unknown>, `schedule ${i + 1}`, names, families)];
    } catch (error) {
      if (!(error instanceof ScheduleError)) throw error;
      problems.push(error.message);
      return [];
    }
  });
  if (problems.length > 0) throw new ScheduleError(`${file}: nothing applied: ${problems.join('; ')}`);
  return schedules;
}

function checkEntry(entry: Record<string, unknown>, where: string, names: Set<string>, families: readonly JobFamily[]): Schedule {
  if (typeof entry.name !== 'string' || !NAME_PATTERN.test(entry.name)) {
    throw new ScheduleError(`${where}: "name" must be lowercase letters, digits and dashes`);
  }
  if (names.has(entry.name)) throw new ScheduleError(`${where}: name "${entry.name}" is used twice`);
  names.add(entry.name);
  const family = families.find((f) => f.name === entry.family);
  if (!family) {
    throw new ScheduleError(`${where} (${entry.name}): unknown family "${String(entry.family)}" (expected one of: ${families.map((f) => f.name).join(', ')})`);
  }
  const hasPattern = typeof entry.pattern === 'string';
  const hasEvery = typeof entry.every === 'string';
  if (hasPattern === hasEvery) throw new ScheduleError(`${where} (${entry.name}): give exactly one of "pattern" (cron) or "every"`);
  try {
    if (hasEvery) everyMs(entry.every as string);
    else checkPattern(entry.pattern as string);
  } catch (error) {
    throw new ScheduleError(`${where} (${entry.name}): ${(error as Error).message}`);
  }
  const scope = parseScope(where, entry.scope);
  if (!family.scopes.includes(scope.kind)) throw new ScheduleError(`${where} (${entry.name}): family ${family.name} does not take scope ${scope.kind}`);
  return { name: entry.name, family: family.name, scope, ...(hasPattern ? { pattern: entry.pattern as string } : { every: entry.every as string }) };
}

interface ScheduledEnqueue {
  family: string;
  scope: RowScope;
}

export interface ApplyReport {
  created: string[];
  updated: string[];
  unchanged: string[];
  removed: string[];
}

/**
 * Makes the job schedulers in Redis match the declared schedules: upserts the
 * ones that are new or changed, removes the ones no longer declared. Applying
 * the same file twice changes nothing.
 */
export async function applySchedules(queue: Queue, redis: RedisClient, schedules: Schedule[]): Promise<ApplyReport> {
  const report: ApplyReport = { created: [], updated: [], unchanged: [], removed: [] };
  const existing = new Map((await queue.getJobSchedulers(0, -1)).map((s) => [s.key, s]));
  for (const schedule of schedules) {
    const current = existing.get(schedule.name);
    existing.delete(schedule.name);
    const data: ScheduledEnqueue = { family: schedule.family, scope: schedule.scope };
    const every = schedule.every ? everyMs(schedule.every) : undefined;
    const same =
      current &&
      (current.pattern ?? undefined) === schedule.pattern &&
      (current.every === undefined || current.every === null ? undefined : Number(current.every)) === every &&
      JSON.stringify(current.template?.data) === JSON.stringify(data);
    if (same) {
      report.unchanged.push(schedule.name);
      continue;
    }
    await queue.upsertJobScheduler(schedule.name, schedule.pattern ? { pattern: schedule.pattern } : { every: every! }, {
      name: 'enqueue',
      data,
      opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
    });
    (current ? report.updated : report.created).push(schedule.name);
  }
  for (const name of existing.keys()) {
    await removeSchedule(queue, redis, name);
    report.removed.push(name);
  }
  return report;
}

/**
 * What a scheduler's last firing did. A firing that found nothing keeps no
 * run (runId null): this is where an operator sees that it did fire.
 */
export interface ScheduleFiring {
  at: string;
  runId: string | null;
  found: number;
  added: number;
  alreadyQueued: number;
  /** The firing was queued before its scheduler was removed, and did nothing. */
  removed?: boolean;
}

function lastFiringsKey(prefix: string): string {
  return `${prefix}:schedules:last-firing`;
}

/** The last firing of each scheduler that has fired, by scheduler name. */
export async function lastFirings(redis: RedisClient, prefix: string): Promise<Record<string, ScheduleFiring>> {
  const raw = await redis.hgetall(lastFiringsKey(prefix));
  const firings: Record<string, ScheduleFiring> = {};
  for (const [name, text] of Object.entries(raw)) {
    try {
      firings[name] = JSON.parse(text) as ScheduleFiring;
    } catch {
      // Not written by the fleet: shown as never fired rather than breaking the listing.
    }
  }
  return firings;
}

/** "2026-11-27T05:00:00.000Z: nothing to do", or the run it started. */
export function firingText(firing: ScheduleFiring | undefined): string {
  if (!firing) return 'never fired';
  if (!firing.runId) return `${firing.at}: nothing to do`;
  return `${firing.at}: ${firing.runId} (${firing.added} added, ${firing.alreadyQueued} already queued)`;
}

/** Removes a scheduler and the record of its last firing; false when there was none of that name. */
export async function removeSchedule(queue: Queue, redis: RedisClient, name: string): Promise<boolean> {
  await redis.hdel(lastFiringsKey(queue.opts.prefix ?? 'bull'), name);
  return queue.removeJobScheduler(name);
}

/** Runs the enqueues that the schedulers add: one at a time per process, each a normal run. */
export function startScheduleRunner(
  deps: {
    /** The runner's blocking connection. */
    connection: RedisClient;
    /** Where firings are written down. */
    producer: RedisClient;
    prefix: string;
    log: Logger;
    enqueue: (family: JobFamily, scope: RowScope, options: EnqueueOptions) => Promise<EnqueueResult>;
  },
  families: readonly JobFamily[],
): Worker {
  const schedulers = new bullmq.Queue(SCHEDULES_QUEUE, { connection: deps.producer, prefix: deps.prefix });
  const worker = new FleetWorker(
    SCHEDULES_QUEUE,
    async (job: Job<ScheduledEnqueue>) => {
      // A firing queued before its scheduler was removed: the operator removed the schedule, so it does nothing.
      if (job.repeatJobKey && !(await schedulers.getJobScheduler(job.repeatJobKey))) {
        deps.log.info({ schedule: job.repeatJobKey }, 'scheduled enqueue of a removed scheduler: not run');
        const skipped: ScheduleFiring = { at: new Date().toISOString(), runId: null, found: 0, added: 0, alreadyQueued: 0, removed: true };
        return skipped;
      }
      // Scheduler data lives in Redis, where anyone with access can write it:
      // checked again here, with the same rules as the file.
      const family = families.find((f) => f.name === job.data?.family);
      if (!family) throw new PermanentJobError(`scheduled job ${job.id} names unknown family "${String(job.data?.family).slice(0, 40)}"`);
      let scope: RowScope;
      try {
        scope = parseScope(`scheduled job ${job.id}`, job.data.scope);
      } catch (error) {
        throw new PermanentJobError((error as Error).message);
      }
      if (!family.scopes.includes(scope.kind)) throw new PermanentJobError(`scheduled job ${job.id}: family ${family.name} does not take scope ${scope.kind}`);
      const result = await deps.enqueue(family, scope, {
        keepEmpty: false,
        origin: `schedule ${job.repeatJobKey ?? job.name}`,
      });
      const firing: ScheduleFiring = {
        at: new Date().toISOString(),
        runId: result.runId,
        found: result.found,
        added: result.added,
        alreadyQueued: result.alreadyQueued,
      };
      const name = job.repeatJobKey ?? job.name;
      await deps.producer.hset(lastFiringsKey(deps.prefix), name, JSON.stringify(firing));
      deps.log.info({ schedule: name, ...firing }, 'scheduled enqueue');
      return firing;
    },
    { connection: deps.connection, prefix: deps.prefix, concurrency: 1 },
  );
  worker.on('closed', () => void schedulers.close());
  return worker;
}
