import { randomBytes } from 'node:crypto';
import type { PrismaClient } from '../../db/prisma.js';
import { queueKeys } from '../../redis/bullmq-keys.js';
import type { KeyLayout, QueueShard } from '../../redis/key-layout.js';
import type { RedisClient } from '../../redis/connection.js';
import type { FleetRunStatus } from '../../generated/prisma/enums.js';
import { runKeys } from './keys.js';
import { provesLoss, type RedisMarker } from './marker.js';
import { endStatus, isDone } from './lifecycle.js';
import { LiveRuns, type JobOutcomeRecord, type RunCounters } from './live.js';
import { RunActions } from './actions.js';
import { JobOutcomes } from './outcomes.js';
import { RunRecords, type RunRow } from './record.js';
import type { Scope } from '../scope.js';

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
  /** Why jobs failed or were skipped, row by row. */
  readonly outcomes: JobOutcomes;
  /** What operators did to runs. */
  readonly actions: RunActions;
  private readonly lives = new Map<string, LiveRuns>();

  constructor(
    prisma: PrismaClient,
    /** The non-blocking connection the store writes through, for other bookkeeping of the same process. */
    readonly redisConnection: RedisClient,
    private readonly layout: KeyLayout,
  ) {
    this.records = new RunRecords(prisma);
    this.outcomes = new JobOutcomes(prisma);
    this.actions = new RunActions(prisma);
  }

  /** The live side of one shard's runs: their keys go with the shard's queue. */
  live(shard: QueueShard): LiveRuns {
    let live = this.lives.get(shard.prefix);
    if (!live) {
      live = new LiveRuns(this.redisConnection, shard.prefix);
      this.lives.set(shard.prefix, live);
    }
    return live;
  }

  /** The family's first shard, which keeps what is one per run: its marker, its pace, its figures. */
  private first(family: string): LiveRuns {
    return this.live(this.layout.shards(family)[0]!);
  }

  private everyShard(family: string): LiveRuns[] {
    return this.layout.shards(family).map((shard) => this.live(shard));
  }

  /** Items grouped by the shard of their job id. */
  private byShard<T>(family: string, items: T[], jobIdOf: (item: T) => string): [QueueShard, T[]][] {
    const groups = new Map<QueueShard, T[]>();
    for (const item of items) {
      const shard = this.layout.shardOf(family, jobIdOf(item));
      const group = groups.get(shard);
      if (group) group.push(item);
      else groups.set(shard, [item]);
    }
    return [...groups];
  }

  /**
   * `origin` says who started the run: "cli user@host", "schedule NAME",
   * "dashboard". `paceMs`: the least time between two of its jobs' starts
   * (an operator's rate), none by default. `jobKey`: what its producer
   * seals its jobs with (see job-seal.ts); a run without one is judged as
   * runs made before jobs were sealed.
   */
  async create(
    runId: string,
    family: string,
    scope: Scope,
    { origin = null, paceMs = null, jobKey = null }: { origin?: string | null; paceMs?: number | null; jobKey?: string | null } = {},
  ): Promise<void> {
    const live = this.first(family);
    const marker = await live.marker();
    await this.records.create({ id: runId, family, scope, origin, jobKey, redisMarker: marker.id, redisAddress: live.address });
    await Promise.all(this.everyShard(family).map((shard) => shard.open(runId, family, paceMs)));
  }

  /**
   * Makes a run follow jobs that earlier runs queued for rows of its scope:
   * their outcomes count for it too, so that the run ends when those rows
   * are done. Returns how many it follows or counted at once, and the ids of
   * jobs that finished meanwhile (they need a fresh job).
   */
  async adopt(runId: string, family: string, jobIds: string[]): Promise<{ followed: number; gone: string[] }> {
    const results = await Promise.all(this.byShard(family, jobIds, (id) => id).map(([shard, ids]) => this.live(shard).adopt(runId, shard.queueName, ids)));
    return { followed: results.reduce((sum, r) => sum + r.followed, 0), gone: results.flatMap((r) => r.gone) };
  }

  /**
   * Of the jobs of a run being cancelled, hands those that other open runs
   * follow to one of them (the job runs for that run instead of being
   * dropped): cancelling a run never leaves another waiting for an outcome
   * that will not come. Returns the heir of each job handed over.
   */
  async handOver(family: string, runId: string, jobIds: string[]): Promise<Map<string, string>> {
    if (jobIds.length === 0) return new Map();
    const open = await this.records.openRunIds(family, runId);
    const heirs = await Promise.all(
      this.byShard(family, jobIds, (id) => id).map(([shard, ids]) => this.live(shard).handOver(shard.queueName, runId, open, ids)),
    );
    return new Map(heirs.flatMap((map) => [...map]));
  }

  /** Forgets a run that has no job at all, in Redis and in Postgres. */
  async discard(family: string, runId: string): Promise<void> {
    await Promise.all(this.everyShard(family).map((live) => live.drop(runId)));
    await this.records.discardEmpty(runId);
  }

  /** What an operator has done to the run, if anything (see RunRecords.operatorHold): what its producer must heed. */
  operatorHold(runId: string): Promise<'cancelled' | 'paused' | null> {
    return this.records.operatorHold(runId);
  }

  /** `totals`: the run's jobs in each of the family's shards, in shard order. */
  async markEnqueued(family: string, runId: string, totals: number[], alreadyQueued: number): Promise<void> {
    await Promise.all(this.everyShard(family).map((live, i) => live.markEnqueued(runId, totals[i] ?? 0)));
    await this.records.markEnqueued(
      runId,
      totals.reduce((sum, n) => sum + n, 0),
      alreadyQueued,
    );
    await this.finishIfDone(family, runId);
  }

  /**
   * Holds the run for its producer for `leaseMs` more, by Redis's clock:
   * until that lapses, reconcileRuns leaves an unsealed run alone. False
   * when the run is sealed already (an earlier lease lapsed): the producer
   * must add nothing more.
   */
  holdProducer(family: string, runId: string, leaseMs: number): Promise<boolean> {
    return this.first(family).holdProducer(runId, leaseMs);
  }

  /**
   * Notes the jobs the producer is about to add to the run, before it adds
   * them, and noteAdded once Redis has them: a producer killed in between
   * leaves them in its run's total all the same (sealAbandoned, and the
   * workers that count their outcomes, find them).
   */
  async noteAdding(family: string, runId: string, jobIds: string[]): Promise<void> {
    await Promise.all(this.byShard(family, jobIds, (id) => id).map(([shard, ids]) => this.live(shard).noteAdding(runId, ids)));
  }

  /** The jobs noted as being added to the run in one shard (`shard`: its index) are in Redis. */
  noteAdded(family: string, shard: number, runId: string): Promise<void> {
    return this.live(this.layout.shards(family)[shard]!).noteAdded(runId);
  }

  /**
   * Seals a run whose producer's lease has lapsed (its command killed, its
   * machine lost) with the jobs it noted, as the producer itself does when
   * it is stopped: the jobs it added still run and count, and the run can
   * end (reconcileRuns finishes it once they all have an outcome).
   * A run Redis has sealed already gets its record written, should the
   * record have missed it. Null when the run is left alone; `fresh` when
   * this call sealed it.
   */
  async sealAbandoned(family: string, runId: string): Promise<{ total: number; fresh: boolean } | null> {
    const [leased, ...others] = this.layout.shards(family);
    const first = await this.live(leased!).sealAbandoned(runId, leased!.queueName, true);
    if (!first) return null;
    const rest = await Promise.all(others.map((shard) => this.live(shard).sealAbandoned(runId, shard.queueName, false)));
    const shards = [first, ...rest.filter((sealed) => sealed !== null)];
    const total = shards.reduce((sum, shard) => sum + shard.total, 0);
    await this.records.markEnqueued(
      runId,
      total,
      shards.reduce((sum, shard) => sum + shard.followed, 0),
    );
    return { total, fresh: first.fresh };
  }

  /**
   * Records final job outcomes, each once: a job that runs again after a
   * crash (stalled, handed to another worker) finds its outcome already
   * recorded and counts nothing. Called before BullMQ marks the jobs
   * finished, so a crash in between loses no count. Finishes every run whose
   * last job this was. Every job is of `family`.
   *
   * Why a job failed or was skipped is noted first, in one statement, so
   * that a run never ends before its reasons can be read.
   */
  async record(family: string, outcomes: JobOutcomeRecord[]): Promise<void> {
    await this.outcomes.note(
      outcomes.flatMap(({ runId, jobId, outcome, why }) => (why && outcome !== 'completed' ? [{ runId, jobId, outcome, family, ...why }] : [])),
    );
    for (const [shard, group] of this.byShard(family, outcomes, (outcome) => outcome.jobId)) {
      // A shard that has every outcome of a run may not be the last one: finishIfDone adds the shards up.
      for (const { runId, revised, done } of await this.live(shard).record(group)) {
        if (revised) {
          await this.outcomes.clearFailures(
            runId,
            group.filter((outcome) => outcome.runId === runId && outcome.outcome !== 'failed').map((outcome) => outcome.jobId),
          );
          await this.finishIfDone(family, runId, { revise: true });
        }
        for (const id of done) await this.finishIfDone(family, id);
      }
    }
  }

  /**
   * How long, in ms, the run has stood at `done` outcomes as the looks of
   * every worker process saw it (reconcileRuns looks on every tick); null
   * for the first look at that count. Kept in Redis, not in the looking
   * process: a fleet whose processes are restarted more often than they
   * look twice (a crash loop, a deploy that rolls by) still sees a run that
   * stopped moving.
   */
  standing(family: string, runId: string, done: number): Promise<number | null> {
    return this.first(family).standing(runId, done);
  }

  /**
   * Counts the failures of the run's jobs that BullMQ recorded and the fleet
   * did not. A job failed for stalling too often is failed by BullMQ's
   * stalled check, and only reported, by an event, to the worker that ran
   * the check: a worker killed between the two left its run one outcome
   * short, never to end. Returns how many it counted.
   */
  async countMissedFailures(family: string, runId: string, since: Date): Promise<number> {
    let counted = 0;
    for (const shard of this.layout.shards(family)) {
      const ids = await this.live(shard).uncountedFailures(shard.queueName, runId, since.getTime());
      if (ids.length === 0) continue;
      await this.record(
        family,
        ids.map((jobId) => ({ runId, jobId, outcome: 'failed' as const })),
      );
      counted += ids.length;
    }
    return counted;
  }

  forget(family: string, runId: string, jobId: string): void {
    this.live(this.layout.shardOf(family, jobId)).forget(runId, jobId);
  }

  async flushForgotten(): Promise<void> {
    await Promise.all([...this.lives.values()].map((live) => live.flushForgotten()));
  }

  paceOf(family: string, runId: string): Promise<number | null> {
    return this.first(family).paceOf(runId);
  }

  follows(family: string, runId: string, jobId: string): Promise<boolean> {
    return this.live(this.layout.shardOf(family, jobId)).follows(runId, jobId);
  }

  hasOutcome(family: string, runId: string, jobId: string): Promise<boolean> {
    return this.live(this.layout.shardOf(family, jobId)).hasOutcome(runId, jobId);
  }

  /** The run's live counters, added up over the family's shards; null when a shard has none (lost). */
  async counters(family: string, runId: string): Promise<RunCounters | null> {
    const parts = await Promise.all(this.everyShard(family).map((live) => live.counters(runId)));
    if (parts.some((part) => part === null)) return null;
    return (parts as RunCounters[]).reduce((sum, part) => ({
      total: sum.total + part.total,
      completed: sum.completed + part.completed,
      skipped: sum.skipped + part.skipped,
      failed: sum.failed + part.failed,
      enqueued: sum.enqueued && part.enqueued,
      stats: Object.fromEntries(
        [...new Set([...Object.keys(sum.stats), ...Object.keys(part.stats)])].map((key) => [key, (sum.stats[key] ?? 0) + (part.stats[key] ?? 0)]),
      ),
    }));
  }

  addStat(family: string, runId: string, stat: string, n: number): Promise<void> {
    return this.first(family).addStat(runId, stat, n);
  }

  /** Writes the final counters to Postgres once every job of the run has an outcome (see RunRecords.finish). */
  async finishIfDone(family: string, runId: string, options: { revise?: boolean } = {}): Promise<boolean> {
    return this.records.finish(runId, await this.counters(family, runId), options);
  }

  /** The family's Redis marker, made if it has none (see LiveRuns.marker). */
  marker(family: string): Promise<RedisMarker> {
    return this.first(family).marker();
  }

  /** Where the family's run keys are, as runs record it. */
  address(family: string): string {
    return this.first(family).address;
  }

  /** Whether Redis holds the run's counters, in every shard. */
  async has(family: string, runId: string): Promise<boolean> {
    return (await Promise.all(this.everyShard(family).map((live) => live.has(runId)))).every(Boolean);
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
    if (await this.has(family, runId)) return 'live';
    const live = this.first(family);
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
      ...families.flatMap((family) =>
        this.layout.shards(family).flatMap((shard) => [runKeys(shard.prefix).marker, queueKeys(shard.prefix, shard.queueName).meta]),
      ),
      ...shared.map((name) => queueKeys(this.layout.shared, name).meta),
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
    const live = !row.finishedAt || row.status === 'INTERRUPTED' ? await this.counters(row.family, row.id) : null;
    const done = live !== null && isDone(live);
    const status = done ? endStatus(live) : live && row.status === 'INTERRUPTED' ? 'RUNNING' : row.status;
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
