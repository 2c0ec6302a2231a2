import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { PrismaClient } from '../db/prisma.js';
import { retryTransient } from '../db/transient.js';
import { jobIdFor, type JobData, type JobFamily } from './family.js';
import { newRunId, type RunStore } from './runs.js';
import type { Scope } from './scope.js';

export interface EnqueueOptions {
  /** Keys read from the source query per page. Default 1,000. */
  pageSize?: number;
  /** Count what would be enqueued, add nothing. Default false. */
  dryRun?: boolean;
  /** Called after each page with the totals so far. */
  onProgress?: (progress: EnqueueProgress) => void;
}

export interface EnqueueProgress {
  /** Rows the source query returned: they still need the work. */
  found: number;
  /** New jobs added by this run. */
  added: number;
  /** Rows whose job was already waiting, delayed or active (from an earlier run). */
  alreadyQueued: number;
  /**
   * Rows whose earlier job had finished (failed, or completed while the row
   * still needs work) or was left broken by a loss of Redis: re-added.
   */
  requeued: number;
}

export interface EnqueueResult extends EnqueueProgress {
  runId: string | null;
}

/**
 * absent: no job. pending: a real job still waiting, delayed or active.
 * finished: a job that completed or failed. orphan: a job hash without data,
 * left when Redis lost keys under a running worker; BullMQ would take it for
 * a duplicate and add nothing, so it is removed like a finished job.
 */
type JobState = 'absent' | 'finished' | 'pending' | 'orphan';

/**
 * Streams the family's source query page by page and turns every key into a
 * job of one run. A key whose job is still pending is left alone; a key whose
 * job already finished but which the source query still selects (it failed, or
 * its row was changed back) gets a fresh job.
 */
export async function enqueue(
  deps: { prisma: PrismaClient; redis: Redis; queue: Queue<JobData>; runs: RunStore; prefix: string },
  family: JobFamily,
  scope: Scope,
  options: EnqueueOptions = {},
): Promise<EnqueueResult> {
  const pageSize = options.pageSize ?? 1_000;
  const progress: EnqueueProgress = { found: 0, added: 0, alreadyQueued: 0, requeued: 0 };
  const runId = options.dryRun ? null : newRunId();
  if (runId) await retryTransient(() => deps.runs.create(runId, family.name, scope));

  let after = '';
  let inFlight: Promise<unknown> = Promise.resolve();
  // Jobs Redis has accepted; `progress.added` runs ahead of it by the page in flight.
  let confirmed = 0;
  try {
    for (;;) {
      // Pages are reads: a dropped connection costs a pause, not the run.
      const keys = await retryTransient(() => family.source(deps.prisma, scope, after, pageSize));
      if (keys.length === 0) break;
      after = keys[keys.length - 1]!;
      progress.found += keys.length;
      const ids = keys.map((key) => jobIdFor(family, key));
      const states = await jobStates(deps.redis, deps.prefix, family.name, ids);
      const fresh: { key: string; id: string }[] = [];
      const finished: string[] = [];
      keys.forEach((key, i) => {
        const state = states[i]!;
        if (state === 'pending') progress.alreadyQueued += 1;
        else {
          if (state !== 'absent') finished.push(ids[i]!);
          fresh.push({ key, id: ids[i]! });
        }
      });
      if (options.dryRun) {
        progress.added += fresh.length;
        options.onProgress?.({ ...progress });
        continue;
      }
      // The previous page's addBulk overlaps this page's source query; wait for
      // it before the next one so at most one page is in flight.
      await inFlight;
      let toAdd = fresh;
      if (finished.length > 0) {
        // BullMQ refuses to remove a job a worker holds locked; such a row keeps
        // its job and is counted as already queued, not added.
        const removed = await Promise.all(finished.map((id) => deps.queue.remove(id)));
        const kept = new Set(finished.filter((_, i) => removed[i] !== 1));
        progress.requeued += finished.length - kept.size;
        progress.alreadyQueued += kept.size;
        if (kept.size > 0) toAdd = fresh.filter(({ id }) => !kept.has(id));
      }
      progress.added += toAdd.length;
      inFlight = deps.queue
        .addBulk(toAdd.map(({ key, id }) => ({ name: family.name, data: { runId: runId!, key }, opts: { jobId: id } })))
        .then(() => (confirmed += toAdd.length));
      options.onProgress?.({ ...progress });
    }
    await inFlight;
  } catch (error) {
    if (!runId) throw error;
    // The jobs already added run and count under this run: it is sealed with
    // them, so that it can finish and nobody waits for it forever.
    await inFlight.catch(() => undefined);
    await deps.runs.markEnqueued(runId, confirmed, progress.alreadyQueued).catch(() => undefined);
    throw new Error(
      `run ${runId} stopped enqueuing after ${confirmed} jobs (they still run): ${(error as Error).message}; enqueue again for the rest`,
      { cause: error },
    );
  }
  if (runId) await retryTransient(() => deps.runs.markEnqueued(runId, progress.added, progress.alreadyQueued));
  return { runId, ...progress };
}

/**
 * Which jobs of a page exist, and which of those have finished: one
 * pipelined round trip, and a second only for the ids that exist.
 */
async function jobStates(redis: Redis, prefix: string, queueName: string, ids: string[]): Promise<JobState[]> {
  const base = `${prefix}:${queueName}`;
  const exists = await execAll(redis, ids.map((id) => ['exists', `${base}:${id}`]));
  const present = ids.filter((_, i) => exists[i] === 1);
  if (present.length === 0) return ids.map(() => 'absent');
  const replies = await execAll(
    redis,
    present.flatMap((id) => [['hexists', `${base}:${id}`, 'data'], ['zscore', `${base}:completed`, id], ['zscore', `${base}:failed`, id]]),
  );
  const states = new Map<string, JobState>(
    present.map((id, i) => {
      const [hasData, completed, failed] = replies.slice(i * 3, i * 3 + 3);
      return [id, hasData !== 1 ? 'orphan' : completed !== null || failed !== null ? 'finished' : 'pending'];
    }),
  );
  return ids.map((id) => states.get(id) ?? 'absent');
}

async function execAll(redis: Redis, commands: string[][]): Promise<unknown[]> {
  const replies = (await redis.pipeline(commands).exec()) ?? [];
  return replies.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
