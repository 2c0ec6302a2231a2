import type { Job, JobJson } from 'bullmq';
import { bullmq } from '../deps/bullmq.js';

/** The data a job is given in place of data that is not JSON: refused by the data check with a readable reason. */
export const UNREADABLE_DATA = '__unreadableJobData';

type JobQueue = Parameters<typeof bullmq.Job.fromJSON>[0];

/**
 * A BullMQ job that survives data written into Redis that is not JSON.
 * BullMQ parses job data while fetching the job, before any processor runs:
 * such a job would stay active until it stalled, and every listing that
 * contains it (the board's job view) would fail. Here it is read with a
 * marker instead, so the worker fails it once with a reason and the board
 * shows it.
 */
class TolerantJob extends bullmq.Job {
  static override fromJSON<T = unknown, R = unknown, N extends string = string>(queue: JobQueue, json: JobJson, jobId?: string): Job<T, R, N> {
    try {
      return super.fromJSON<T, R, N>(queue, json, jobId);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      return super.fromJSON<T, R, N>(queue, { ...json, data: JSON.stringify({ [UNREADABLE_DATA]: String(json.data).slice(0, 60) }) }, jobId);
    }
  }
}

/** A Queue whose jobs are TolerantJobs. */
export class FleetQueue<T = unknown> extends bullmq.Queue<T> {
  protected override get Job(): typeof Job {
    return TolerantJob as typeof Job;
  }
}

/** A Worker whose jobs are TolerantJobs. */
export class FleetWorker<T = unknown, R = unknown> extends bullmq.Worker<T, R> {
  protected override get Job(): typeof Job {
    return TolerantJob as typeof Job;
  }
}
