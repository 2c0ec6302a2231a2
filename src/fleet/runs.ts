import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { PrismaClient } from '../db/prisma.js';
import type { FleetRunStatus } from '../generated/prisma/enums.js';
import { ensureMarker, provesLoss, readMarker, redisAddressOf, type RedisMarker } from './redis-marker.js';
import type { Scope } from './scope.js';

export interface RunCounters {
  total: number;
  completed: number;
  skipped: number;
  failed: number;
  /** The producer has added every job of the run, so `total` is final. */
  enqueued: boolean;
  /** Figures the family's handlers add (calls made, rows updated...). */
  stats: Record<string, number>;
}

export interface RunView extends RunCounters {
  id: string;
  family: string;
  scope: Scope;
  status: FleetRunStatus;
  alreadyQueued: number;
  startedAt: Date;
  enqueuedAt: Date | null;
  finishedAt: Date | null;
  /** False when this Redis has no counters of the run (lost, or the command looks at another Redis). */
  live: boolean;
  /** The marker of the Redis that holds the run's jobs and counters. */
  redisMarker: string | null;
  /** Who started the run. */
  origin: string | null;
}

// Counts each (jobId, outcome) pair of ARGV (from ARGV[2]) once, and only
// if the run's hash still exists (a flushed Redis must not resurrect a run).
// A job that later runs adopted (an enqueue that found it still queued) is
// counted for them too, once. A job that failed and succeeds when retried
// (from the board) moves from failed to its new outcome. Returns {state,
// revised, adopter runs now done...}: state -1 for a lost run, 2 when every
// job of the run has an outcome, 1 otherwise; revised 1 when a failure of
// the run turned into a success. ARGV[1] is the prefix of run keys.
const RECORD_ONCE = `
local revised = 0
local function count(hash, pending, jobId, outcome)
  if redis.call('EXISTS', hash) == 0 then return false end
  local previous = redis.call('HGET', pending, jobId)
  if not previous then
    redis.call('HSET', pending, jobId, outcome)
    redis.call('HINCRBY', hash, outcome, 1)
  elseif previous == 'failed' and outcome ~= 'failed' then
    redis.call('HSET', pending, jobId, outcome)
    redis.call('HINCRBY', hash, 'failed', -1)
    redis.call('HINCRBY', hash, outcome, 1)
    if hash == KEYS[1] then revised = 1 end
  end
  redis.call('EXPIRE', pending, 2592000) -- RUN_TTL_SECONDS
  return true
end
local function done(hash)
  local c = redis.call('HMGET', hash, 'total', 'completed', 'skipped', 'failed', 'enqueued')
  return c[5] == '1' and tonumber(c[2]) + tonumber(c[3]) + tonumber(c[4]) >= tonumber(c[1])
end
local own = redis.call('EXISTS', KEYS[1]) == 1
local result = {1, 0}
for i = 2, #ARGV, 2 do
  local jobId, outcome = ARGV[i], ARGV[i + 1]
  if own then count(KEYS[1], KEYS[2], jobId, outcome) end
  local adopters = redis.call('HGET', KEYS[3], jobId)
  if adopters then
    for runId in string.gmatch(adopters, '%S+') do
      local hash = ARGV[1] .. runId
      if count(hash, hash .. ':pending', jobId, outcome) and done(hash) then result[#result + 1] = runId end
    end
    redis.call('HDEL', KEYS[3], jobId)
  end
end
if not own then result[1] = -1 elseif done(KEYS[1]) then result[1] = 2 end
result[2] = revised
return result`;

// Makes a run (ARGV[3]) follow jobs of earlier runs that are still queued
// or active (ARGV from 4: job ids; ARGV[1]: the queue's key prefix; ARGV[2]:
// the prefix of run keys). A job whose outcome its own run has already
// counted is counted for this run at once. Returns {followed, counted,
// ids of jobs that finished meanwhile...}: those need a fresh job.
const ADOPT = `
local followed, counted, gone = 0, 0, {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local data = redis.call('HGET', ARGV[1] .. id, 'data')
  local outcome = false
  if data then
    local ok, job = pcall(cjson.decode, data)
    if ok and type(job) == 'table' and type(job.runId) == 'string' then
      outcome = redis.call('HGET', ARGV[2] .. job.runId .. ':pending', id)
    end
  end
  -- A failure on record whose job is queued again (retried) is not final: it is followed.
  if outcome == 'failed' and not redis.call('ZSCORE', ARGV[1] .. 'failed', id) then outcome = false end
  if outcome then
    if redis.call('HSETNX', KEYS[3], id, outcome) == 1 then redis.call('HINCRBY', KEYS[2], outcome, 1) end
    counted = counted + 1
  elseif data and not redis.call('ZSCORE', ARGV[1] .. 'completed', id) and not redis.call('ZSCORE', ARGV[1] .. 'failed', id) then
    local current = redis.call('HGET', KEYS[1], id)
    if not current then
      redis.call('HSET', KEYS[1], id, ARGV[3])
    elseif not string.find(' ' .. current .. ' ', ' ' .. ARGV[3] .. ' ', 1, true) then
      redis.call('HSET', KEYS[1], id, current .. ' ' .. ARGV[3])
    end
    followed = followed + 1
  else
    gone[#gone + 1] = id
  end
end
redis.call('EXPIRE', KEYS[3], 2592000) -- RUN_TTL_SECONDS
local result = {followed, counted}
for _, id in ipairs(gone) do result[#result + 1] = id end
return result`;

