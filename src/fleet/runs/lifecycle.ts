import { Prisma, type PrismaClient } from '../../db/prisma.js';
import { sqlRows } from '../../db/sql.js';
import { utcTimestampSql } from '../../db/utc.js';
import type { FleetRunStatus } from '../../generated/prisma/enums.js';

/**
 * A run's lifecycle: its statuses, the moves between them, and the one
 * function that writes a run's `status` and `finishedAt`. Everything else
 * (the producer's seal, the workers' batch end, the reconciler, run
 * control) asks for a move here; the CLI and the dashboard only read.
 */

export type { FleetRunStatus };

/** Every move a run may make, with why it makes it. A move not listed is refused. */
export const TRANSITIONS: { readonly [From in FleetRunStatus]: { readonly [To in FleetRunStatus]?: string } } = {
  ENQUEUEING: {
    RUNNING: 'its producer sealed it with its total (or the workers did, its producer gone)',
    PAUSING: 'an operator paused it while its jobs were being added',
    CANCELLING: 'an operator cancelled it while its jobs were being added',
    COMPLETED: 'every job it sealed had an outcome by the time it was sealed, none failed',
    FAILED: 'every job it sealed had an outcome by the time it was sealed, some failed',
    INTERRUPTED: 'its Redis lost its jobs and counters',
  },
  RUNNING: {
    PAUSING: 'an operator paused it',
    CANCELLING: 'an operator cancelled it',
    COMPLETED: 'every job has an outcome, none failed',
    FAILED: 'every job has an outcome, some failed',
    INTERRUPTED: 'its Redis lost its jobs and counters',
  },
  PAUSING: {
    PAUSED: 'none of its jobs is active any more',
    RUNNING: 'an operator resumed it',
    CANCELLING: 'an operator cancelled it',
    COMPLETED: 'its last jobs ended while it was being paused, none failed',
    FAILED: 'its last jobs ended while it was being paused, some failed',
    INTERRUPTED: 'its Redis lost its jobs and counters',
  },
  PAUSED: {
    RUNNING: 'an operator resumed it',
    CANCELLING: 'an operator cancelled it',
    COMPLETED: 'its jobs ended before the pause took hold, none failed',
    FAILED: 'its jobs ended before the pause took hold, some failed',
    INTERRUPTED: 'its Redis lost its jobs and counters',
  },
  CANCELLING: {
    CANCELLED: 'none of its jobs is active any more; the rest were removed',
    COMPLETED: 'every job had an outcome before the cancel took hold, none failed',
    FAILED: 'every job had an outcome before the cancel took hold, some failed',
    INTERRUPTED: 'its Redis lost its jobs and counters',
  },
  CANCELLED: {},
  COMPLETED: {},
  FAILED: {
    RUNNING: 'an operator retried its failed jobs',
    COMPLETED: 'its failed jobs, retried, succeeded',
    FAILED: 'its counts were revised after a retry; some jobs still fail',
  },
  INTERRUPTED: {
    RUNNING: 'its counters were found alive after all (it was marked lost in error)',
  },
};

export const RUN_STATUSES = Object.keys(TRANSITIONS) as FleetRunStatus[];

/** The statuses of a run that has ended: its `finishedAt` is set exactly in these. */
export const ENDED_STATUSES: readonly FleetRunStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'INTERRUPTED'];
/** A run still open: its jobs may run, and it may follow those of another run. */
export const OPEN_STATUSES: readonly FleetRunStatus[] = RUN_STATUSES.filter((status) => !ENDED_STATUSES.includes(status));
/** A run whose jobs start as workers take them. */
export const STARTABLE_STATUSES: readonly FleetRunStatus[] = ['ENQUEUEING', 'RUNNING'];
/** A run an operator paused: its jobs are parked, not started. */
export const PAUSED_STATUSES: readonly FleetRunStatus[] = ['PAUSING', 'PAUSED'];
/** A run an operator cancelled: its jobs are dropped, not started. */
export const CANCELLED_STATUSES: readonly FleetRunStatus[] = ['CANCELLING', 'CANCELLED'];

export function canMove(from: FleetRunStatus, to: FleetRunStatus): boolean {
  return TRANSITIONS[from][to] !== undefined;
}

/** A move the table does not allow: a fault in the code that asked for it, never an operator's. */
export class RunTransitionError extends Error {
  override name = 'RunTransitionError';
  constructor(
    readonly runId: string,
    readonly from: FleetRunStatus,
    readonly to: FleetRunStatus,
  ) {
    super(`run ${runId} cannot move from ${from} to ${to}: the run lifecycle has no such move`);
  }
}

/** What a run's counters must show for it to end. */
export interface DoneCounters {
  /** Its producer sealed it: `total` is final. */
  enqueued: boolean;
  total: number;
  completed: number;
  skipped: number;
  failed: number;
}

/** Every job of a sealed run has an outcome. */
export function isDone(counters: DoneCounters): boolean {
  return counters.enqueued && counters.completed + counters.skipped + counters.failed >= counters.total;
}

/** How a run whose jobs all have an outcome ends. */
export function endStatus(counters: Pick<DoneCounters, 'failed'>): 'COMPLETED' | 'FAILED' {
  return counters.failed > 0 ? 'FAILED' : 'COMPLETED';
}

/** The counts a run ends with, written in the same statement as its end. */
export interface FinalCounts {
  completed: number;
  skipped: number;
  failed: number;
  stats: Record<string, number>;
}

/**
 * Moves a run to `to` if its status is one of `from`, in one statement:
 * `finishedAt` becomes now when `to` ends the run, and is cleared when `to`
 * opens it again, so that a status and its `finishedAt` always agree.
 * Resolves to the status the run has after the statement (`to` when it
 * moved; what it was otherwise), or null when there is no such run.
 *
 * Every pair of `from` and `to` must be in TRANSITIONS (RunTransitionError
 * otherwise): a caller names the moves it means, and a status the run has
 * left meanwhile simply does not match.
 *
 * Runs on the pool, not Prisma's engine: a `tys enqueue` seals its run here.
 */
export async function moveRun(
  prisma: PrismaClient,
  runId: string,
  from: readonly FleetRunStatus[],
  to: FleetRunStatus,
  counts?: FinalCounts,
): Promise<{ moved: boolean; status: FleetRunStatus | null }> {
  const forbidden = from.find((status) => !canMove(status, to));
  if (forbidden) throw new RunTransitionError(runId, forbidden, to);
  const ends = ENDED_STATUSES.includes(to);
  const [moved] = await sqlRows<{ status: FleetRunStatus }>(
    prisma,
    Prisma.sql`
      UPDATE "FleetRun" SET status = ${to}::"FleetRunStatus",
             "finishedAt" = ${ends ? utcTimestampSql(new Date()) : Prisma.sql`NULL`}
             ${
               counts
                 ? Prisma.sql`, completed = ${counts.completed}, skipped = ${counts.skipped}, failed = ${counts.failed},
                              stats = ${JSON.stringify(counts.stats)}::jsonb`
                 : Prisma.empty
             }
       WHERE id = ${runId} AND status IN (${Prisma.join(from.map((status) => Prisma.sql`${status}::"FleetRunStatus"`))})
       RETURNING status`,
  );
  if (moved) return { moved: true, status: moved.status };
  const [now] = await sqlRows<{ status: FleetRunStatus }>(prisma, Prisma.sql`SELECT status FROM "FleetRun" WHERE id = ${runId}`);
  return { moved: false, status: now?.status ?? null };
}
