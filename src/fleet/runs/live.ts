import { queueKeys } from '../../redis/bullmq-keys.js';
import type { RedisClient } from '../../redis/connection.js';
import { runKeys, type RunKeys } from './keys.js';
import { isDone } from './lifecycle.js';
import { ensureMarker, readMarker, redisAddressOf, type RedisMarker } from './marker.js';
import { runScripts } from './scripts.js';

/** Live counters outlive any sane run; the durable record is in Postgres. */
export const RUN_TTL_SECONDS = 30 * 24 * 3600;
const FORGET_BATCH = 1_000;
const FORGET_DELAY_MS = 200;

export interface RunCounters {
  /** The run's jobs; until it is enqueued, those its producer has added so far. */
  total: number;
  completed: number;
  skipped: number;
  failed: number;
  /** The producer has added every job of the run, so `total` is final. */
  enqueued: boolean;
  /** Figures the family's handlers add (calls made, rows updated...). */
  stats: Record<string, number>;
}

export interface JobOutcomeRecord {
  runId: string;
  jobId: string;
  outcome: 'completed' | 'skipped' | 'failed';
  /** Why a job failed or was skipped, and its row and attempts: kept in Postgres (JobOutcomes) for `tys why` and `tys jobs`. */
  why?: { key: string; reason: string; attempts: number };
}

/** What recording outcomes did to a run: whether its counters are gone, whether a failure turned into a success, which runs it finished. */
export interface RecordedOutcomes {
  runId: string;
  /** The run's counters are gone (its Redis lost them). */
  lost: boolean;
  /** A failure of the run turned into a success (a failed job retried). */
  revised: boolean;
  /** Runs (this one, runs that followed its jobs) that every job of has an outcome now. */
  done: string[];
}

/**
 * The Redis side of runs: a hash of live counters per run (cheap increments
 * from every worker, each job's outcome counted once), the jobs that later
 * runs follow, and this Redis's marker. Nothing here touches Postgres; the
 * durable record is RunRecords'.
 */
export class LiveRuns {
  private readonly forgotten = new Map<string, string[]>();
  private forgetTimer: NodeJS.Timeout | null = null;
  /**
   * The marker this process last saw in its Redis. If Redis later shows
   * another, the Redis lost its data in between: evidence for the runs of
   * the old marker, which only a process that saw both can give.
   */
  private seenMarker: RedisMarker | null = null;

  private readonly keys: RunKeys;
  private readonly scripts: ReturnType<typeof runScripts.on>;

  constructor(
    /** The non-blocking connection the counters are written through, for other bookkeeping of the same process. */
    readonly redis: RedisClient,
    private readonly prefix: string,
  ) {
    this.keys = runKeys(prefix);
    this.scripts = runScripts.on(redis);
  }

  private key(runId: string): string {
    return this.keys.run(runId);
  }

  /** Where this Redis keeps the fleet's keys (host:port/db/prefix), as runs record it. */
  get address(): string {
    return redisAddressOf(this.redis, this.prefix);
  }

  /** This Redis's marker, made if it has none; a change since this process last looked is recorded as a loss. */
  async marker(): Promise<RedisMarker> {
    this.seenMarker = await ensureMarker(this.redis, this.prefix, this.seenMarker);
    return this.seenMarker;
  }

  /**
   * This Redis's marker as it is, for a process that only reads; one that
   * has written here before (seen a marker) records a change it sees.
   */
  async currentMarker(): Promise<RedisMarker | null> {
    return this.seenMarker ? this.marker() : readMarker(this.redis, this.prefix);
  }

  /** Counters at zero; `paceMs` is the least time between two job starts of the run, if any. */
  async open(runId: string, family: string, paceMs: number | null): Promise<void> {
    await this.redis
      .multi()
      .hset(this.key(runId), { family, total: 0, completed: 0, skipped: 0, failed: 0, enqueued: 0, ...(paceMs ? { pace: paceMs } : {}) })
      .expire(this.key(runId), RUN_TTL_SECONDS)
      .exec();
  }

  async drop(runId: string): Promise<void> {
    await this.redis.del(this.key(runId), this.keys.pending(runId));
  }

  /** Seals the run with its total; a run Redis lost is not brought back, as a bare hash that reconcileRuns would take for live. */
  async markEnqueued(runId: string, total: number): Promise<void> {
    await this.scripts.setIfLive([this.key(runId)], ['total', total, 'enqueued', 1]);
  }

  /** See RunStore.holdProducer; only the family's first shard holds the lease. */
  async holdProducer(runId: string, leaseMs: number): Promise<boolean> {
    return (await this.scripts.holdProducer([this.key(runId)], [Math.ceil(leaseMs)])) === 1;
  }

  /** See RunStore.standing; only the family's first shard keeps the looks. */
  async standing(runId: string, done: number): Promise<number | null> {
    const ms = (await this.scripts.standing([this.key(runId)], [done])) as number;
    return ms < 0 ? null : ms;
  }

  /** See RunStore.noteAdding. */
  async noteAdding(runId: string, jobIds: readonly string[]): Promise<void> {
    if (jobIds.length > 0) await this.scripts.addingJobs([this.key(runId), this.keys.adding(runId)], [RUN_TTL_SECONDS, ...jobIds]);
  }

  /** See RunStore.noteAdded. */
  async noteAdded(runId: string): Promise<void> {
    await this.scripts.noteAdded([this.key(runId), this.keys.adding(runId)]);
  }

