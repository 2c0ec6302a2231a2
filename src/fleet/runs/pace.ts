import type { Job } from 'bullmq';
import type { RedisClient } from '../../redis/connection.js';
import { runKeys } from './keys.js';
import { runScripts } from './scripts.js';

/**
 * Paced jobs start in groups this many ms apart rather than one by one. A
 * job started alone is a batch of one for its handler (a transaction, four
 * statements and a commit per handful of rows): one by one, the lots family
 * spent several times the Postgres CPU per job of batches of hundreds.
 * Groups 100 ms apart cost about what groups 200 ms apart do, and clearly
 * less than 50 ms apart (figures: docs/journal). The rate is kept on
 * average; a start is never earlier than its own slot and at most this much
 * later.
 */
const START_GROUP_MS = 100;

/**
 * A wait up to this long is spent in the worker, the job kept active: going
 * aside through the delayed set and being fetched again cost more Redis
 * work than the lots job itself (6.7 scripts per job instead of 2.6). Jobs
 * come on the producer's schedule, but the run's slots can run ahead of it
 * by as long as the workers once fell behind (the producer's first page,
 * a pause of the process): a second absorbs that. The job's run is asked
 * again after the hold, so a pause or a cancel reaches it as before.
 */
export const HOLD_IN_WORKER_MS = 1_000;

/**
 * A paced run's first job is due this long after its first page was read.
 * Its jobs reach the workers only once the page's add has ended, half a
 * second for 1,000 jobs on a busy machine: without the lead, the jobs due
 * meanwhile would all come at once and push the run's slots ahead of its
 * schedule for the rest of the run.
 */
const SCHEDULE_LEAD_MS = 1_000;

/**
 * When the producer schedules the `index`-th job of a run paced one job per
 * `intervalMs`, whose first page it read at `firstPageAt`: ms from `now`
 * until the group of its slot. Jobs added with these delays come out of the
 * delayed set on time and in groups, so that the workers' reservations
 * (RunPacer) find them on schedule, instead of taking every job of the run at
 * once and putting each aside until its slot.
 */
export function scheduledDelay(firstPageAt: number, index: number, intervalMs: number, now: number): number {
  return Math.max(0, Math.ceil((firstPageAt + SCHEDULE_LEAD_MS + index * intervalMs) / START_GROUP_MS) * START_GROUP_MS - now);
}

/**
 * A paced run's jobs are added at most this many times as fast as they
 * start. Adding jobs is Redis and Postgres work at the application's own
 * priority, which no niceness of the producer lowers: added as fast as it
 * could, the enqueue was the part of a paced run the application felt
 * most, and at ten times the run's rate it still stood out where twice did
 * not (figures: docs/journal).
 */
const ADD_AHEAD_FACTOR = 2;

/**
 * ...and never more than this far ahead of their starts: what Redis holds
 * of a paced run at a time is a minute of it, whatever its size (at 400/1s,
 * 24,000 jobs where a run of 2,000,000 would otherwise have been queued
 * almost whole). A minute is still far more than a producer's pause needs.
 */
const MAX_ADD_LEAD_MS = 60_000;

/**
 * How long the producer of a run paced one job per `intervalMs` waits,
 * having scheduled `scheduled` jobs since its first page at `firstPageAt`,
 * before it reads the next page: until it is no faster than
 * ADD_AHEAD_FACTOR times the run's rate, and the jobs it has added start
 * within MAX_ADD_LEAD_MS.
 */
export function addingWait(firstPageAt: number, scheduled: number, intervalMs: number, now: number): number {
  const scheduledMs = scheduled * intervalMs;
  return Math.max(0, firstPageAt + Math.max(scheduledMs / ADD_AHEAD_FACTOR, scheduledMs - MAX_ADD_LEAD_MS) - now);
}

/**
 * A paced run's schedule as its producer keeps it: from the time it read
 * its first page, moved on by any time the run spent paused (its jobs
 * would otherwise all be due at once when it is resumed).
 */
export class AddingSchedule {
  private firstPageAt: number | null = null;

  constructor(readonly intervalMs: number) {}

  /** How long to wait before reading the next page, `scheduled` jobs scheduled so far (see addingWait). */
  waitBeforePage(scheduled: number, now = Date.now()): number {
    return this.firstPageAt === null ? 0 : addingWait(this.firstPageAt, scheduled, this.intervalMs, now);
  }

  /** The delay of the run's job number `index`, its page read at `now` (see scheduledDelay). */
  delayOf(index: number, now: number): number {
    this.firstPageAt ??= now;
    return scheduledDelay(this.firstPageAt, index, this.intervalMs, now);
  }

  /** The run was paused for `ms`: what is still to start, starts that much later. */
  moveOn(ms: number): void {
    if (this.firstPageAt !== null) this.firstPageAt += ms;
  }
}

/** Where a job keeps its reserved start, in its progress field: visible on the board. */
interface PacedProgress {
  startsAt: number;
}

function reservedStart(job: Job): number | null {
  const progress = job.progress as Partial<PacedProgress> | number | string | boolean | undefined;
  return typeof progress === 'object' && progress !== null && typeof progress.startsAt === 'number' ? progress.startsAt : null;
}

/**
 * Paces a run at an operator's rate (`tys enqueue --rate 500/1s`),
 * whatever the number of workers: each job reserves its own start slot once
 * and starts at it. The producer schedules the jobs on time (scheduledDelay),
 * so a job's wait is short and spent in the worker; a job that comes early
 * (after a pause, or when another producer's jobs took the slots) waits
 * aside, delayed with no attempt spent, and starts when it comes back.
 * Unlike BullMQ's limiter, which holds a whole queue, this slows one run and
 * leaves the family's other runs alone.
 */
export class RunPacer {
  /** Slots of jobs held in this worker, which do not write theirs to Redis. */
  private readonly held = new WeakMap<Job, number>();

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  /**
   * How long the job must still wait before it starts, in ms; reserves its
   * slot the first time. A job whose wait is longer than HOLD_IN_WORKER_MS
   * keeps its slot in its progress, for when it comes back from aside.
   */
  async waitFor(job: Job, runId: string, intervalMs: number): Promise<number> {
    const reserved = this.held.get(job) ?? reservedStart(job);
    if (reserved !== null) return Math.max(0, reserved - Date.now());
    const wait = Number(await runScripts.on(this.redis).reserveStart([runKeys(this.prefix).nextStart(runId)], [intervalMs, START_GROUP_MS]));
    const startsAt = Date.now() + wait;
    if (wait <= HOLD_IN_WORKER_MS) {
      this.held.set(job, startsAt);
      return wait;
    }
    const progress: PacedProgress = { startsAt };
    await job.updateProgress(progress);
    return wait;
  }
}
