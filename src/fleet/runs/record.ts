import { Prisma, type PrismaClient } from '../../db/prisma.js';
import { sqlRows } from '../../db/sql.js';
import { utcTimestampSql } from '../../db/utc.js';
import { CANCELLED_STATUSES, endStatus, isDone, moveRun, OPEN_STATUSES, PAUSED_STATUSES } from './lifecycle.js';
import { RUN_TTL_SECONDS, type RunCounters } from './live.js';
import type { Scope } from '../scope.js';

export type RunRow = Awaited<ReturnType<PrismaClient['fleetRun']['findUniqueOrThrow']>>;
type FleetRunStatus = RunRow['status'];

/**
 * The Postgres side of runs: the durable FleetRun record, written when the
 * run is created, when enqueueing ends and when it finishes. It outlives
 * Redis; nothing here touches Redis.
 */
export class RunRecords {
  constructor(private readonly prisma: PrismaClient) {}

  // What a producer does to its run's record (create, markEnqueued,
  // operatorHold, discardEmpty, and finish for a run with nothing left to
  // do) goes straight to the pool, as its source pages do (see sqlRows): a
  // `tys enqueue` never starts Prisma's engine. Their times are this
  // process's clock, as Prisma's were, not the server's: a run's startedAt
  // is compared with its jobs' BullMQ timestamps (countMissedFailures).

  async create(row: {
    id: string;
    family: string;
    scope: Scope;
    origin: string | null;
    jobKey?: string | null;
    redisMarker: string;
    redisAddress: string;
  }): Promise<void> {
    await sqlRows(
      this.prisma,
      Prisma.sql`
        INSERT INTO "FleetRun" (id, family, scope, origin, "jobKey", "redisMarker", "redisAddress", "startedAt")
        VALUES (${row.id}, ${row.family}, ${JSON.stringify(row.scope)}::jsonb, ${row.origin}, ${row.jobKey ?? null}, ${row.redisMarker}, ${row.redisAddress},
                ${utcTimestampSql(new Date())})`,
    );
  }

  /**
   * Seals the run with its total. Only a run still ENQUEUEING becomes
   * RUNNING: one an operator paused or cancelled while its jobs were being
   * added keeps that state.
   */
  async markEnqueued(runId: string, total: number, alreadyQueued: number): Promise<void> {
    const sealed = await sqlRows(
      this.prisma,
      Prisma.sql`
        UPDATE "FleetRun" SET total = ${total}, "alreadyQueued" = ${alreadyQueued}, "enqueuedAt" = ${utcTimestampSql(new Date())}
         WHERE id = ${runId} RETURNING id`,
    );
    if (sealed.length === 0) throw new Error(`run ${runId} has no record in FleetRun to seal`);
    await moveRun(this.prisma, runId, ['ENQUEUEING'], 'RUNNING');
  }

  /** What an operator has done to the run, if anything: cancelled it (CANCELLING or CANCELLED) or paused it (PAUSING or PAUSED). */
  async operatorHold(runId: string): Promise<'cancelled' | 'paused' | null> {
    const [row] = await sqlRows<{ status: FleetRunStatus }>(this.prisma, Prisma.sql`SELECT status FROM "FleetRun" WHERE id = ${runId}`);
    if (row && CANCELLED_STATUSES.includes(row.status)) return 'cancelled';
    return row && PAUSED_STATUSES.includes(row.status) ? 'paused' : null;
  }

  /** Forgets a run that has no job at all. */
  async discardEmpty(runId: string): Promise<void> {
    await sqlRows(this.prisma, Prisma.sql`DELETE FROM "FleetRun" WHERE id = ${runId} AND total = 0`);
  }

  /**
   * Writes the final counters once every job of the run has an outcome;
   * false when some have none yet. `revise` also rewrites a run that ended
   * FAILED: a failed job retried since has succeeded.
   */
  async finish(runId: string, counters: RunCounters | null, options: { revise?: boolean } = {}): Promise<boolean> {
    if (!counters || !isDone(counters)) return false;
    await moveRun(this.prisma, runId, options.revise ? [...OPEN_STATUSES, 'FAILED'] : OPEN_STATUSES, endStatus(counters), counters);
    return true;
  }

  async markInterrupted(runId: string): Promise<void> {
    await moveRun(this.prisma, runId, OPEN_STATUSES, 'INTERRUPTED');
  }

  /** Puts back a run marked INTERRUPTED whose counters were in fact live; false when it was not INTERRUPTED. */
  async restoreInterrupted(runId: string): Promise<boolean> {
    return (await moveRun(this.prisma, runId, ['INTERRUPTED'], 'RUNNING')).moved;
  }

  /** The runs of a family still open (they may follow jobs), but `except`. */
  async openRunIds(family: string, except: string): Promise<string[]> {
    const open = await this.prisma.fleetRun.findMany({
      where: { family, status: { in: OPEN_STATUSES.filter((status) => !CANCELLED_STATUSES.includes(status)) }, id: { not: except } },
      select: { id: true },
    });
    return open.map((run) => run.id);
  }

  /**
   * Runs whose record may lag behind Redis: unfinished ones, those still
   * being enqueued included (their producer may have died, with or without
   * their Redis), and those INTERRUPTED within the counters' lifetime.
   */
  async toReconcile(): Promise<Pick<RunRow, 'id' | 'family' | 'status' | 'redisMarker' | 'redisAddress' | 'startedAt' | 'enqueuedAt' | 'finishedAt'>[]> {
    return this.prisma.fleetRun.findMany({
      where: {
        OR: [{ finishedAt: null }, { status: 'INTERRUPTED', finishedAt: { gte: new Date(Date.now() - RUN_TTL_SECONDS * 1000) } }],
      },
      select: { id: true, family: true, status: true, redisMarker: true, redisAddress: true, startedAt: true, enqueuedAt: true, finishedAt: true },
    });
  }

  async get(runId: string): Promise<RunRow | null> {
    return this.prisma.fleetRun.findUnique({ where: { id: runId } });
  }

  /** The latest runs first. */
  async list(options: { family?: string; limit?: number } = {}): Promise<RunRow[]> {
    return this.prisma.fleetRun.findMany({
      where: options.family ? { family: options.family } : {},
      orderBy: { startedAt: 'desc' },
      take: options.limit ?? 20,
    });
  }
}
