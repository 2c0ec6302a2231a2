import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { PrismaClient } from '../db/prisma.js';
import type { FleetRunStatus } from '../generated/prisma/enums.js';
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
  /** False when Redis no longer has the run's counters (it was flushed or restarted). */
  live: boolean;
}

// Counts each (jobId, outcome) pair of ARGV once, and only if the run's hash
// still exists (a flushed Redis must not resurrect a run). Returns -1 for a
// lost run, 2 when every job of the run now has an outcome, 1 otherwise.
const RECORD_ONCE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HINCRBY', KEYS[1], ARGV[i + 1], 1)
  end
end
redis.call('EXPIRE', KEYS[2], 2592000) -- RUN_TTL_SECONDS
local c = redis.call('HMGET', KEYS[1], 'total', 'completed', 'skipped', 'failed', 'enqueued')
if c[5] == '1' and tonumber(c[2]) + tonumber(c[3]) + tonumber(c[4]) >= tonumber(c[1]) then return 2 end
return 1`;

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
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
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

  private key(runId: string): string {
    return `${this.prefix}:runs:${runId}`;
  }

  private pendingKey(runId: string): string {
    return `${this.prefix}:runs:${runId}:pending`;
  }

  async create(runId: string, family: string, scope: Scope): Promise<void> {
    await this.prisma.fleetRun.create({ data: { id: runId, family, scope } });
    await this.redis
      .multi()
      .hset(this.key(runId), { family, total: 0, completed: 0, skipped: 0, failed: 0, enqueued: 0 })
      .expire(this.key(runId), RUN_TTL_SECONDS)
      .exec();
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
        const state = await this.redis.eval(RECORD_ONCE, 2, this.key(runId), this.pendingKey(runId), ...args);
        if (state === 2) await this.finishIfDone(runId);
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

  /** Writes the final counters to Postgres once every job of the run has an outcome. */
  async finishIfDone(runId: string): Promise<boolean> {
    const counters = await this.counters(runId);
    if (!counters || !counters.enqueued) return false;
    if (counters.completed + counters.skipped + counters.failed < counters.total) return false;
    await this.prisma.fleetRun.updateMany({
      where: { id: runId, finishedAt: null },
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
   * A run that Postgres says is unfinished but whose counters Redis no longer
   * has lost its queued jobs with them: it is marked INTERRUPTED so nobody
   * waits for it, and a new enqueue picks up what is missing.
   */
  async markInterrupted(runId: string): Promise<void> {
    await this.prisma.fleetRun.updateMany({
      where: { id: runId, finishedAt: null },
      data: { status: 'INTERRUPTED', finishedAt: new Date() },
    });
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

  private async view(row: Awaited<ReturnType<PrismaClient['fleetRun']['findUniqueOrThrow']>>): Promise<RunView> {
    const live = row.finishedAt ? null : await this.counters(row.id);
    // The worker that counted a run's last job finishes it; if Postgres was
    // unreachable at that moment, whoever looks at the run next does.
    const finishedMeanwhile = live !== null && (await this.finishIfDone(row.id));
    if (finishedMeanwhile || (!row.finishedAt && !live && row.status !== 'ENQUEUEING')) {
      if (!finishedMeanwhile) await this.markInterrupted(row.id);
      const updated = await this.prisma.fleetRun.findUniqueOrThrow({ where: { id: row.id } });
      return this.view(updated);
    }
    return {
      id: row.id,
      family: row.family,
      scope: row.scope as unknown as Scope,
      status: row.status,
      alreadyQueued: row.alreadyQueued,
      startedAt: row.startedAt,
      enqueuedAt: row.enqueuedAt,
      finishedAt: row.finishedAt,
      live: live !== null,
      total: live?.total ?? row.total,
      completed: live?.completed ?? row.completed,
      skipped: live?.skipped ?? row.skipped,
      failed: live?.failed ?? row.failed,
      enqueued: live?.enqueued ?? row.status !== 'ENQUEUEING',
      stats: live?.stats ?? ((row.stats ?? {}) as Record<string, number>),
    };
  }
}
