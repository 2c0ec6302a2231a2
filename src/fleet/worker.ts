import type { Job, Worker } from 'bullmq';
import { bullmq } from '../deps/bullmq.js';
import type { Logger } from 'pino';
import { loadMarketConfig, type MarketConfig } from '../config/market.js';
import type { PrismaClient } from '../db/prisma.js';
import { queueKeys } from '../redis/bullmq-keys.js';
import type { RedisClient } from '../redis/connection.js';
import type { KeyLayout } from '../redis/key-layout.js';
import { ForeignRunError, InvalidJobDataError, RateLimitedError, UntrustedJobError } from './errors.js';
import { Batcher } from './batcher.js';
import { FleetMetrics } from './metrics.js';
import type { DbHealth } from './db-health.js';
import { HOLD_IN_WORKER_MS, RunPacer } from './runs/pace.js';
import { RunGuard } from './runs/guard.js';
import { FleetWorker, mendUnreadableJobs, UNREADABLE_DATA } from './tolerant-job.js';
import { jobIdFor, type HandlerContext, type JobData, type JobFamily, type JobOutcome, type WorkItem } from './family.js';
import { RUN_ID_PATTERN, type JobOutcomeRecord, type RunStore } from './runs/store.js';

export interface FleetWorkerOptions {
  /** Overrides every family's own concurrency. */
  concurrency?: number;
  /** Overrides every family's own queue limiter. */
  limiter?: { max: number; duration: number };
  /** Lock duration in ms: a job whose worker stops renewing it is stalled and handed to another worker. Default 30 s. */
  lockDuration?: number;
  /** How often, in ms, workers look for stalled jobs to hand back. Default 30 s. */
  stalledInterval?: number;
  /** Database health to throttle on: while it gives a family a reason, that family's workers take no new job. Default none. */
  health?: DbHealth;
  /** Market-data settings handed to every handler. Default: read from the environment once, here. */
  market?: MarketConfig;
}

export interface FleetWorkers {
  workers: Worker<JobData, JobOutcome>[];
  /** Stops taking jobs, waits for active ones, closes the workers. */
  close(): Promise<void>;
}

/** Checks the shape of job data before any of it is used: jobs can be written into Redis by anyone. */
export function parseJobData(family: JobFamily, raw: unknown): JobData {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidJobDataError(`invalid job data for ${family.name}: expected an object with runId and key`);
  }
  const { runId, key, seal, by, [UNREADABLE_DATA]: unreadable } = raw as Record<string, unknown>;
  if (unreadable !== undefined)
    throw new InvalidJobDataError(`invalid job data for ${family.name}: ${typeof unreadable === 'string' ? unreadable.slice(0, 200) : preview(unreadable)}`);
  if (typeof runId !== 'string' || !RUN_ID_PATTERN.test(runId)) {
    throw new InvalidJobDataError(`invalid job data for ${family.name}: runId ${preview(runId)} is not a run id`);
  }
  if (typeof key !== 'string' || !family.isValidKey(key)) {
    throw new InvalidJobDataError(`invalid job data for ${family.name}: key ${preview(key)} is not a valid key`);
  }
  if (seal !== undefined && typeof seal !== 'string') throw new InvalidJobDataError(`invalid job data for ${family.name}: seal ${preview(seal)} is not a seal`);
  if (by !== undefined && (typeof by !== 'string' || !RUN_ID_PATTERN.test(by))) {
    throw new InvalidJobDataError(`invalid job data for ${family.name}: by ${preview(by)} is not a run id`);
  }
  return { runId, key, ...(seal !== undefined ? { seal } : {}), ...(by !== undefined ? { by } : {}) };
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

type WorkerDeps = { prisma: PrismaClient; connection: RedisClient; runs: RunStore; layout: KeyLayout; log: Logger };

/** What the workers of one process share. */
interface Shared {
  deps: WorkerDeps;
  options: FleetWorkerOptions;
  market: MarketConfig;
  metrics: FleetMetrics;
  guard: RunGuard;
  pacer: RunPacer;
  /**
   * Failures BullMQ reports without the processor having counted them
   * (stalled too often): counting is once-only, so the usual second report
   * of a failure already counted is harmless. close() waits for these.
   */
  settling: Set<Promise<void>>;
}

