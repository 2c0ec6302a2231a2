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

/** A note longer than this is cut: it is a line for the history, not a document. */
const MAX_NOTE = 500;

/** The history of what operators did to runs (FleetRunAction). */
export class RunActions {
  constructor(private readonly prisma: PrismaClient) {}

  async record(runId: string, action: string, by: Operator, result: string): Promise<void> {
    await sqlRows(
      this.prisma,
      Prisma.sql`INSERT INTO "FleetRunAction" ("runId", action, operator, note, result, at)
                 VALUES (${runId}, ${action}, ${by.operator}, ${by.note?.slice(0, MAX_NOTE) ?? null}, ${result}, ${utcTimestampSql(new Date())})`,
    );
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
