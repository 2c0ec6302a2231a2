import { DelayedError, RateLimitError, UnrecoverableError, WaitingChildrenError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { PrismaClient } from '../db/prisma.js';
import { InvalidJobDataError } from './errors.js';
import type { JobData, JobFamily, JobOutcome } from './family.js';
import { RUN_ID_PATTERN, type RunStore } from './runs.js';

export interface FleetWorkerOptions {
  /** Overrides every family's own concurrency. */
  concurrency?: number;
  /** Lock duration in ms: a job whose worker stops renewing it is stalled and handed to another worker. Default 30 s. */
  lockDuration?: number;
  /** How often, in ms, workers look for stalled jobs to hand back. Default 30 s. */
  stalledInterval?: number;
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
  const { runId, key } = raw as Record<string, unknown>;
  if (typeof runId !== 'string' || !RUN_ID_PATTERN.test(runId)) {
    throw new InvalidJobDataError(`invalid job data for ${family.name}: runId ${preview(runId)} is not a run id`);
  }
  if (typeof key !== 'string' || !family.isValidKey(key)) {
    throw new InvalidJobDataError(`invalid job data for ${family.name}: key ${preview(key)} is not a valid key`);
  }
  return { runId, key };
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Starts one BullMQ worker per family, all in this process. */
export function startWorkers(
  deps: { prisma: PrismaClient; connection: Redis; runs: RunStore; prefix: string; log: Logger },
  families: JobFamily[],
  options: FleetWorkerOptions = {},
): FleetWorkers {
  // Once BullMQ has marked a job finished its once-only marker can go. A job
  // that failed without reaching the processor (stalled too often) is counted
  // here first; counting is once-only, so the usual double call is harmless.
  // close() waits for these.
  const settling = new Set<Promise<void>>();
  const settle = (job: Job, log: Logger, failed: boolean) => {
    const runId = runIdOf(job);
    if (!runId || !job.id) return;
    const jobId = job.id;
    const pending = (failed ? deps.runs.record(runId, jobId, 'failed') : Promise.resolve())
      .then(() => deps.runs.forget(runId, jobId))
      .catch((error) => log.error({ err: error, runId, jobId }, 'could not settle job outcome'))
      .finally(() => settling.delete(pending));
    settling.add(pending);
  };
  const workers = families.map((family) => {
    const log = deps.log.child({ family: family.name });
    const worker = new Worker<JobData, JobOutcome>(
      family.name,
      async (job: Job<JobData, JobOutcome>) => {
        const runId = runIdOf(job);
        try {
          const data = parseJobData(family, job.data);
          const jobLog = log.child({ runId: data.runId, jobId: job.id });
          const outcome = await family.handle({ prisma: deps.prisma, runId: data.runId, jobId: job.id!, log: jobLog }, data.key);
          await deps.runs.record(data.runId, job.id!, outcome.status === 'skipped' ? 'skipped' : 'completed');
          return outcome;
        } catch (error) {
          if (runId && isFinalAttempt(job, error)) await deps.runs.record(runId, job.id!, 'failed');
          throw error;
        }
      },
      {
        connection: deps.connection,
        prefix: deps.prefix,
        concurrency: options.concurrency ?? family.options.concurrency,
        limiter: family.options.limiter,
        lockDuration: options.lockDuration ?? 30_000,
        stalledInterval: options.stalledInterval ?? 30_000,
        autorun: true,
      },
    );
    worker.on('completed', (job) => settle(job, log, false));
    worker.on('failed', (job, error) => {
      if (!job) return;
      const runId = runIdOf(job);
      const final = Boolean(job.finishedOn);
      log.warn({ runId, jobId: job.id, attemptsMade: job.attemptsMade, final, reason: error.message }, 'job failed');
      if (final) settle(job, log, true);
    });
    worker.on('error', (error) => log.error({ err: error }, 'worker error'));
    return worker;
  });
  return {
    workers,
    async close() {
      await Promise.all(workers.map((worker) => worker.close()));
      await Promise.all([...settling]);
    },
  };
}

/** Whether BullMQ will give up on the job after this error: no retry can follow. */
function isFinalAttempt(job: Job, error: unknown): boolean {
  if (error instanceof UnrecoverableError) return true;
  if (error instanceof DelayedError || error instanceof RateLimitError || error instanceof WaitingChildrenError) return false;
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/** The run id of a job, if its data has one of the right form (bad data still fails under its own run). */
function runIdOf(job: Job): string | null {
  const runId = (job.data as { runId?: unknown } | undefined)?.runId;
  return typeof runId === 'string' && RUN_ID_PATTERN.test(runId) ? runId : null;
}