/** Starts one BullMQ worker per shard of each family, all in this process. */
export function startWorkers(deps: WorkerDeps, families: JobFamily[], options: FleetWorkerOptions = {}): FleetWorkers {
  const shared: Shared = {
    deps,
    options,
    // Read once: a malformed setting stops the start, not every job.
    market: options.market ?? loadMarketConfig(),
    metrics: new FleetMetrics(deps.runs.redisConnection, deps.layout.shared),
    guard: new RunGuard(deps.prisma, deps.runs),
    pacer: new RunPacer(deps.runs.redisConnection, deps.layout.shared),
    settling: new Set(),
  };
  const holds: (() => void)[] = [];
  const workers = families.flatMap((family) => {
    const log = deps.log.child({ family: family.name });
    // Errors whose failure the batch already counted, so the processor does not count them again.
    const counted = new WeakSet<object>();
    const batcher = familyBatcher(shared, family, handlerContext(shared, family, log), counted);
    const shards = deps.layout.shards(family.name);
    // A family's concurrency and limiter are the process's and the queue's
    // for the family as a whole: its shards share them.
    const concurrency = Math.ceil((options.concurrency ?? family.options.concurrency) / shards.length);
    const limiter = options.limiter ?? family.options.limiter;
    return shards.map((shard) => {
      const worker: Worker<JobData, JobOutcome> = new FleetWorker<JobData, JobOutcome>(
        shard.queueName,
        jobProcessor(shared, family, batcher, counted, () => worker, log),
        {
          connection: deps.connection,
          prefix: shard.prefix,
          concurrency,
          limiter: limiter && { ...limiter, max: Math.max(1, Math.floor(limiter.max / shards.length)) },
          lockDuration: options.lockDuration ?? 30_000,
          stalledInterval: options.stalledInterval ?? 30_000,
          autorun: true,
        },
      );
      countOutcomes(shared, family, worker, counted, log);
      worker.on('error', (error) => {
        if (!(error instanceof SyntaxError)) return;
        mendUnreadableJobs(deps.connection, queueKeys(shard.prefix, shard.queueName)).then(
          (mended) => mended.length > 0 && log.warn({ jobIds: mended }, 'fetched jobs BullMQ cannot read: they fail once they stall'),
          () => undefined,
        );
      });
      if (options.health) holds.push(holdWhileUnhealthy(worker, family.name, options.health, log));
      return worker;
    });
  });
  return {
    workers,
    async close() {
      for (const stop of holds) stop();
      await Promise.all(workers.map((worker) => worker.close()));
      await Promise.all([...shared.settling]);
      await deps.runs.flushForgotten();
      await shared.metrics.flush();
    },
  };
}

function handlerContext({ deps, market }: Shared, family: JobFamily, log: Logger): HandlerContext {
  return {
    market,
    prisma: deps.prisma,
    redis: deps.runs.redisConnection,
    prefix: deps.layout.shared,
    log,
    count: (runId, stat, n = 1) =>
      void deps.runs.addStat(family.name, runId, stat, n).catch((error) => log.warn({ err: error, runId, stat }, 'could not count')),
  };
}

/**
 * Hands the family's handler its jobs in batches and records their outcomes
 * in the same step, before BullMQ marks them finished. `counted` gets the
 * errors whose failure is recorded here.
 */
function familyBatcher({ deps, options, metrics }: Shared, family: JobFamily, context: HandlerContext, counted: WeakSet<object>) {
  return new Batcher<QueuedItem, JobOutcome>(async (entries) => {
    const results = await family.handle(
      context,
      entries.map((entry) => entry.work),
    );
    const finishedAt = Date.now();
    const durations = entries.map((entry) => finishedAt - entry.startedAt);
    options.health?.recordLatencies(family.name, durations);
    void metrics.recordDurations(family.name, durations).catch((error) => context.log.warn({ err: error }, 'could not record job durations'));
    const records: JobOutcomeRecord[] = [];
    results.forEach((result, i) => {
      const { work, final, attempts } = entries[i]!;
      const { runId, jobId, key } = work;
      if (!(result instanceof Error)) {
        if (result.status === 'skipped') records.push({ runId, jobId, outcome: 'skipped', why: { key, reason: result.reason, attempts } });
        else records.push({ runId, jobId, outcome: 'completed' });
      } else if (result instanceof RateLimitedError) {
        // Not an outcome: the job runs again once the window allows.
      } else if (final || result instanceof bullmq.UnrecoverableError) {
        records.push({ runId, jobId, outcome: 'failed', why: { key, reason: result.message, attempts } });
        counted.add(result);
      }
    });
    await deps.runs.record(family.name, records);
    return results;
  }, family.options.batch);
}

