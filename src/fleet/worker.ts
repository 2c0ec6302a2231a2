import { Worker, type Job } from 'bullmq';
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
  // Outcome bookkeeping runs after BullMQ's events; close() waits for it.
  const recording = new Set<Promise<void>>();
  const record = (runId: string, outcome: 'completed' | 'skipped' | 'failed', log: Logger, jobId?: string) => {
    const pending = deps.runs
      .record(runId, outcome)
      .catch((error) => log.error({ err: error, runId, jobId }, 'could not record job outcome'))
      .finally(() => recording.delete(pending));
    recording.add(pending);
  };
  const workers = families.map((family) => {
    const log = deps.log.child({ family: family.name });
    const worker = new Worker<JobData, JobOutcome>(
      family.name,
      async (job: Job<JobData, JobOutcome>) => {
        const data = parseJobData(family, job.data);
        const jobLog = log.child({ runId: data.runId, jobId: job.id });
        return family.handle({ prisma: deps.prisma, runId: data.runId, jobId: job.id!, log: jobLog }, data.key);
      },
      {
        connection: deps.connection,
        prefix: deps.prefix,
        concurrency: options.concurrency ?? family.options.concurrency,
        limiter: family.options.limiter,
        lockDuration: options.lockDuration ?? 30_000,
        autorun: true,
      },
    );
    worker.on('completed', (job, outcome) => {
      const runId = runIdOf(job);
      if (!runId) return;
      record(runId, outcome?.status === 'skipped' ? 'skipped' : 'completed', log, job.id);
    });
    worker.on('failed', (job, error) => {
      if (!job) return;
      const runId = runIdOf(job);
      const final = Boolean(job.finishedOn);
      log.warn({ runId, jobId: job.id, attemptsMade: job.attemptsMade, final, reason: error.message }, 'job failed');
      if (!runId || !final) return;
      record(runId, 'failed', log, job.id);
    });
    worker.on('error', (error) => log.error({ err: error }, 'worker error'));
    return worker;
  });
  return {
    workers,
    async close() {
      await Promise.all(workers.map((worker) => worker.close()));
      await Promise.all([...recording]);
    },
  };
}

/** The run id of a job, if its data has one of the right form (bad data still fails under its own run). */
function runIdOf(job: Job): string | null {
  const runId = (job.data as { runId?: unknown } | undefined)?.runId;
  return typeof runId === 'string' && RUN_ID_PATTERN.test(runId) ? runId : null;
}
