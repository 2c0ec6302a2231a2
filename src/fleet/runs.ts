import { randomBytes } from 'node:crypto';
import type { PrismaClient } from '../db/prisma.js';
import type { KeyLayout } from '../redis/key-layout.js';
import type { RedisClient } from '../redis/connection.js';
import type { FleetRunStatus } from '../generated/prisma/enums.js';
import { markerKey, provesLoss } from './redis-marker.js';
import { allCounted, LiveRuns, type JobOutcomeRecord, type RunCounters } from './runs-live.js';
import { RunRecords, type RunRow } from './runs-record.js';
import type { Scope } from './scope.js';

export type { JobOutcomeRecord, RunCounters };

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
 * Run bookkeeping: what the producer, the workers and the commands do to a
 * run, each step written to the side it belongs to, the live counters in
 * Redis (`live`) and the durable record in Postgres (`records`). Reads only
 * read; bringing the records in line with Redis is reconcileRuns's step.
 */
export class RunStore {
  readonly records: RunRecords;
  private readonly lives = new Map<string, LiveRuns>();

  constructor(
    prisma: PrismaClient,
    /** The non-blocking connection the store writes through, for other bookkeeping of the same process. */
    readonly redisConnection: RedisClient,
    private readonly layout: KeyLayout,
  ) {
    this.records = new RunRecords(prisma);
  }

  /** The live side of the family's runs: their keys go with the family's queue. */
  live(family: string): LiveRuns {
    const prefix = this.layout.family(family);
    let live = this.lives.get(prefix);
    if (!live) {
      live = new LiveRuns(this.redisConnection, prefix);
      this.lives.set(prefix, live);
    }
    return live;
  }

  /**
   * `origin` says who started the run: "cli user@host", "schedule NAME",
   * "dashboard". `paceMs`: the least time between two of its jobs' starts
   * (an operator's rate), none by default.
   */
  async create(runId: string, family: string, scope: Scope, origin: string | null = null, paceMs: number | null = null): Promise<void> {
    const live = this.live(family);
    const marker = await live.marker();
    await this.records.create({ id: runId, family, scope, origin, redisMarker: marker.id, redisAddress: live.address });
    await live.open(runId, family, paceMs);
  }

  /**
   * Makes a run follow jobs that earlier runs queued for rows of its scope:
   * their outcomes count for it too, so that the run ends when those rows
   * are done. Returns how many it follows or counted at once, and the ids of
   * jobs that finished meanwhile (they need a fresh job).
   */
  adopt(runId: string, family: string, jobIds: string[]): Promise<{ followed: number; gone: string[] }> {
    return this.live(family).adopt(runId, family, jobIds);
  }

  /**
   * Of the jobs of a run being cancelled, hands those that other open runs
   * follow to one of them (the job runs for that run instead of being
   * dropped): cancelling a run never leaves another waiting for an outcome
   * that will not come. Returns the heir of each job handed over.
   */
  async handOver(family: string, runId: string, jobIds: string[]): Promise<Map<string, string>> {
    if (jobIds.length === 0) return new Map();
    return this.live(family).handOver(family, runId, await this.records.openRunIds(family, runId), jobIds);
  }

  /** Forgets a run that has no job at all, in Redis and in Postgres. */
  async discard(family: string, runId: string): Promise<void> {
    await this.live(family).drop(runId);
    await this.records.discardEmpty(runId);
  }

  async markEnqueued(family: string, runId: string, total: number, alreadyQueued: number): Promise<void> {
    await this.live(family).markEnqueued(runId, total);
    await this.records.markEnqueued(runId, total, alreadyQueued);
    await this.finishIfDone(family, runId);
  }

  /**
   * Records final job outcomes, each once: a job that runs again after a
   * crash (stalled, handed to another worker) finds its outcome already
   * recorded and counts nothing. Called before BullMQ marks the jobs
   * finished, so a crash in between loses no count. Finishes every run whose
   * last job this was. Every job is of `family`.
   */
  async record(family: string, outcomes: JobOutcomeRecord[]): Promise<void> {
    for (const { runId, revised, done } of await this.live(family).record(outcomes)) {
      if (revised) await this.finishIfDone(family, runId, { revise: true });
      for (const id of done) await this.finishIfDone(family, id);
    }
  }

  forget(family: string, runId: string, jobId: string): void {
    this.live(family).forget(runId, jobId);
  }

  async flushForgotten(): Promise<void> {
    await Promise.all([...this.lives.values()].map((live) => live.flushForgotten()));
  }

  paceOf(family: string, runId: string): Promise<number | null> {
    return this.live(family).paceOf(runId);
  }

  hasOutcome(family: string, runId: string, jobId: string): Promise<boolean> {
    return this.live(family).hasOutcome(runId, jobId);
  }

  counters(family: string, runId: string): Promise<RunCounters | null> {
    return this.live(family).counters(runId);
  }

  addStat(family: string, runId: string, stat: string, n: number): Promise<void> {
    return this.live(family).addStat(runId, stat, n);
  }

  /** Writes the final counters to Postgres once every job of the run has an outcome (see RunRecords.finish). */
  async finishIfDone(family: string, runId: string, options: { revise?: boolean } = {}): Promise<boolean> {
    return this.records.finish(runId, await this.live(family).counters(runId), options);
  }

  /**
   * Marks a run INTERRUPTED: its Redis lost its jobs and counters, so nobody
   * should wait for it, and a new enqueue picks up what is missing. Only on
   * evidence (see liveness).
   */
  markInterrupted(runId: string): Promise<void> {
    return this.records.markInterrupted(runId);
  }

  /**
   * Whether this Redis holds the run's counters, or shows that it lost them
   * (provesLoss), or cannot tell.
   */
  async liveness(family: string, runId: string): Promise<'live' | 'lost' | 'unknown'> {
    const live = this.live(family);
    if (await live.has(runId)) return 'live';
    const run = await this.records.get(runId);
    return run && provesLoss(await live.currentMarker(), live.address, run) ? 'lost' : 'unknown';
  }

  async get(runId: string): Promise<RunView | null> {
    const row = await this.records.get(runId);
    return row ? this.view(row) : null;
  }

  async list(options: { family?: string; limit?: number } = {}): Promise<RunView[]> {
    return Promise.all((await this.records.list(options)).map((row) => this.view(row)));
  }

  /** Whether Redis has any trace of the fleet: a marker or a queue of `families`, or an auxiliary queue of `shared`. */
  async hasFleetData(families: readonly string[], shared: readonly string[]): Promise<boolean> {
    const keys = [
      ...families.flatMap((family) => [markerKey(this.layout.family(family)), `${this.layout.family(family)}:${family}:meta`]),
      ...shared.map((name) => `${this.layout.shared}:${name}:meta`),
    ];
    // One key per command: on a cluster the keys live in different slots.
    return (await Promise.all(keys.map((key) => this.redisConnection.exists(key)))).some((found) => found === 1);
  }

  /**
   * The run as the durable record and this Redis's live counters show it.
   * Reads only: what it shows as finished, from live counters, the workers
   * write down (see reconcileRuns).
   */
  private async view(row: RunRow): Promise<RunView> {
    const live = !row.finishedAt || row.status === 'INTERRUPTED' ? await this.live(row.family).counters(row.id) : null;
    const done = live !== null && allCounted(live);
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