/** A job let through by its run, with its run's pace; or the outcome it ends with instead. */
type Admission = { data: JobData; paceMs: number | null } | { outcome: JobOutcome };

/**
 * Asks the job's run what to do with the job: run it, park it while the run
 * is paused (thrown as DelayedError), skip it or hand it over when the run
 * is being cancelled, or refuse it (thrown as ForeignRunError).
 */
async function admit({ deps, guard }: Shared, family: JobFamily, job: Job<JobData, JobOutcome>, token: string | undefined): Promise<Admission> {
  let data = parseJobData(family, job.data);
  let verdict = await guard.verdict(data, family.name, job.id!);
  if (verdict.kind === 'drop' || verdict.kind === 'ended') {
    // Its run is being cancelled, or has ended without it; a run that follows the job takes it over (see RunStore.handOver).
    const heir = (await deps.runs.handOver(family.name, data.runId, [job.id!])).get(job.id!);
    if (heir) {
      // Redis holds the new owner already (and who added the job); the failure and completion handlers read this copy.
      data = { ...data, runId: heir, by: data.by ?? data.runId };
      job.data = data;
      verdict = await guard.verdict(data, family.name, job.id!);
    }
  }
  const refusal = verdict.kind === 'refuse' || verdict.kind === 'ended' ? verdict.reason : misnamed(family, data.key, job.id!);
  if (refusal) throw new ForeignRunError(`job ${job.id} refused: ${refusal}`);
  if (verdict.kind === 'drop') return { outcome: { status: 'skipped', reason: verdict.reason } };
  if (verdict.kind === 'park') {
    // Its run is paused: the job waits aside, no attempt spent, until resume promotes it.
    await job.moveToDelayed(Date.now() + PARKED_MS, token);
    throw new bullmq.DelayedError();
  }
  return { data, paceMs: verdict.kind === 'run' ? verdict.paceMs : null };
}

/**
 * A job's way through: its run asked (see admit), its pace kept, then the
 * batch; a provider's rate limit holds the whole queue.
 */
function jobProcessor(
  shared: Shared,
  family: JobFamily,
  batcher: Batcher<QueuedItem, JobOutcome>,
  counted: WeakSet<object>,
  worker: () => Worker,
  log: Logger,
) {
  const { deps, pacer, metrics } = shared;
  return async (job: Job<JobData, JobOutcome>, token?: string): Promise<JobOutcome> => {
    try {
      let admitted = await admit(shared, family, job, token);
      if ('outcome' in admitted) return admitted.outcome;
      const wait = admitted.paceMs ? await pacer.waitFor(job, admitted.data.runId, admitted.paceMs) : 0;
      if (wait > HOLD_IN_WORKER_MS) {
        await job.moveToDelayed(Date.now() + wait, token);
        throw new bullmq.DelayedError();
      }
      if (wait > 0) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        // Its run may have been paused or cancelled while the job was held.
        admitted = await admit(shared, family, job, token);
        if ('outcome' in admitted) return admitted.outcome;
      }
      return await batcher.submit({
        work: { key: admitted.data.key, runId: admitted.data.runId, jobId: job.id! },
        final: isLastAttempt(job),
        attempts: job.attemptsMade + 1,
        startedAt: Date.now(),
      });
    } catch (error) {
      if (error instanceof RateLimitedError) {
        // Holds the whole queue back (every worker process) and puts the
        // job back without spending an attempt.
        await worker().rateLimit(error.delayMs);
        void metrics.recordRateLimitDelay(family.name, error.delayMs).catch(() => undefined);
        log.info({ jobId: job.id, delayMs: error.delayMs, reason: error.message }, 'rate limited');
        throw bullmq.Worker.RateLimitError();
      }
      const runId = error instanceof UntrustedJobError ? null : runIdOf(job);
      if (runId && isFinalAttempt(job, error) && !counted.has(error as object)) {
        await deps.runs.record(family.name, [{ runId, jobId: job.id!, outcome: 'failed', why: whyFailed(job, error, job.attemptsMade + 1) }]);
      }
      throw error;
    }
  };
}

