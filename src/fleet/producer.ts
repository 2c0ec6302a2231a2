import { setTimeout as delay } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { keysOfQueue, type QueueKeys } from '../redis/bullmq-keys.js';
import type { RedisClient } from '../redis/connection.js';
import type { PrismaClient } from '../db/prisma.js';
import { DEFAULT_PAGE_SIZE } from '../../bin/heap-limit.js';
import { retryTransient } from '../db/transient.js';
import { jobIdFor, type JobData, type JobFamily } from './family.js';
import { DEFAULT_PRODUCER_LEASE_MS, holdRunForProducer } from './runs/producer-lease.js';
import { removeJobs } from './queues.js';
import { addingWait, scheduledDelay } from './runs/pace.js';
import { newJobKey, sealOf } from './job-seal.js';
import { runScripts } from './runs/scripts.js';
import { newRunId, type RunStore } from './runs/store.js';
import type { Scope } from './scope.js';

export interface EnqueueOptions {
  /** Keys read from the source query per page. Default DEFAULT_PAGE_SIZE. */
  pageSize?: number;
  /** Count what would be enqueued, add nothing. Default false. */
  dryRun?: boolean;
  /** Called after each page with the totals so far. */
  onProgress?: (progress: EnqueueProgress) => void;
  /** Called once the run exists, before its first job is added. */
  onRun?: (runId: string) => void;
  /**
   * Called when the producer finds its paced run paused by an operator
   * (true), and when it goes on adding once the run is resumed (false).
   */
  onPaused?: (paused: boolean) => void;
  /**
   * Keep the record of a run that found no row to work on. Default true;
   * the schedule runner says false, or every firing that finds nothing
   * (every 5 minutes, say) would fill the run history with empty runs.
   */
  keepEmpty?: boolean;
  /** Who starts the run, recorded with it: "cli user@host", "schedule NAME". Default none. */
  origin?: string;
  /**
   * At most `max` of the run's jobs start per `windowMs`, spread evenly,
   * across every worker process; the family's other runs are not held.
   * Default none (the workers' own limits only).
   */
  rate?: { max: number; windowMs: number };
  /**
   * Stops the enqueue before its next page: the run is sealed with the jobs
   * already added, which still run, and the call rejects with the reason.
   * Default none.
   */
  signal?: AbortSignal;
  /**
   * How long, in ms, the run is held for this producer without word from
   * it; it renews the hold every quarter of that while it adds jobs. Should
   * it stop without sealing the run (killed, its machine lost), the workers
   * seal the run with the jobs it added once the hold lapses
   * (reconcileRuns). Default 60,000.
   */
  leaseMs?: number;
}