// Hands jobs of a run being cancelled (ARGV[2]) that other runs follow to
// the first of those runs still open (ARGV[3]: their ids, space-separated),
// by rewriting the run id in the job's data, so that the followers still get
// the outcomes they wait for. ARGV[1]: the queue's key prefix; ARGV from 4:
// job ids. Returns {jobId, heir, ...} for each job handed over.
const HAND_OVER = `
local open = {}
for runId in string.gmatch(ARGV[3], '%S+') do open[runId] = true end
local handed = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local ok, job = pcall(cjson.decode, redis.call('HGET', ARGV[1] .. id, 'data') or '')
  if ok and type(job) == 'table' and job.runId ~= ARGV[2] and open[job.runId] then
    -- Handed over already (a worker fetched it before the cancel rewrote it).
    handed[#handed + 1] = id
    handed[#handed + 1] = job.runId
  elseif ok and type(job) == 'table' and job.runId == ARGV[2] then
    local heir = false
    for runId in string.gmatch(redis.call('HGET', KEYS[1], id) or '', '%S+') do
      if not heir and open[runId] then heir = runId end
    end
    if heir then
      -- The heir stays among the job's followers: a worker that took the job
      -- under the old run just before this still counts it for the heir
      -- (once: counting is once per run and job).
      job.runId = heir
      redis.call('HSET', ARGV[1] .. id, 'data', cjson.encode(job))
      handed[#handed + 1] = id
      handed[#handed + 1] = heir
    end
  end
end
return handed`;

/** Live counters outlive any sane run; the durable record is in Postgres. */
const RUN_TTL_SECONDS = 30 * 24 * 3600;
const ADD_STAT = `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2]) end`;
const FORGET_BATCH = 1_000;
const FORGET_DELAY_MS = 200;

export interface JobOutcomeRecord {
  runId: string;
  jobId: string;
  outcome: 'completed' | 'skipped' | 'failed';
}

/** Sortable by time, unique across machines, safe in Redis keys and job data. */
export function newRunId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `run-${stamp}-${randomBytes(3).toString('hex')}`;
}

export const RUN_ID_PATTERN = /^run-\d{8}T\d{6}Z-[0-9a-f]{6}$/;

/**
 * Run bookkeeping. Live counters are a Redis hash per run (cheap increments
 * from every worker); the durable record is a FleetRun row, written when the
 * run is created, when enqueueing ends and when the run finishes.
 */
export class RunStore {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** The non-blocking connection the store writes through, for other bookkeeping of the same process. */
  get redisConnection(): Redis {
    return this.redis;
  }

  private readonly forgotten = new Map<string, string[]>();
  private forgetTimer: NodeJS.Timeout | null = null;
  /**
   * The marker this process last saw in its Redis. If Redis later shows
   * another, the Redis lost its data in between: evidence for the runs of
   * the old marker, which only a process that saw both can give.
   */
  private seenMarker: RedisMarker | null = null;

  private key(runId: string): string {
    return `${this.prefix}:runs:${runId}`;
  }

  private pendingKey(runId: string): string {
    return `${this.prefix}:runs:${runId}:pending`;
  }

  private get adoptersKey(): string {
    return `${this.prefix}:runs:adopters`;
  }

  /** This Redis's marker, made if it has none; a change since this process last looked is recorded as a loss. */
  async marker(): Promise<RedisMarker> {
    this.seenMarker = await ensureMarker(this.redis, this.prefix, this.seenMarker);
    return this.seenMarker;
  }

