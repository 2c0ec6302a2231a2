import type { Logger } from 'pino';
import { Prisma, type PrismaClient } from '../db/prisma.js';
import { repeat } from './repeat.js';

export interface TableStatsOptions {
  /** How often, in ms, the tables' row counts are read. Default 5,000. */
  intervalMs?: number;
  /** Rows added since the last ANALYZE, as a share of the rows the statistics know of, past which the table is analyzed. Default 1: when it has doubled. */
  grownShare?: number;
  /** ...and at least this many rows. Default 1,000. */
  minGrownRows?: number;
}

/** One key for every process of the fleet: only one of them analyzes at a time. */
const ANALYZE_LOCK = 7_342_001;

/**
 * Keeps the planner statistics of the tables the fleet fills up to date
 * while it fills them. A run can grow a table from nothing to millions of
 * rows in minutes, faster than autovacuum's analyze follows (and not at all
 * where autovacuum is off). With statistics that far behind, the
 * application's "open lots of a portfolio" read was planned as a
 * sequential scan of every lot, hundreds of ms a request.
 *
 * Two things keep that cheap, since an ANALYZE is a burst of the server's
 * CPU at the application's own priority, growing with the table (figures:
 * docs/journal):
 * - the planner scales a table's row estimate by its current size on disk,
 *   so what goes stale as a table grows is only its columns' distributions,
 *   which a lot per investment does not change: once the table has doubled
 *   is often enough, a few ANALYZEs where every fifth changed took a dozen;
 * - only the columns its indexes hold are analyzed: they decide between an
 *   index and a scan, and the rest cost as much again. Such an ANALYZE
 *   still counts the rows, and leaves the table's change count to
 *   autovacuum, whose own full analyze comes when it would have without
 *   the fleet.
 *
 * The ANALYZE takes a share-update-exclusive lock, which blocks no read or
 * write, in one worker process at a time.
 */
/** One look: analyzes each of `tables` that has grown past its statistics; returns those it analyzed. */
export async function refreshTableStats(prisma: PrismaClient, tables: readonly string[], log: Logger, options: TableStatsOptions = {}): Promise<string[]> {
  // `target` is what ANALYZE takes, its names quoted by the server (keywords included).
  const grown = await prisma.$queryRaw<{ table: string; rows: bigint; known: number; columns: string[]; target: string }[]>`
    SELECT s.relname AS table, s.n_live_tup AS rows, greatest(c.reltuples, 0)::float8 AS known, indexed.columns,
           quote_ident(s.relname) || COALESCE(' (' || indexed.quoted || ')', '') AS target
      FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
     CROSS JOIN LATERAL (
           SELECT COALESCE(array_agg(DISTINCT a.attname::text), '{}') AS columns, string_agg(DISTINCT quote_ident(a.attname), ', ') AS quoted
             FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = c.oid) indexed
     WHERE s.schemaname = current_schema() AND s.relname = ANY(${[...tables]}::text[])
       AND s.n_live_tup - greatest(c.reltuples, 0) >= greatest(${options.minGrownRows ?? 1_000}, ${options.grownShare ?? 1} * greatest(c.reltuples, 0))`;
  const analyzed: string[] = [];
  for (const { table, rows, known, columns, target } of grown) {
    await prisma.$transaction(async (tx) => {
      const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`SELECT pg_try_advisory_xact_lock(${ANALYZE_LOCK}) AS locked`;
      if (!lock?.locked) return;
      const started = Date.now();
      // A table without an index has nothing for a plan to choose: all its columns then (no list).
      await tx.$executeRaw`ANALYZE ${Prisma.raw(target)}`;
      analyzed.push(table);
      log.info(
        { table, columns, rows: Number(rows), rowsKnownBefore: Math.round(known), ms: Date.now() - started },
        'table analyzed: it has grown past its statistics',
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
