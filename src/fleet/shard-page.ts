import type { Queue } from 'bullmq';
import { keysOfQueue, type QueueKeys } from '../redis/bullmq-keys.js';
import type { RedisClient } from '../redis/connection.js';
import type { JobData, JobFamily } from './family.js';
import { sealOf } from './job-seal.js';
import { removeJobs } from './queues.js';
import { runScripts } from './runs/scripts.js';
import type { RunStore } from './runs/store.js';

/**
 * absent: no job. pending: a real job still waiting, delayed or active.
 * finished: a job that completed or failed. orphan: a job hash without data,
 * left when Redis lost keys under a running worker; BullMQ would take it for
 * a duplicate and add nothing, so it is removed like a finished job.
 */
export type JobState = 'absent' | 'finished' | 'pending' | 'orphan';

/** A job to add: its id, its row's key, and how long it waits before it may start (a paced run's schedule). */
export interface NewJob {
  id: string;
  key: string;
  delayMs: number;
}

/** What one page did in one shard, and the add still in flight. */
export interface ShardPage {
  added: number;
  alreadyQueued: number;
  requeued: number;
  /** Resolves to how many jobs Redis accepted. */
  adding: Promise<number>;
}

/**
 * One page's jobs of one shard: follows those an earlier run still has
 * queued, clears finished ones, and starts adding the rest (`adding`
 * resolves to how many Redis accepted).
 */
export async function addShardPage(
  deps: { redis: RedisClient; queue: Queue<JobData>; runs: RunStore },
  family: JobFamily,
  run: { id: string; jobKey: string },
  jobs: NewJob[],
): Promise<ShardPage> {
  const runId = run.id;
  const ids = jobs.map((job) => job.id);
  const byId = new Map(jobs.map((job) => [job.id, job]));
  const keys = keysOfQueue(deps.queue);
  let states = await jobStates(deps.redis, keys, ids);
  const page: ShardPage = { added: 0, alreadyQueued: 0, requeued: 0, adding: Promise.resolve(0) };
  // Rows an earlier run still has a job for (queued, active, or held by
  // a worker that died): this run follows those jobs instead of adding
  // its own. A job that finished in the meantime is looked at again.
  let pending = ids.filter((_, i) => states[i] === 'pending');
  const followed = await deps.runs.adopt(runId, family.name, pending);
  page.alreadyQueued += followed.followed;
  if (followed.gone.length > 0) {
    const again = await jobStates(deps.redis, keys, followed.gone);
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
  await deps.runs.noteAdding(
    family.name,
    runId,
    toAdd.map(({ id }) => id),
  );
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

/** What a page would do in one shard, doing nothing (a dry run): jobs it would add, and jobs still queued it would follow. */
export async function countShardPage(redis: RedisClient, queue: Queue<JobData>, jobs: NewJob[]): Promise<{ added: number; alreadyQueued: number }> {
  const states = await jobStates(
    redis,
    keysOfQueue(queue),
    jobs.map((job) => job.id),
  );
  const alreadyQueued = states.filter((state) => state === 'pending').length;
  return { added: jobs.length - alreadyQueued, alreadyQueued };
}

const STATE_NAMES: JobState[] = ['absent', 'pending', 'finished', 'orphan'];

/**
 * For each job of a page, in order, whether it exists and has finished: one
 * script for the whole page (see lua/jobStates.lua), since a command per job
 * cost the producer more than the rest of its page.
 */
async function jobStates(redis: RedisClient, queue: QueueKeys, ids: string[]): Promise<JobState[]> {
  if (ids.length === 0) return [];
  const codes = (await runScripts.on(redis).jobStates([queue.completed, queue.failed, ...ids.map((id) => queue.job(id))], ids)) as number[];
  return codes.map((code) => STATE_NAMES[code]!);
}
