import type { JobsOptions, Queue } from 'bullmq';
import pLimit from 'p-limit';
import type { RedisClient } from '../redis/connection.js';
import type { QueueShard } from '../redis/key-layout.js';
import type { JobData, JobFamily } from './family.js';
import { FleetQueue } from './tolerant-job.js';

/** BullMQ job options of a family: retries with jittered exponential backoff, bounded retention. */
export function jobOptionsFor(family: JobFamily): JobsOptions {
  const { attempts, backoffMs, keepCompleted, keepCompletedHours, keepFailed } = family.options;
  return {
    attempts,
    backoff: { type: 'exponential', delay: backoffMs, jitter: 0.5 },
    removeOnComplete: keepCompleted === 0 ? true : { count: keepCompleted, age: keepCompletedHours * 3600 },
    removeOnFail: { count: keepFailed },
  };
}

/**
 * A family's queue. `readOnly` (default false) keeps BullMQ from writing
 * the queue's meta hash, which it otherwise does on opening: a command that
 * only looks leaves no trace in a Redis it was pointed at by mistake.
 */
export function openQueue(family: JobFamily, shard: QueueShard, connection: RedisClient, options: { readOnly?: boolean } = {}): Queue<JobData> {
  return new FleetQueue<JobData>(shard.queueName, {
    connection,
    prefix: shard.prefix,
    defaultJobOptions: jobOptionsFor(family),
    skipMetasUpdate: options.readOnly,
  });
}

/** The queue whose jobs are enqueues: BullMQ's job schedulers add one at each tick. */
export const SCHEDULES_QUEUE = 'schedules';

/** Triggered price alerts, for the application's notifier to deliver. */
export const NOTIFICATIONS_QUEUE = 'notifications';

/** Queues that are not job families but that operators watch too. */
export const AUXILIARY_QUEUES: readonly string[] = [SCHEDULES_QUEUE, NOTIFICATIONS_QUEUE];

/** Job removals in flight at once: enough to keep Redis busy, few enough not to queue thousands of promises. */
const REMOVALS_AT_ONCE = 50;

/**
 * Removes jobs by id, a bounded number at a time (a run can have millions).
 * Resolves to BullMQ's answer per id: 1 removed, 0 not (a worker holds it
 * locked, or it is gone).
 */
export function removeJobs(queue: Queue, ids: string[]): Promise<number[]> {
  return pLimit(REMOVALS_AT_ONCE).map(ids, (id) => queue.remove(id));
}