  /**
   * Seals the run with the jobs its producer noted, when nobody adds to it
   * any more: `leased` for the shard that holds the producer's lease, which
   * must have lapsed. What the shard holds, sealed now or before (`fresh`
   * false); null when it was left as it was.
   */
  async sealAbandoned(runId: string, queueName: string, leased: boolean): Promise<{ total: number; followed: number; fresh: boolean } | null> {
    const sealed = (await this.scripts.sealAbandoned(
      [this.key(runId), this.keys.adding(runId)],
      [leased ? '1' : '0', queueKeys(this.prefix, queueName).jobPrefix, runId],
    )) as [number, number, number] | null;
    return sealed ? { total: sealed[0], followed: sealed[1], fresh: sealed[2] === 1 } : null;
  }

  /** See RunStore.adopt. */
  async adopt(runId: string, queueName: string, jobIds: string[]): Promise<{ followed: number; gone: string[] }> {
    if (jobIds.length === 0) return { followed: 0, gone: [] };
    const queue = queueKeys(this.prefix, queueName);
    const [followed, counted, ...gone] = (await this.scripts.adopt(
      [this.keys.adopters, this.key(runId), this.keys.pending(runId), queue.completed, queue.failed],
      [queue.jobPrefix, this.keys.runPrefix, runId, RUN_TTL_SECONDS, ...jobIds],
    )) as [number, number, ...string[]];
    return { followed: followed + counted, gone };
  }

  /** Hands jobs of `runId` that runs of `openRunIds` follow to the first of those; returns each job's heir. */
  async handOver(queueName: string, runId: string, openRunIds: string[], jobIds: string[]): Promise<Map<string, string>> {
    if (jobIds.length === 0 || openRunIds.length === 0) return new Map();
    const pairs = (await this.scripts.handOver(
      [this.keys.adopters],
      [queueKeys(this.prefix, queueName).jobPrefix, runId, openRunIds.join(' '), ...jobIds],
    )) as string[];
    const heirs = new Map<string, string>();
    for (let i = 0; i < pairs.length; i += 2) heirs.set(pairs[i]!, pairs[i + 1]!);
    return heirs;
  }

  /**
   * Jobs of `runId` in the queue's failed set since `sinceMs` whose outcome
   * the run has not counted (see RunStore.countMissedFailures).
   */
  async uncountedFailures(queueName: string, runId: string, sinceMs: number): Promise<string[]> {
    const queue = queueKeys(this.prefix, queueName);
    return (await this.scripts.uncountedFailures([queue.failed, this.keys.pending(runId)], [queue.jobPrefix, runId, sinceMs])) as string[];
  }

  /** Counts each outcome once (see RunStore.record); one round trip per run in the list. */
  async record(outcomes: JobOutcomeRecord[]): Promise<RecordedOutcomes[]> {
    const byRun = new Map<string, string[]>();
    for (const { runId, jobId, outcome } of outcomes) {
      const args = byRun.get(runId) ?? [];
      args.push(jobId, outcome);
      byRun.set(runId, args);
    }
    return Promise.all(
      [...byRun].map(async ([runId, args]) => {
        const [lost, revised, ...touched] = (await this.scripts.recordOutcomes(
          [this.key(runId), this.keys.pending(runId), this.keys.adopters, this.keys.adding(runId)],
          [this.keys.runPrefix, RUN_TTL_SECONDS, ...args],
        )) as [number, number, ...(string | number)[]];
        const done: string[] = [];
        for (let i = 0; i < touched.length; i += 6) {
          const [id, total, completed, skipped, failed, enqueued] = touched.slice(i, i + 6) as [string, number, number, number, number, number];
          if (isDone({ total, completed, skipped, failed, enqueued: enqueued === 1 })) done.push(id);
        }
        return { runId, lost: lost === 1, revised: revised === 1, done };
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
    for (const [runId, ids] of batches) pipeline.hdel(this.keys.pending(runId), ...ids);
    await pipeline.exec();
  }

  /** The least ms between two job starts of the run, when it was started with a rate. */
  async paceOf(runId: string): Promise<number | null> {
    const pace = await this.redis.hget(this.key(runId), 'pace');
    return pace ? Number(pace) : null;
  }

  /** Whether the run follows the job (it adopted it from the run that added it). */
  async follows(runId: string, jobId: string): Promise<boolean> {
    return ((await this.redis.hget(this.keys.adopters, jobId)) ?? '').split(' ').includes(runId);
  }

  /** Whether the run has counted an outcome for this job. */
  async hasOutcome(runId: string, jobId: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.pending(runId), jobId)) === 1;
  }

  async counters(runId: string): Promise<RunCounters | null> {
    const raw = await this.redis.hgetall(this.key(runId));
    if (!raw.family) return null;
    const stats: Record<string, number> = {};
    for (const [field, value] of Object.entries(raw)) if (field.startsWith('stat:')) stats[field.slice(5)] = Number(value);
    return {
      // Until the run is sealed, the jobs its producer has noted so far: a total still growing.
      total: raw.enqueued === '1' ? Number(raw.total ?? 0) : Number(raw.added ?? 0) + Number(raw.followed ?? 0),
      completed: Number(raw.completed ?? 0),
      skipped: Number(raw.skipped ?? 0),
      failed: Number(raw.failed ?? 0),
      enqueued: raw.enqueued === '1',
      stats,
    };
  }

  /** Whether this Redis holds the run's counters. */
  async has(runId: string): Promise<boolean> {
    return (await this.redis.exists(this.key(runId))) === 1;
  }

  /** Adds to a named figure of a live run; nothing happens to a run Redis no longer has. */
  async addStat(runId: string, stat: string, n: number): Promise<void> {
    await this.scripts.addStat([this.key(runId)], [`stat:${stat}`, n]);
  }
}