  /**
   * `origin` says who started the run: "cli user@host", "schedule NAME",
   * "dashboard". `paceMs`: the least time between two of its jobs' starts
   * (an operator's rate), none by default.
   */
  async create(runId: string, family: string, scope: Scope, origin: string | null = null, paceMs: number | null = null): Promise<void> {
    const marker = await this.marker();
    await this.prisma.fleetRun.create({
      data: { id: runId, family, scope, origin, redisMarker: marker.id, redisAddress: redisAddressOf(this.redis, this.prefix) },
    });
    await this.redis
      .multi()
      .hset(this.key(runId), { family, total: 0, completed: 0, skipped: 0, failed: 0, enqueued: 0, ...(paceMs ? { pace: paceMs } : {}) })
      .expire(this.key(runId), RUN_TTL_SECONDS)
      .exec();
  }

  /**
   * Makes a run follow jobs that earlier runs queued for rows of its scope:
   * their outcomes count for it too, so that the run ends when those rows
   * are done. Returns how many it follows or counted at once, and the ids of
   * jobs that finished meanwhile (they need a fresh job).
   */
  async adopt(runId: string, queueName: string, jobIds: string[]): Promise<{ followed: number; gone: string[] }> {
    if (jobIds.length === 0) return { followed: 0, gone: [] };
    const [followed, counted, ...gone] = (await this.redis.eval(
      ADOPT,
      3,
      this.adoptersKey,
      this.key(runId),
      this.pendingKey(runId),
      `${this.prefix}:${queueName}:`,
      `${this.prefix}:runs:`,
      runId,
      ...jobIds,
    )) as [number, number, ...string[]];
    return { followed: followed + counted, gone };
  }

  /**
   * Of the jobs of a run being cancelled, hands those that other open runs
   * follow to one of them (the job runs for that run instead of being
   * dropped): cancelling a run never leaves another waiting for an outcome
   * that will not come. Returns the heir of each job handed over.
   */
  async handOver(queueName: string, runId: string, jobIds: string[]): Promise<Map<string, string>> {
    if (jobIds.length === 0) return new Map();
    const open = await this.prisma.fleetRun.findMany({
      where: { family: queueName, finishedAt: null, status: { in: ['ENQUEUEING', 'RUNNING', 'PAUSING', 'PAUSED'] }, id: { not: runId } },
      select: { id: true },
    });
    if (open.length === 0) return new Map();
    const pairs = (await this.redis.eval(
      HAND_OVER,
      1,
      this.adoptersKey,
      `${this.prefix}:${queueName}:`,
      runId,
      open.map((run) => run.id).join(' '),
      ...jobIds,
    )) as string[];
    const heirs = new Map<string, string>();
    for (let i = 0; i < pairs.length; i += 2) heirs.set(pairs[i]!, pairs[i + 1]!);
    return heirs;
  }

  /** Forgets a run that has no job at all, in Redis and in Postgres. */
  async discard(runId: string): Promise<void> {
    await this.redis.del(this.key(runId), this.pendingKey(runId));
    await this.prisma.fleetRun.deleteMany({ where: { id: runId, total: 0 } });
  }

  async markEnqueued(runId: string, total: number, alreadyQueued: number): Promise<void> {
    await this.redis.hset(this.key(runId), { total, enqueued: 1 });
    await this.prisma.fleetRun.update({
      where: { id: runId },
      data: { total, alreadyQueued, status: 'RUNNING', enqueuedAt: new Date() },
    });
    await this.finishIfDone(runId);
  }

  /**
   * Records final job outcomes, each once: a job that runs again after a
   * crash (stalled, handed to another worker) finds its outcome already
   * recorded and counts nothing. Called before BullMQ marks the jobs
   * finished, so a crash in between loses no count. One round trip per run
   * in the list; finishes every run whose last job this was.
   */
  async record(outcomes: JobOutcomeRecord[]): Promise<void> {
    const byRun = new Map<string, string[]>();
    for (const { runId, jobId, outcome } of outcomes) {
      const args = byRun.get(runId) ?? [];
      args.push(jobId, outcome);
      byRun.set(runId, args);
    }
    await Promise.all(
      [...byRun].map(async ([runId, args]) => {
        const [state, revised, ...adopters] = (await this.redis.eval(
          RECORD_ONCE,
          3,
          this.key(runId),
          this.pendingKey(runId),
          this.adoptersKey,
          `${this.prefix}:runs:`,
          ...args,
        )) as [number, number, ...string[]];
        if (revised === 1) await this.finishIfDone(runId, { revise: true });
        const done = state === 2 ? [runId, ...adopters] : adopters;
        for (const id of new Set(done)) await this.finishIfDone(id);
      }),
    );
  }