/** Counts what BullMQ reports of the family's jobs: outcomes for the metrics, and final failures for their run (`counted`: the errors whose failure the batch end recorded already). */
function countOutcomes(
  { deps, metrics, settling }: Shared,
  family: JobFamily,
  worker: Worker<JobData, JobOutcome>,
  counted: WeakSet<object>,
  log: Logger,
): void {
  worker.on('completed', (job, result) => {
    const runId = runIdOf(job);
    if (runId) deps.runs.forget(family.name, runId, job.id!);
    metrics.countOutcome(family.name, result?.status === 'skipped' ? 'skipped' : 'completed');
  });
  worker.on('failed', (job, error) => {
    if (!job) return;
    const runId = error instanceof UntrustedJobError ? null : runIdOf(job);
    const final = Boolean(job.finishedOn);
    log.warn({ runId, jobId: job.id, attemptsMade: job.attemptsMade, final, reason: error.message }, 'job failed');
    metrics.countOutcome(family.name, final ? 'failed' : 'retried');
    if (!final || !runId || !job.id) return;
    // The failure stays on record (not forgotten), so that a retry that
    // succeeds later moves it to its new outcome instead of counting twice.
    // The batch end noted why already: the note would only cost a statement per job.
    const why = counted.has(error) ? undefined : whyFailed(job, error, job.attemptsMade);
    const pending = deps.runs
      .record(family.name, [{ runId, jobId: job.id, outcome: 'failed', why }])
      .catch((err) => log.error({ err, runId, jobId: job.id }, 'could not record job outcome'))
      .finally(() => settling.delete(pending));
    settling.add(pending);
  });
  worker.on('error', (error) => log.error({ err: error }, 'worker error'));
}

/**
 * The fleet names each job after its row (`lots-<id>`), which is what makes
 * enqueuing idempotent; a job under another name was not added by the fleet
 * and must not count for the run it names.
 */
function misnamed(family: JobFamily, key: string, jobId: string): string | null {
  const expected = jobIdFor(family, key);
  return jobId === expected ? null : `the fleet names the job of ${key} "${expected}", not "${jobId.slice(0, 60)}": nothing was changed`;
}

/**
 * Takes no new job while the database's health gives the family a reason
 * (active jobs finish), and takes jobs again once it gives none. Only this
 * process's worker pauses: every worker process watches the same database
 * and comes to the same answer. Returns the stop of the watch.
 */
function holdWhileUnhealthy(worker: Worker, family: string, health: DbHealth, log: Logger): () => void {
  let held = false;
  const timer = setInterval(() => {
    const reason = health.reason(family);
    if (reason && !held) {
      held = true;
      log.warn({ reason }, 'throttled: taking no new job');
      void worker.pause(true);
    } else if (!reason && held) {
      held = false;
      log.info('database healthy again: taking jobs');
      void worker.resume();
    }
  }, 250);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * How long a job of a paused run waits aside. Resuming promotes them at
 * once; this only bounds how long a job could stay aside if that failed
 * (it is then parked again if its run is still paused).
 */
const PARKED_MS = 10 * 60_000;

/** A job's work, and whether this is its last attempt (so a failure is final). */
interface QueuedItem {
  work: WorkItem;
  final: boolean;
  /** Attempts the job has made, this one included. */
  attempts: number;
  startedAt: number;
}

/** Why a job failed, for its run's notes: its row (when its data names one), the error, its attempts. */
function whyFailed(job: Job, error: unknown, attempts: number): JobOutcomeRecord['why'] {
  const key = (job.data as Partial<JobData> | undefined)?.key;
  return typeof key === 'string' ? { key, reason: error instanceof Error ? error.message : String(error), attempts } : undefined;
}

function isLastAttempt(job: Job): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/** Whether BullMQ will give up on the job after this error: no retry can follow. */
function isFinalAttempt(job: Job, error: unknown): boolean {
  if (error instanceof bullmq.UnrecoverableError) return true;
  if (
    error instanceof RateLimitedError ||
    error instanceof bullmq.DelayedError ||
    error instanceof bullmq.RateLimitError ||
    error instanceof bullmq.WaitingChildrenError
  )
    return false;
  return isLastAttempt(job);
}

/** The run id of a job, if its data has one of the right form (bad data still fails under its own run). */
function runIdOf(job: Job): string | null {
  const runId = (job.data as { runId?: unknown } | undefined)?.runId;
  return typeof runId === 'string' && RUN_ID_PATTERN.test(runId) ? runId : null;
}
