import { Prisma, type PrismaClient } from '../../db/prisma.js';
import { sqlRows } from '../../db/sql.js';
import { utcTimestampSql } from '../../db/utc.js';

/** Who acts on a run, and why: "cli user@host" or "dashboard USER", with the operator's note if any. */
export interface Operator {
  operator: string;
  note?: string;
}

/** One operator action on a run, as FleetRunAction keeps it. */
export interface RecordedAction {
  runId: string;
  action: string;
  operator: string;
  note: string | null;
  /** What it led to: the run's status, or what a revert restored. */
  result: string;
  at: Date;
}

/** A change an operator made to a scheduler, as FleetRunAction keeps it. */
export interface ScheduleAction {
  schedule: string;
  /** "schedule apply" or "schedule remove". */
  action: string;
  operator: string;
  note: string | null;
  /** What became of the scheduler: created, updated, removed. */
  result: string;
  at: Date;
}

/** A note longer than this is cut: it is a line for the history, not a document. */
export const MAX_NOTE = 500;

/** The history of what operators did to runs and schedulers (FleetRunAction). */
export class RunActions {
  constructor(private readonly prisma: PrismaClient) {}

  async record(runId: string, action: string, by: Operator, result: string): Promise<void> {
    await sqlRows(
      this.prisma,
      Prisma.sql`INSERT INTO "FleetRunAction" ("runId", action, operator, note, result, at)
                 VALUES (${runId}, ${action}, ${by.operator}, ${by.note?.slice(0, MAX_NOTE) ?? null}, ${result}, ${utcTimestampSql(new Date())})`,
    );
  }

  /** Notes a change to each of the schedulers. */
  async recordSchedules(schedules: readonly string[], action: string, by: Operator, result: string): Promise<void> {
    if (schedules.length === 0) return;
    await sqlRows(
      this.prisma,
      Prisma.sql`INSERT INTO "FleetRunAction" (schedule, action, operator, note, result, at)
                 SELECT unnest(${[...schedules]}::text[]), ${action}, ${by.operator}, ${by.note?.slice(0, MAX_NOTE) ?? null}, ${result}, ${utcTimestampSql(new Date())}`,
    );
  }

  /** The latest changes to schedulers, newest first. */
  async ofSchedules(limit: number): Promise<ScheduleAction[]> {
    const rows = await sqlRows<ScheduleAction>(
      this.prisma,
      Prisma.sql`SELECT schedule, action, operator, note, result, at AT TIME ZONE 'UTC' AS at FROM "FleetRunAction"
                  WHERE schedule IS NOT NULL ORDER BY at DESC, id DESC LIMIT ${limit}`,
    );
    return rows.map((row) => ({ ...row, at: new Date(row.at) }));
  }

  /** The actions on each of the runs, oldest first. */
  async ofRuns(runIds: readonly string[]): Promise<Map<string, RecordedAction[]>> {
    const byRun = new Map<string, RecordedAction[]>();
    if (runIds.length === 0) return byRun;
    const rows = await sqlRows<RecordedAction>(
      this.prisma,
      Prisma.sql`SELECT "runId", action, operator, note, result, at AT TIME ZONE 'UTC' AS at FROM "FleetRunAction"
                  WHERE "runId" = ANY(${[...runIds]}::text[]) ORDER BY at, id`,
    );
    for (const row of rows) {
      const list = byRun.get(row.runId) ?? [];
      list.push({ ...row, at: new Date(row.at) });
      byRun.set(row.runId, list);
    }
    return byRun;
  }
}
