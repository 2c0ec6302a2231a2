import { setTimeout as delay } from 'node:timers/promises';
import type { JobType, Queue } from 'bullmq';
import type { PrismaClient } from '../../db/prisma.js';
import type { FleetRunStatus } from '../../generated/prisma/enums.js';
import { jobIdFor, type JobData, type JobFamily } from '../family.js';
import { removeJobs } from '../queues.js';
import type { Operator } from './actions.js';
import { canMove, moveRun, PAUSED_STATUSES, STARTABLE_STATUSES } from './lifecycle.js';
import type { RunStore } from './store.js';

/** A pause, resume or cancel that does not apply to the run as it is: one line for the operator. */
export class RunControlError extends Error {
  override name = 'RunControlError';
}

export type RunAction = 'pause' | 'resume' | 'cancel' | 'retry';

export interface RunControlDeps {
  prisma: PrismaClient;
  runs: RunStore;
  /** The run's family. */
  family: string;
  /** The queues of the family's shards. */
  queues: Queue<JobData>[];
}

/** A job of the run, with the shard queue that holds it. */
interface RunJob {
  queue: Queue<JobData>;
  id: string;
}

export interface RunControlOptions {
  /**
   * How long to wait, in ms, for the run's active jobs to end before the
   * run is PAUSED or CANCELLED. Default 30,000. When they take longer the
   * run stays PAUSING or CANCELLING; acting again finishes the step.
   */
  settleTimeoutMs?: number;
  /** Told of each step that takes a while. */
  onProgress?: (line: string) => void;
  /** Who acts, and why: the action goes into the run's history. Default: not recorded (the fleet's own calls). */
  by?: Operator;
}

/** The actions an operator may take on a run in `status`, as the lifecycle's moves allow them. */
export function actionsFor(status: FleetRunStatus): RunAction[] {
  const actions: RunAction[] = [];
  if (canMove(status, 'PAUSING')) actions.push('pause');
  if (PAUSED_STATUSES.includes(status)) actions.push('resume');
  // A cancel that is still settling is finished by cancelling again.
  if (canMove(status, 'CANCELLING') || status === 'CANCELLING') actions.push('cancel');
  if (status === 'FAILED') actions.push('retry');
  return actions;
}

/** How long every worker may still go on starting jobs of a run after it changed state (RunGuard's cache). */
const GUARD_DELAY_MS = 1_200;

/**
 * Pauses, resumes or cancels a run, and resolves to its new status.
 *
 * - pause: no new job of the run starts (workers park them aside); once none
 *   is active the run is PAUSED. Other runs of the family go on.
 * - resume: the parked jobs come back to the queue; the run is RUNNING again
 *   (or ends at once, when every job had ended meanwhile).
 * - cancel: the run's jobs that have not started are removed; once none is
 *   active the run ends CANCELLED with its counts. Rows it did not reach are
 *   found by the next enqueue.
 * - retry: a FAILED run's failed jobs run again; each that succeeds moves
 *   from the run's failures to its successes, and the run ends again.
 */
export async function controlRun(deps: RunControlDeps, runId: string, action: RunAction, options: RunControlOptions = {}): Promise<FleetRunStatus> {
  const status = await act(deps, runId, action, options);
  if (options.by) await deps.runs.actions.record(runId, action, options.by, status);
  return status;
}

/** The action itself, unrecorded (see controlRun). */
async function act(deps: RunControlDeps, runId: string, action: RunAction, options: RunControlOptions): Promise<FleetRunStatus> {
  const run = await deps.prisma.fleetRun.findUnique({ where: { id: runId }, select: { status: true, finishedAt: true } });
  if (!run) throw new RunControlError(`no run ${runId}`);
  const status = run.status;
  if (run.finishedAt && !(action === 'cancel' && status === 'CANCELLING') && action !== 'retry') {
    throw new RunControlError(`run ${runId} has ended (${status}): nothing to ${action}`);
  }
  switch (action) {
    case 'pause': {
      if (status === 'PAUSED') return status;
      if (status !== 'PAUSING') await move(deps, runId, STARTABLE_STATUSES, 'PAUSING', action);
      return settle(deps, runId, 'PAUSING', 'PAUSED', options);
    }
    case 'resume': {
      if (STARTABLE_STATUSES.includes(status)) return status;
      await move(deps, runId, PAUSED_STATUSES, 'RUNNING', action);
      // A worker may still hold the run as paused for a moment (RunGuard's
      // cache) and would park for good what came back now: the parked jobs
      // come back once every worker sees the run running.
      await delay(GUARD_DELAY_MS);
      const parked = await jobsOfRun(deps, runId, ['delayed']);
      for (const { queue, id } of parked) await (await queue.getJob(id))?.promote().catch(() => undefined);
      options.onProgress?.(`run ${runId}: ${parked.length} parked job(s) back in the queue`);
      await deps.runs.finishIfDone(deps.family, runId);
      return (await deps.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).status;
    }
    case 'retry': {
      if (status !== 'FAILED') throw new RunControlError(`run ${runId} is ${status}: only a FAILED run has failed jobs to retry`);
      const failed = await jobsOfRun(deps, runId, ['failed']);
      if (failed.length === 0) throw new RunControlError(`run ${runId} has no failed job left in the queue (enqueue again instead)`);
      await move(deps, runId, ['FAILED'], 'RUNNING', action);
      for (const { queue, id } of failed) await (await queue.getJob(id))?.retry('failed');
      options.onProgress?.(`run ${runId}: ${failed.length} failed job(s) queued again`);
      return 'RUNNING';
    }
    case 'cancel': {
      if (status !== 'CANCELLING') await move(deps, runId, [...STARTABLE_STATUSES, ...PAUSED_STATUSES], 'CANCELLING', action);
      // Jobs a worker picks up meanwhile are refused, as the run's state says.
      const { removed, heirs } = await dispose(deps, runId, await jobsOfRun(deps, runId, ['waiting', 'delayed', 'prioritized', 'waiting-children']));
      options.onProgress?.(`run ${runId}: ${removed} job(s) that had not started removed`);
      if (heirs.size > 0)
        options.onProgress?.(`run ${runId}: ${heirs.size} job(s) handed to the runs that follow them (${[...new Set(heirs.values())].join(', ')})`);
      return settle(deps, runId, 'CANCELLING', 'CANCELLED', options);
    }
  }
}

