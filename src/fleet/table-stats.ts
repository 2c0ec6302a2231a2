import type { Logger } from 'pino';
import { Prisma, type PrismaClient } from '../db/prisma.js';
import { repeat } from './repeat.js';

export interface TableStatsOptions {
  /** How often, in ms, the tables' change counts are read. Default 5,000. */
  intervalMs?: number;
  /** Rows changed since the last ANALYZE, as a share of the rows the statistics know of, past which the table is analyzed. Default 0.2. */
  changedShare?: number;
  /** ...and at least this many rows. Default 1,000. */
  minChangedRows?: number;
}

/** One key for every process of the fleet: only one of them analyzes at a time. */
const ANALYZE_LOCK = 7_342_001;

/**
 * Keeps the planner statistics of the tables the fleet fills up to date
 * while it fills them. A run can grow a table from nothing to millions of
 * rows in minutes, faster than autovacuum's analyze follows (and not at all
 * where autovacuum is off); meanwhile the planner still believes the table
 * empty and sends the application's queries on it to sequential scans. Past
 * `changedShare` of rows changed since the last ANALYZE, the table is
 * analyzed (a sample, under a share-update-exclusive lock that blocks no
 * read or write), by one worker process at a time.
 */
/** One look: analyzes each of `tables` whose statistics are stale; returns those it analyzed. */
export async function refreshTableStats(prisma: PrismaClient, tables: readonly string[], log: Logger, options: TableStatsOptions = {}): Promise<string[]> {
  const stale = await prisma.$queryRaw<{ table: string; changed: bigint; known: number }[]>`
    SELECT s.relname AS table, s.n_mod_since_analyze AS changed, greatest(c.reltuples, 0)::float8 AS known
      FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
     WHERE s.schemaname = current_schema() AND s.relname = ANY(${[...tables]}::text[])
       AND s.n_mod_since_analyze >= greatest(${options.minChangedRows ?? 1_000}, ${options.changedShare ?? 0.2} * greatest(c.reltuples, 0))`;
  const analyzed: string[] = [];
  for (const { table, changed, known } of stale) {
    await prisma.$transaction(async (tx) => {
      const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`SELECT pg_try_advisory_xact_lock(${ANALYZE_LOCK}) AS locked`;
      if (!lock?.locked) return;
      const started = Date.now();
      await tx.$executeRaw`ANALYZE ${Prisma.raw(`"${table.replace(/"/g, '""')}"`)}`;
      analyzed.push(table);
      log.info(
        { table, changedRows: Number(changed), rowsKnownBefore: Math.round(known), ms: Date.now() - started },
        'table analyzed: its statistics were stale',
      );
    });
  }
  return analyzed;
}

/**
 * Runs refreshTableStats every `intervalMs` in a worker process, for the
 * tables its families grow. Failures are logged and tried again.
 */
export function startTableStatsKeeper(
  prisma: PrismaClient,
  tables: readonly string[],
  log: Logger,
  options: TableStatsOptions = {},
): { stop(): Promise<void> } {
  if (tables.length === 0) return { stop: () => Promise.resolve() };
  return repeat(async () => {
    try {
      await refreshTableStats(prisma, tables, log, options);
    } catch (error) {
      log.warn({ err: error }, 'could not refresh table statistics; trying again');
    }
  }, options.intervalMs ?? 5_000);
}