  /**
   * Drops the once-only markers of jobs that BullMQ has marked finished,
   * gathered and deleted together a moment later: memory stays bounded by
   * the jobs in flight, at a fraction of a round trip per job.
   */
  forget(runId: string, jobId: string): void {
    const ids = this.forgotten.get(runId) ?? [];
    ids.push(jobId);
    this.forgotten.set(runId, ids);
    if (ids.length >= FORGET_BATCH) void this.flushForgotten();
    else this.forgetTimer ??= setTimeout(() => void this.flushForgotten(), FORGET_DELAY_MS);
  }

  async flushForgotten(): Promise<void> {
    if (this.forgetTimer) clearTimeout(this.forgetTimer);
    this.forgetTimer = null;
    const batches = [...this.forgotten];
    this.forgotten.clear();
    if (batches.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const [runId, ids] of batches) pipeline.hdel(this.pendingKey(runId), ...ids);
    await pipeline.exec();
  }

  /** The least ms between two job starts of the run, when it was started with a rate. */
  async paceOf(runId: string): Promise<number | null> {
    const pace = await this.redis.hget(this.key(runId), 'pace');
    return pace ? Number(pace) : null;
  }

  /** Whether the run has counted an outcome for this job. */
  async hasOutcome(runId: string, jobId: string): Promise<boolean> {
    return (await this.redis.hexists(this.pendingKey(runId), jobId)) === 1;
  }

  async counters(runId: string): Promise<RunCounters | null> {
    const raw = await this.redis.hgetall(this.key(runId));
    if (!raw.family) return null;
    const stats: Record<string, number> = {};
    for (const [field, value] of Object.entries(raw)) if (field.startsWith('stat:')) stats[field.slice(5)] = Number(value);
    return {
      total: Number(raw.total ?? 0),
      completed: Number(raw.completed ?? 0),
      skipped: Number(raw.skipped ?? 0),
      failed: Number(raw.failed ?? 0),
      enqueued: raw.enqueued === '1',
      stats,
    };
  }

  /** Adds to a named figure of a live run; nothing happens to a run Redis no longer has. */
  async addStat(runId: string, stat: string, n: number): Promise<void> {
    await this.redis.eval(ADD_STAT, 1, this.key(runId), `stat:${stat}`, n);
  }

  /**
   * Writes the final counters to Postgres once every job of the run has an
   * outcome. `revise` also rewrites a run that ended FAILED: a failed job
   * retried since has succeeded.
   */
  async finishIfDone(runId: string, options: { revise?: boolean } = {}): Promise<boolean> {
    return this.finishWith(runId, await this.counters(runId), options);
  }

  /** finishIfDone on counters already read. */
  private async finishWith(runId: string, counters: RunCounters | null, options: { revise?: boolean } = {}): Promise<boolean> {
    if (!counters || !counters.enqueued) return false;
    if (counters.completed + counters.skipped + counters.failed < counters.total) return false;
    await this.prisma.fleetRun.updateMany({
      where: options.revise ? { id: runId, OR: [{ finishedAt: null }, { status: 'FAILED' }] } : { id: runId, finishedAt: null },
      data: {
        status: counters.failed > 0 ? 'FAILED' : 'COMPLETED',
        completed: counters.completed,
        skipped: counters.skipped,
        failed: counters.failed,
        stats: counters.stats,
        finishedAt: new Date(),
      },
    });
    return true;
  }

  /**
   * Marks a run INTERRUPTED: its Redis lost its jobs and counters, so nobody
   * should wait for it, and a new enqueue picks up what is missing. Only on
   * evidence (see provesLoss).
   */
  async markInterrupted(runId: string): Promise<void> {
    await this.prisma.fleetRun.updateMany({
      where: { id: runId, finishedAt: null },
      data: { status: 'INTERRUPTED', finishedAt: new Date() },
    });
  }

  /**
   * Whether this Redis holds the run's counters, or shows that it lost them,
   * or cannot tell. A process that has written to this Redis before also
   * records a marker change it sees; any other only reads.
   */
  async liveness(runId: string): Promise<'live' | 'lost' | 'unknown'> {
    if ((await this.redis.exists(this.key(runId))) === 1) return 'live';
    const run = await this.prisma.fleetRun.findUnique({ where: { id: runId }, select: { redisMarker: true, redisAddress: true } });
    const marker = this.seenMarker ? await this.marker() : await readMarker(this.redis, this.prefix);
    return run && provesLoss(marker, redisAddressOf(this.redis, this.prefix), run) ? 'lost' : 'unknown';
  }

