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

// Counts a job's outcome only if the run's hash still exists (a flushed
// Redis must not resurrect a run) and the job has not been counted already.
const RECORD_ONCE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
return 1`;

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

  private key(runId: string): string {
    return `${this.prefix}:runs:${runId}`;
  }

  async create(runId: string, family: string, scope: Scope): Promise<void> {
    await this.prisma.fleetRun.create({ data: { id: runId, family, scope } });
    await this.redis.hset(this.key(runId), { family, total: 0, completed: 0, skipped: 0, failed: 0, enqueued: 0 });
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
   * Records the final outcome of one job, once: a job that runs again after
   * a crash (stalled, handed to another worker) finds its outcome already
   * recorded and counts nothing. Called before BullMQ marks the job finished,
   * so a crash in between loses no count. Finishes the run when it was the last.
   */
  async record(runId: string, jobId: string, outcome: 'completed' | 'skipped' | 'failed'): Promise<void> {
    const counted = await this.redis.eval(RECORD_ONCE, 2, this.key(runId), `${this.key(runId)}:pending`, jobId, outcome);
    if (counted === 1) await this.finishIfDone(runId);
  }

  /** Drops the once-only marker of a job that BullMQ has marked finished; keeps memory bounded by concurrency. */
  async forget(runId: string, jobId: string): Promise<void> {
    await this.redis.hdel(`${this.key(runId)}:pending`, jobId);
  }

  async counters(runId: string): Promise<RunCounters | null> {
    const raw = await this.redis.hgetall(this.key(runId));
    if (!raw.family) return null;
    return {
      total: Number(raw.total ?? 0),
      completed: Number(raw.completed ?? 0),
      skipped: Number(raw.skipped ?? 0),
      failed: Number(raw.failed ?? 0),
      enqueued: raw.enqueued === '1',
    };
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
    if (!row.finishedAt && !live && row.status !== 'ENQUEUEING') {
      await this.markInterrupted(row.id);
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
    };
  }
}
