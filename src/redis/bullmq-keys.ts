/**
 * The keys of BullMQ 6 that the fleet reads or writes itself, past BullMQ's
 * API: the one place that knows BullMQ's layout, checked against the
 * installed BullMQ by tests/bullmq-keys.test.ts.
 *
 * Why go past the API at all: the fleet's scripts decide, for a page or a
 * batch of hundreds of jobs in one round trip, whether each job exists,
 * whether it has finished, and which run it belongs to. BullMQ's API would
 * take a command per job (Job.fromId, getState), which cost the producer
 * more than the rest of its page.
 */
export interface QueueKeys {
  /** A job's key without its id: the scripts build a job's key from it. */
  jobPrefix: string;
  /**
   * A job's hash. Read: `data` (the fleet's JSON job data: its run, to
   * count or hand the job over; its presence, to tell a job from the bare
   * hash a removal left), `opts` and `progress` (to mend a job BullMQ
   * cannot read). Written: `data`, when a cancelled run hands the job over
   * or an unreadable job is mended.
   */
  job(id: string): string;
  /** Sorted set of the ids of completed jobs (by finish time): whether a job has finished. */
  completed: string;
  /** Sorted set of the ids of failed jobs (by finish time): whether a job has failed, and which since when. */
  failed: string;
  /** List of the ids of active jobs, the newest first: the jobs to look at after an unreadable fetch. */
  active: string;
  /** Hash of the queue's settings, made with the queue: whether a Redis holds the fleet's queues. */
  meta: string;
}

/** The keys of the queue `queueName` under the BullMQ prefix `prefix`. */
export function queueKeys(prefix: string, queueName: string): QueueKeys {
  return keysOfQueue({ qualifiedName: `${prefix}:${queueName}` });
}

/** The keys of a BullMQ queue, from its qualified name (prefix and name). */
export function keysOfQueue(queue: { qualifiedName: string }): QueueKeys {
  const jobPrefix = `${queue.qualifiedName}:`;
  return {
    jobPrefix,
    job: (id) => `${jobPrefix}${id}`,
    completed: `${jobPrefix}completed`,
    failed: `${jobPrefix}failed`,
    active: `${jobPrefix}active`,
    meta: `${jobPrefix}meta`,
  };
}