  /**
   * Brings the durable records in line with what this Redis shows, for the
   * long-running processes of the fleet (workers): finishes runs whose last
   * job was counted while Postgres was unreachable, marks INTERRUPTED the
   * runs this Redis is shown to have lost, and puts back a run that an
   * earlier version marked INTERRUPTED while its counters were in fact live.
   * Also says how far each run still going has got.
   */
  async reconcile(): Promise<{ finished: number; interrupted: number; recovered: number; running: { id: string; done: number }[] }> {
    const marker = await this.marker();
    const rows = await this.prisma.fleetRun.findMany({
      where: {
        OR: [
          { finishedAt: null, status: { not: 'ENQUEUEING' } },
          { status: 'INTERRUPTED', finishedAt: { gte: new Date(Date.now() - RUN_TTL_SECONDS * 1000) } },
        ],
      },
      select: { id: true, status: true, redisMarker: true, redisAddress: true },
    });
    const result = { finished: 0, interrupted: 0, recovered: 0, running: [] as { id: string; done: number }[] };
    const exists = await Promise.all(rows.map((row) => this.redis.exists(this.key(row.id))));
    for (const [i, row] of rows.entries()) {
      if (exists[i] === 1) {
        if (row.status === 'INTERRUPTED') {
          await this.prisma.fleetRun.updateMany({ where: { id: row.id, status: 'INTERRUPTED' }, data: { status: 'RUNNING', finishedAt: null } });
          result.recovered += 1;
        }
        const counters = await this.counters(row.id);
        if (await this.finishWith(row.id, counters)) result.finished += 1;
        else if (counters) result.running.push({ id: row.id, done: counters.completed + counters.skipped + counters.failed });
      } else if (row.status !== 'INTERRUPTED' && provesLoss(marker, redisAddressOf(this.redis, this.prefix), row)) {
        await this.markInterrupted(row.id);
        result.interrupted += 1;
      }
    }
    return result;
  }

  async get(runId: string): Promise<RunView | null> {
    const row = await this.prisma.fleetRun.findUnique({ where: { id: runId } });
    if (!row) return null;
    return this.view(row);
  }

  async list(options: { family?: string; limit?: number } = {}): Promise<RunView[]> {
    const rows = await this.prisma.fleetRun.findMany({
      where: options.family ? { family: options.family } : {},
      orderBy: { startedAt: 'desc' },
      take: options.limit ?? 20,
    });
    return Promise.all(rows.map((row) => this.view(row)));
  }

  /** Whether this Redis has any trace of the fleet under the prefix: its marker, or a queue of `queueNames`. */
  async hasFleetData(queueNames: string[]): Promise<boolean> {
    const keys = [`${this.prefix}:fleet:marker`, ...queueNames.map((name) => `${this.prefix}:${name}:meta`)];
    return (await this.redis.exists(...keys)) > 0;
  }

  /**
   * The run as the durable record and this Redis's live counters show it.
   * Reads only: what it shows as finished, from live counters, the workers
   * write down (see reconcile).
   */
  private async view(row: Awaited<ReturnType<PrismaClient['fleetRun']['findUniqueOrThrow']>>): Promise<RunView> {
    const live = !row.finishedAt || row.status === 'INTERRUPTED' ? await this.counters(row.id) : null;
    const done = live !== null && live.enqueued && live.completed + live.skipped + live.failed >= live.total;
    const status = done ? (live.failed > 0 ? 'FAILED' : 'COMPLETED') : live && row.status === 'INTERRUPTED' ? 'RUNNING' : row.status;
    return {
      id: row.id,
      family: row.family,
      scope: row.scope as unknown as Scope,
      status,
      alreadyQueued: row.alreadyQueued,
      startedAt: row.startedAt,
      enqueuedAt: row.enqueuedAt,
      finishedAt: live ? (done ? (row.finishedAt ?? new Date()) : null) : row.finishedAt,
      live: live !== null,
      redisMarker: row.redisMarker,
      origin: row.origin,
      total: live?.total ?? row.total,
      completed: live?.completed ?? row.completed,
      skipped: live?.skipped ?? row.skipped,
      failed: live?.failed ?? row.failed,
      enqueued: live?.enqueued ?? row.status !== 'ENQUEUEING',
      stats: live?.stats ?? ((row.stats ?? {}) as Record<string, number>),
    };
  }
}
