import type { Job, JobJson, JobType, Queue } from 'bullmq';
import { bullmq } from '../deps/bullmq.js';
import { keysOfQueue, type QueueKeys } from '../redis/bullmq-keys.js';
import type { RedisClient } from '../redis/connection.js';

/** The data a job is given in place of data it cannot be read from: refused by the data check with the reason it holds. */
export const UNREADABLE_DATA = '__unreadableJobData';

/**
 * The most a job's data may hold, as stored. The fleet's jobs carry a run
 * id, a key and a seal (about 150 bytes); anything far larger was not
 * written by the fleet, and data nested deep enough overflows the stack of
 * whatever walks it.
 */
export const MAX_JOB_DATA_BYTES = 4_096;

type JobQueue = Parameters<typeof bullmq.Job.fromJSON>[0];

const parses = (text: string | null | undefined): boolean => {
  try {
    JSON.parse(text || '{}');
    return true;
  } catch {
    return false;
  }
};

const quote = (text: unknown) => JSON.stringify(String(text).slice(0, 60));

/** What is wrong with a job's stored data, options and progress that BullMQ cannot read, or null. */
function unreadable(stored: { data?: string | null; opts?: string | null; progress?: string | null }): string | null {
  if (typeof stored.data === 'string' && stored.data.length > MAX_JOB_DATA_BYTES) return `larger than ${MAX_JOB_DATA_BYTES} bytes`;
  if (!parses(stored.data)) return `not JSON (${quote(stored.data)})`;
  if (!parses(stored.opts)) return `its options are not JSON (${quote(stored.opts)})`;
  if (!parses(stored.progress)) return `its progress is not JSON (${quote(stored.progress)})`;
  return null;
}

const markerOf = (problem: string) => JSON.stringify({ [UNREADABLE_DATA]: problem });

/**
 * A BullMQ job that survives data anyone can write into Redis. BullMQ reads
 * a job's data while fetching it, before any processor runs: a job it
 * cannot read would stay active until it stalled, and every listing that
 * contains it (the board's views) would fail. Here it is read with a marker
 * in place of its data instead, so the worker fails it once with a reason
 * and the board shows it.
 */
class TolerantJob extends bullmq.Job {
  static override fromJSON<T = unknown, R = unknown, N extends string = string>(queue: JobQueue, json: JobJson, jobId?: string): Job<T, R, N> {
    const problem = unreadable({ data: json.data });
    return super.fromJSON<T, R, N>(queue, problem ? { ...json, data: markerOf(problem) } : json, jobId);
  }
}

/**
 * A Queue whose jobs are TolerantJobs, and whose listings mend the jobs
 * BullMQ cannot read (see mendJobs) instead of failing: the board's views
 * keep answering while such a job exists.
 */
export class FleetQueue<T = unknown> extends bullmq.Queue<T> {
  protected override get Job(): typeof Job {
    return TolerantJob as typeof Job;
  }

  override async getJobs(types?: JobType[] | JobType, start = 0, end = -1, asc = false): ReturnType<Queue<T>['getJobs']> {
    try {
      return await super.getJobs(types, start, end, asc);
    } catch (error) {
      if (!(error instanceof SyntaxError) || types === undefined) throw error;
      const ids = await this.getRanges(Array.isArray(types) ? types : [types], start, end, asc);
      await mendJobs(this.opts.connection as RedisClient, keysOfQueue(this), ids);
      return super.getJobs(types, start, end, asc);
    }
  }

  override async getJob(jobId: string): ReturnType<Queue<T>['getJob']> {
    try {
      return await super.getJob(jobId);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      await mendJobs(this.opts.connection as RedisClient, keysOfQueue(this), [jobId]);
      return super.getJob(jobId);
    }
  }
}

/** A Worker whose jobs are TolerantJobs. */
export class FleetWorker<T = unknown, R = unknown> extends bullmq.Worker<T, R> {
  protected override get Job(): typeof Job {
    return TolerantJob as typeof Job;
  }
}

/** How many of the newest active jobs a failed fetch looks at: the one it took is among them. */
const ACTIVE_LOOKED_AT = 100;

/**
 * Rewrites, in their hashes (the one place BullMQ keeps a job's fields), the
 * jobs of `ids` whose data, options or progress cannot be read, with the
 * reason in place of their data: a worker then fails each once, readably,
 * and listings read them. BullMQ reads options and progress in code of its
 * own, before the job class, and fails on them. Resolves to the ids mended.
 */
async function mendJobs(redis: RedisClient, queue: QueueKeys, ids: readonly string[]): Promise<string[]> {
  const fields = await Promise.all(ids.map((id) => redis.hmget(queue.job(id), 'data', 'opts', 'progress')));
  const mended: string[] = [];
  for (const [i, [data, opts, progress]] of fields.entries()) {
    const problem = data === null && opts === null ? null : unreadable({ data, opts, progress });
    if (!problem) continue;
    await redis.hset(queue.job(ids[i]!), 'data', markerOf(problem), 'opts', '{}', 'progress', '0');
    mended.push(ids[i]!);
  }
  return mended;
}

/**
 * After a fetch failed on a job it could not read (a SyntaxError from
 * BullMQ): that job stays active without a worker, stalls, and would be
 * fetched and fail again for ever. The newest active jobs of the queue
 * are mended (see mendJobs), so that
 * once it stalls it fails once, with its reason.
 */
export async function mendUnreadableJobs(redis: RedisClient, queue: QueueKeys): Promise<string[]> {
  return mendJobs(redis, queue, await redis.lrange(queue.active, 0, ACTIVE_LOOKED_AT - 1));
}