export interface EnqueueProgress {
  /** Rows the source query returned: they still need the work. */
  found: number;
  /** New jobs added by this run. */
  added: number;
  /**
   * Rows whose job was already waiting, delayed or active (from an earlier
   * run). The run follows those jobs: their outcomes count for it too.
   */
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

/** Where a family's jobs go: its shards' queues, in shard order, and the shard of a job id. */
export interface FamilyQueues {
  queues: Queue<JobData>[];
  shardOf(jobId: string): number;
}

/** What the producer reads from and writes to. */
export interface ProducerDeps {
  prisma: PrismaClient;
  redis: RedisClient;
  queues: FamilyQueues;
  runs: RunStore;
}

/** A job to add: its id, its row's key, and how long it waits before it may start (a paced run's schedule). */
interface NewJob {
  id: string;
  key: string;
  delayMs: number;
}

/** What one page did in one shard, and the add still in flight. */
interface ShardPage {
  added: number;
  alreadyQueued: number;
  requeued: number;
  adding: Promise<number>;
}

/**
 * Streams the family's source query page by page and turns every key into a
 * job of one run, in the shard its job id hashes to. A key whose job is
 * still pending is left alone; a key whose job already finished but which
 * the source query still selects (it failed, or its row was changed back)
 * gets a fresh job.
 */
export async function enqueue(deps: ProducerDeps, family: JobFamily, scope: Scope, options: EnqueueOptions = {}): Promise<EnqueueResult> {
  const runId = options.dryRun ? null : newRunId();
  // A paced run's jobs are added delayed until their slots, counted from
  // its first page (see scheduledDelay).
  const paceMs = options.rate ? options.rate.windowMs / options.rate.max : null;
  const jobKey = runId ? newJobKey() : null;
  if (runId) await retryTransient(() => deps.runs.create(runId, family.name, scope, { origin: options.origin ?? null, paceMs, jobKey: jobKey! }));
  if (runId) options.onRun?.(runId);
  const lease = runId ? await holdRunForProducer(deps.runs, family.name, runId, options.leaseMs ?? DEFAULT_PRODUCER_LEASE_MS) : null;
  const signal = lease ? AbortSignal.any([lease.signal, ...(options.signal ? [options.signal] : [])]) : options.signal;
  try {
    return await addRun(deps, family, scope, options, { runId, jobKey, paceMs, signal });
  } finally {
    lease?.release();
  }
}

/** enqueue's pages, once the run (if any) is created and held. */
async function addRun(
  deps: ProducerDeps,
  family: JobFamily,
  scope: Scope,
  options: EnqueueOptions,
  { runId, jobKey, paceMs, signal }: { runId: string | null; jobKey: string | null; paceMs: number | null; signal: AbortSignal | undefined },
): Promise<EnqueueResult> {
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const shards = deps.queues.queues;
  const progress: EnqueueProgress = { found: 0, added: 0, alreadyQueued: 0, requeued: 0 };
  let pacedFrom: number | null = null;

  let after = '';
  let inFlight: Promise<unknown> = Promise.resolve();
  // Per shard: jobs Redis has accepted, and jobs of earlier runs this run follows.
  const confirmed = shards.map(() => 0);
  const followed = shards.map(() => 0);
  try {
    for (;;) {
      signal?.throwIfAborted();
      if (runId && progress.found > 0) {
        // A run cancelled while its jobs are being added gets no more: its
        // workers would only refuse them. A paced one that is paused gets none
        // until it is resumed, and its schedule moves on by the pause: its
        // jobs would only pile up in Redis, then all be due at once. An
        // unpaced run is added whole, its adds brief (a scheduled enqueue
        // among them, which must not hold its worker's shutdown).
        const held = await heldByOperator(deps, runId, paceMs !== null, options, signal);
        if (held.cancelled) break;
        if (pacedFrom !== null) pacedFrom += held.pausedMs;
      }
      // A paced run's jobs are added a little ahead of their starts, not all at once (addingWait).
      const wait = paceMs === null || pacedFrom === null || options.dryRun ? 0 : addingWait(pacedFrom, progress.found, paceMs, Date.now());
      if (wait > 0) await waitUnlessStopped(wait, signal);
      // Pages are reads: a dropped connection costs a pause, not the run.
      const keys = await retryTransient(() => family.source(deps.prisma, scope, after, pageSize));
      if (keys.length === 0) break;
      after = keys[keys.length - 1]!;
      const now = Date.now();
      pacedFrom ??= now;
      const groups = shards.map((): NewJob[] => []);
      for (const [i, key] of keys.entries()) {
        const id = jobIdFor(family, key);
        const delayMs = paceMs === null ? 0 : scheduledDelay(pacedFrom, progress.found + i, paceMs, now);
        groups[deps.queues.shardOf(id)]!.push({ id, key, delayMs });
      }
      progress.found += keys.length;
      if (options.dryRun) {
        for (const [i, group] of groups.entries()) {
          if (group.length === 0) continue;
          const queued = (
            await jobStates(
              deps.redis,
              keysOfQueue(shards[i]!),
              group.map((job) => job.id),
            )
          ).filter((state) => state === 'pending').length;
          progress.alreadyQueued += queued;
          progress.added += group.length - queued;
        }
        options.onProgress?.({ ...progress });
        continue;
      }
      // The previous page's adds overlap this page's source query; wait for
      // them before the next one so at most one page is in flight.
      await inFlight;
      // Every shard's page is accounted for, even when another shard's fails:
      // the jobs it added belong to the run that is sealed with them.
      const pages = await Promise.allSettled(
        groups.map((group, i) =>
          group.length === 0 ? Promise.resolve(null) : enqueueInShard({ ...deps, queue: shards[i]! }, family, { id: runId!, jobKey: jobKey! }, group),
        ),
      );
      const adds: Promise<unknown>[] = [];
      for (const [i, settled] of pages.entries()) {
        const page = settled.status === 'fulfilled' ? settled.value : null;
        if (!page) continue;
        progress.added += page.added;
        progress.alreadyQueued += page.alreadyQueued;
        progress.requeued += page.requeued;
        followed[i] = followed[i]! + page.alreadyQueued;
        // Noted once Redis has them, for the workers to seal the run with should this producer die.
        adds.push(
          page.adding.then((n) => {
            confirmed[i] = confirmed[i]! + n;
            return deps.runs.noteAdded(family.name, i, runId!, confirmed[i], followed[i]!);
          }),
        );
      }
      inFlight = Promise.all(adds);
      const failed = pages.find((settled) => settled.status === 'rejected');
      if (failed) throw failed.reason;
      options.onProgress?.({ ...progress });
    }
    await inFlight;
  } catch (error) {
    if (!runId) throw error;
    // The jobs already added run and count under this run: it is sealed with
    // them, so that it can finish and nobody waits for it forever.
    await inFlight.catch(() => undefined);
    const sealed = confirmed.map((n, i) => n + followed[i]!);
    await deps.runs.markEnqueued(family.name, runId, sealed, progress.alreadyQueued).catch(() => undefined);
    const added = confirmed.reduce((sum, n) => sum + n, 0);
    throw new Error(`run ${runId} stopped enqueuing after ${added} jobs (they still run): ${(error as Error).message}; enqueue again for the rest`, {
      cause: error,
    });
  }
  if (runId && progress.found === 0 && options.keepEmpty === false) {
    await retryTransient(() => deps.runs.discard(family.name, runId));
    return { runId: null, ...progress };
  }
  if (runId) {
    const totals = confirmed.map((n, i) => n + followed[i]!);
    await retryTransient(() => deps.runs.markEnqueued(family.name, runId, totals, progress.alreadyQueued));
  }
  return { runId, ...progress };
}

/** Waits `ms`; stopped by `signal`, rejects with its reason (what the caller reports). */
async function waitUnlessStopped(ms: number, signal: AbortSignal | undefined): Promise<void> {
  await delay(ms, undefined, { signal }).catch(() => signal!.throwIfAborted());
}

/** How often a producer whose run is paused looks whether it has been resumed. */
const PAUSED_LOOK_MS = 1_000;

/** Whether an operator has cancelled the run; when `waitIfPaused`, first waits while it is paused, and says how long. */
async function heldByOperator(
  deps: ProducerDeps,
  runId: string,
  waitIfPaused: boolean,
  options: EnqueueOptions,
  signal: AbortSignal | undefined,
): Promise<{ cancelled: boolean; pausedMs: number }> {
  const from = Date.now();
  const look = () => retryTransient(() => deps.runs.records.operatorHold(runId));
  let hold = await look();
  if (hold !== 'paused' || !waitIfPaused) return { cancelled: hold === 'cancelled', pausedMs: 0 };
  options.onPaused?.(true);
  while (hold === 'paused') {
    await waitUnlessStopped(PAUSED_LOOK_MS, signal);
    hold = await look();
  }
  if (hold !== 'cancelled') options.onPaused?.(false);
  return { cancelled: hold === 'cancelled', pausedMs: Date.now() - from };
}

/**
 * One page's jobs of one shard: follows those an earlier run still has
 * queued, clears finished ones, and starts adding the rest (`adding`
 * resolves to how many Redis accepted).
 */
async function enqueueInShard(
  deps: { redis: RedisClient; queue: Queue<JobData>; runs: RunStore },
  family: JobFamily,
  run: { id: string; jobKey: string },
  jobs: NewJob[],
): Promise<ShardPage> {
  const runId = run.id;
  const ids = jobs.map((job) => job.id);
  const byId = new Map(jobs.map((job) => [job.id, job]));
  let states = await jobStates(deps.redis, keysOfQueue(deps.queue), ids);
  const page: ShardPage = { added: 0, alreadyQueued: 0, requeued: 0, adding: Promise.resolve(0) };
  // Rows an earlier run still has a job for (queued, active, or held by
  // a worker that died): this run follows those jobs instead of adding
  // its own. A job that finished in the meantime is looked at again.
  let pending = ids.filter((_, i) => states[i] === 'pending');
  const followed = await deps.runs.adopt(runId, family.name, pending);
  page.alreadyQueued += followed.followed;
  if (followed.gone.length > 0) {
    const again = await jobStates(deps.redis, keysOfQueue(deps.queue), followed.gone);
    const gone = new Map(followed.gone.map((id, i) => [id, again[i]!]));
    states = ids.map((id, i) => gone.get(id) ?? states[i]!);
    pending = followed.gone.filter((id) => gone.get(id) === 'pending');
  } else pending = [];
  const fresh = ids.filter((_, i) => states[i] !== 'pending').map((id) => byId.get(id)!);
  const finished = ids.filter((_, i) => states[i] === 'finished' || states[i] === 'orphan');
  let toAdd = fresh;
  const unfollowed = [...pending];
  if (finished.length > 0) {
    // BullMQ refuses to remove a job a worker holds locked; such a row
    // keeps its job, which the run follows, and is not added.
    const removed = await removeJobs(deps.queue, finished);
    const kept = new Set(finished.filter((_, i) => removed[i] !== 1));
    page.requeued += finished.length - kept.size;
    unfollowed.push(...kept);
    if (kept.size > 0) toAdd = fresh.filter(({ id }) => !kept.has(id));
  }
  if (unfollowed.length > 0) {
    // A job that finished yet again in between is left out of the run:
    // the next enqueue finds its row if the row still needs work.
    page.alreadyQueued += (await deps.runs.adopt(runId, family.name, unfollowed)).followed;
  }
  page.added = toAdd.length;
  page.adding = deps.queue
    .addBulk(
      toAdd.map(({ key, id, delayMs }) => ({
        name: family.name,
        data: { runId, key, seal: sealOf(run.jobKey, id) },
        opts: { jobId: id, ...(delayMs > 0 ? { delay: delayMs } : {}) },
      })),
    )
    .then(() => toAdd.length);
  // Awaited with the other shards' adds; until then a failure must not count as unhandled.
  page.adding.catch(() => undefined);
  return page;
}

/**
 * For each job of a page, in order, whether it exists and has finished: one
 * script for the whole page (see lua/jobStates.lua), since a command per job
 * cost the producer more than the rest of its page.
 */

const STATE_NAMES: JobState[] = ['absent', 'pending', 'finished', 'orphan'];

async function jobStates(redis: RedisClient, queue: QueueKeys, ids: string[]): Promise<JobState[]> {
  if (ids.length === 0) return [];
  const codes = (await runScripts.on(redis).jobStates([queue.completed, queue.failed, ...ids.map((id) => queue.job(id))], ids)) as number[];
  return codes.map((code) => STATE_NAMES[code]!);
}