/** A job of a run that has not started, for a row an operator named. */
export interface QueuedRow {
  key: string;
  jobId: string;
  queue: Queue<JobData>;
}

/** The states of a job that has not started: the ones a cancel can take it from. */
const NOT_STARTED: JobType[] = ['waiting', 'delayed', 'prioritized'];

/** Of the rows, those whose job of the run has not started yet, in whichever shard holds it. */
export async function queuedRows(deps: RunControlDeps, family: JobFamily, runId: string, keys: readonly string[]): Promise<QueuedRow[]> {
  const rows: QueuedRow[] = [];
  for (const key of keys) {
    const jobId = jobIdFor(family, key);
    for (const queue of deps.queues) {
      const job = await queue.getJob(jobId);
      if (job?.data?.runId === runId && NOT_STARTED.includes((await job.getState()) as JobType)) rows.push({ key, jobId, queue });
    }
  }
  return rows;
}

/**
 * Cancels the jobs of these rows, which have not started: each is removed
 * and counted skipped, with the operator in its reason, for the run and for
 * every run that follows it, so that none waits for it. A job a worker took
 * meanwhile is left to finish. Resolves to the rows cancelled.
 */
export async function cancelRows(deps: RunControlDeps, runId: string, rows: readonly QueuedRow[], by: Operator): Promise<string[]> {
  const cancelled: string[] = [];
  for (const row of rows) {
    const [removed] = await removeJobs(row.queue, [row.jobId]);
    // Removed, and not done in between (a job's outcome is counted before BullMQ files it).
    if (removed !== 1 || (await deps.runs.hasOutcome(deps.family, runId, row.jobId))) continue;
    await deps.runs.record(deps.family, [
      { runId, jobId: row.jobId, outcome: 'skipped', why: { key: row.key, reason: `cancelled by ${by.operator}`, attempts: 0 } },
    ]);
    cancelled.push(row.key);
  }
  if (cancelled.length > 0) await deps.runs.actions.record(runId, 'cancel', by, `${cancelled.length} job(s) cancelled: ${cancelled.join(', ').slice(0, 200)}`);
  return cancelled;
}

/** Moves the run from one of `from` to `to`, or says, for the operator, where it is instead. */
async function move(deps: RunControlDeps, runId: string, from: readonly FleetRunStatus[], to: FleetRunStatus, action: RunAction): Promise<void> {
  const { moved, status } = await moveRun(deps.prisma, runId, from, to);
  if (!moved) throw new RunControlError(`run ${runId} is ${status}: cannot ${action} it`);
}

/** Waits for the run's active jobs to end, then moves it from `from` to `to`; a cancelled run gets its final counts. */
async function settle(deps: RunControlDeps, runId: string, from: FleetRunStatus, to: FleetRunStatus, options: RunControlOptions): Promise<FleetRunStatus> {
  const deadline = Date.now() + (options.settleTimeoutMs ?? 30_000);
  await delay(GUARD_DELAY_MS);
  for (;;) {
    const active = await jobsOfRun(deps, runId, ['active']);
    if (active.length === 0) break;
    if (Date.now() > deadline) {
      options.onProgress?.(`run ${runId}: ${active.length} job(s) still active; it stays ${from} until they end (act again to finish)`);
      return from;
    }
    await delay(200);
  }
  let counts;
  if (to === 'CANCELLED') {
    // What is left of the run in Redis: jobs that ended, and any that workers dropped meanwhile.
    await dispose(deps, runId, await jobsOfRun(deps, runId, ['completed', 'failed', 'waiting', 'delayed', 'prioritized']));
    counts = (await deps.runs.counters(deps.family, runId)) ?? undefined;
  }
  // The run may have ended meanwhile (its last jobs done): then it stays as it ended.
  return (await moveRun(deps.prisma, runId, [from], to, counts)).status ?? to;
}

/**
 * Removes jobs of a cancelled run, except those another open run follows:
 * those are handed to it (RunStore.handOver), which waits for their outcome.
 */
async function dispose(deps: RunControlDeps, runId: string, jobs: RunJob[]): Promise<{ removed: number; heirs: Map<string, string> }> {
  const heirs = await deps.runs.handOver(
    deps.family,
    runId,
    jobs.map((job) => job.id),
  );
  let removed = 0;
  for (const queue of deps.queues) {
    const ids = jobs.filter((job) => job.queue === queue && !heirs.has(job.id)).map((job) => job.id);
    removed += (await removeJobs(queue, ids)).filter((r) => r === 1).length;
  }
  return { removed, heirs };
}

/** The run's jobs in the given states, in every shard, read state by state, page by page. */
async function jobsOfRun(deps: RunControlDeps, runId: string, states: JobType[]): Promise<RunJob[]> {
  const jobs: RunJob[] = [];
  const PAGE = 1_000;
  for (const queue of deps.queues) {
    for (const state of states) {
      for (let start = 0; ; start += PAGE) {
        const page = await queue.getJobs([state], start, start + PAGE - 1, true);
        for (const job of page) if (job.data?.runId === runId && job.id) jobs.push({ queue, id: job.id });
        if (page.length < PAGE) break;
      }
    }
  }
  return jobs;
}
