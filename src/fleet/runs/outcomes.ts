import { Prisma, type PrismaClient } from '../../db/prisma.js';
import { sqlRows } from '../../db/sql.js';
import { utcTimestampSql } from '../../db/utc.js';
import type { RetryScope } from '../scope.js';

/** What is kept of a job that failed or was skipped (FleetJobOutcome). */
export interface OutcomeNote {
  runId: string;
  family: string;
  /** The row the job was for. */
  key: string;
  jobId: string;
  outcome: 'failed' | 'skipped';
  reason: string;
  /** Attempts the job made, the last included. */
  attempts: number;
}

export interface NotedOutcome extends OutcomeNote {
  at: Date;
  /** The run a filtered retry took the job up in, if any. */
  retriedBy: string | null;
}

/**
 * What to look for: every field narrows. `reason` matches a part of the
 * reason, in any case, as it reads or as countByReason folds it (with
 * KEY_MARK and VALUE_MARK): a reason copied from the counts finds its jobs.
 */
export interface OutcomeFilter {
  runId?: string;
  family?: string;
  key?: string;
  /** Any of these rows. */
  keys?: readonly string[];
  outcome?: 'failed' | 'skipped';
  reason?: string;
  /** Only jobs no filtered retry has taken up yet. */
  notRetried?: boolean;
  /** The row it names (its key), or a part of the reason (the runs page's search box). */
  keyOrReason?: string;
}

/** What a filtered retry would take up: how many jobs, a few of their rows, and those a retry took up already. */
export interface RetryPreview {
  /** Jobs the retry would take up. */
  jobs: number;
  /** A few of their rows, in key order. */
  sample: string[];
  /** Jobs that match but were taken up by an earlier retry. */
  alreadyRetried: number;
  /** The runs that took those up. */
  retriedBy: string[];
}

/** A reason and how many jobs ended with it. */
export interface ReasonCount {
  outcome: 'failed' | 'skipped';
  reason: string;
  jobs: number;
}

/** What stands for a job's own row, and for a decimal value, in the reasons counted together. */
export const KEY_MARK = '<key>';
export const VALUE_MARK = '<value>';
const DECIMAL_PATTERN = String.raw`-?[0-9]+\.[0-9]+`;
/** A reason as countByReason counts it: its row's key and its decimal values replaced by the marks. */
const FOLDED_REASON = Prisma.sql`regexp_replace(replace(reason, key, ${KEY_MARK}), ${DECIMAL_PATTERN}, ${VALUE_MARK}, 'g')`;

/** Rows a preview names. */
export const PREVIEW_SAMPLE = 10;

/** A reason longer than this is cut: an error can quote a whole statement. */
const MAX_REASON = 500;

/** How long notes are kept unless the operator says otherwise (`tys jobs --purge`). */
export const DEFAULT_OUTCOME_RETENTION_MS = 90 * 24 * 3600 * 1000;

/** Notes a purge deletes per statement: a short lock on a few rows at a time, never the whole table. */
const PURGE_BATCH = 5_000;

/**
 * The Postgres side of what happened to each row: the jobs that failed or
 * were skipped, with their reasons (completed jobs leave AuditLog entries).
 * Written by the workers' batch end, one statement per batch; read by
 * `tys why` and `tys jobs`.
 */
export class JobOutcomes {
  constructor(private readonly prisma: PrismaClient) {}

  /** Notes the outcomes, one statement for all; a job noted again (retried, or counted twice after a crash) keeps its latest. */
  async note(notes: readonly OutcomeNote[]): Promise<void> {
    if (notes.length === 0) return;
    const column = <K extends keyof OutcomeNote>(key: K) => notes.map((note) => note[key]);
    await sqlRows(
      this.prisma,
      Prisma.sql`
        INSERT INTO "FleetJobOutcome" ("runId", family, key, "jobId", outcome, reason, attempts, at)
        SELECT *, ${utcTimestampSql(new Date())} FROM unnest(${column('runId')}::text[], ${column('family')}::text[], ${column('key')}::text[],
                                ${column('jobId')}::text[], ${column('outcome')}::text[],
                                ${notes.map((note) => note.reason.slice(0, MAX_REASON))}::text[], ${column('attempts')}::int[])
        ON CONFLICT ("runId", "jobId") DO UPDATE SET outcome = EXCLUDED.outcome, reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, at = EXCLUDED.at`,
    );
  }

  /** Forgets the failures of jobs of the run that have since succeeded (a retry). */
  async clearFailures(runId: string, jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await sqlRows(
      this.prisma,
      Prisma.sql`DELETE FROM "FleetJobOutcome" WHERE "runId" = ${runId} AND "jobId" = ANY(${[...jobIds]}::text[]) AND outcome = 'failed'`,
    );
  }

  private where(filter: OutcomeFilter): Prisma.Sql {
    const holds = (text: string) => Prisma.sql`strpos(lower(reason), lower(${text})) > 0`;
    const conditions = [
      filter.runId !== undefined ? Prisma.sql`"runId" = ${filter.runId}` : null,
      filter.family !== undefined ? Prisma.sql`family = ${filter.family}` : null,
      filter.key !== undefined ? Prisma.sql`key = ${filter.key}` : null,
      filter.keys !== undefined ? Prisma.sql`key = ANY(${[...filter.keys]}::text[])` : null,
      filter.outcome !== undefined ? Prisma.sql`outcome = ${filter.outcome}` : null,
      filter.reason !== undefined ? Prisma.sql`(${holds(filter.reason)} OR strpos(lower(${FOLDED_REASON}), lower(${filter.reason})) > 0)` : null,
      filter.notRetried ? Prisma.sql`"retriedBy" IS NULL` : null,
      filter.keyOrReason !== undefined ? Prisma.sql`(key = ${filter.keyOrReason} OR ${holds(filter.keyOrReason)})` : null,
    ].filter((condition) => condition !== null);
    return conditions.length > 0 ? Prisma.sql`WHERE ${Prisma.join(conditions, ' AND ')}` : Prisma.empty;
  }

  /** The notes that match, newest first, at most `limit`. */
  async find(filter: OutcomeFilter, limit: number): Promise<NotedOutcome[]> {
    const rows = await sqlRows<NotedOutcome>(
      this.prisma,
      Prisma.sql`SELECT "runId", family, key, "jobId", outcome, reason, attempts, at AT TIME ZONE 'UTC' AS at, "retriedBy" FROM "FleetJobOutcome" ${this.where(filter)}
                  ORDER BY at DESC, id DESC LIMIT ${limit}`,
    );
    return rows.map((row) => ({ ...row, at: new Date(row.at) }));
  }

  /**
   * How many jobs match, by outcome and reason, the most common first. A
   * reason that names its own row or one of its values counts with the
   * others of its kind: the row's key reads KEY_MARK in it, and a decimal
   * value (a quantity, a price) VALUE_MARK; whole numbers (an HTTP status)
   * stay as they are.
   */
  async countByReason(filter: OutcomeFilter): Promise<ReasonCount[]> {
    const rows = await sqlRows<{ outcome: ReasonCount['outcome']; reason: string; jobs: string }>(
      this.prisma,
      Prisma.sql`SELECT outcome, ${FOLDED_REASON} AS reason, count(*) AS jobs
                   FROM "FleetJobOutcome" ${this.where(filter)}
                  GROUP BY 1, 2 ORDER BY count(*) DESC, 2`,
    );
    return rows.map((row) => ({ outcome: row.outcome, reason: row.reason, jobs: Number(row.jobs) }));
  }

  /** The `top` most common reasons of each of the runs, as countByReason counts them, in one query. */
  async topReasonsOfRuns(runIds: readonly string[], top: number): Promise<Map<string, ReasonCount[]>> {
    const byRun = new Map<string, ReasonCount[]>();
    if (runIds.length === 0) return byRun;
    const rows = await sqlRows<{ runId: string; outcome: ReasonCount['outcome']; reason: string; jobs: string }>(
      this.prisma,
      Prisma.sql`SELECT "runId", outcome, reason, jobs FROM (
                   SELECT *, row_number() OVER (PARTITION BY "runId" ORDER BY jobs DESC, reason) AS rank FROM (
                     SELECT "runId", outcome, ${FOLDED_REASON} AS reason, count(*) AS jobs
                       FROM "FleetJobOutcome" WHERE "runId" = ANY(${[...runIds]}::text[]) GROUP BY 1, 2, 3) counted) ranked
                  WHERE rank <= ${top} ORDER BY "runId", rank`,
    );
    for (const row of rows) {
      const list = byRun.get(row.runId) ?? [];
      list.push({ outcome: row.outcome, reason: row.reason, jobs: Number(row.jobs) });
      byRun.set(row.runId, list);
    }
    return byRun;
  }

  /** What a retry over `scope` would take up, and what earlier retries took up already. */
  async previewRetry(scope: RetryScope): Promise<RetryPreview> {
    const filter = retryFilter(scope);
    const [counts] = await sqlRows<{ jobs: string; retried: string; by: string[] | null }>(
      this.prisma,
      Prisma.sql`SELECT count(*) FILTER (WHERE "retriedBy" IS NULL) AS jobs, count("retriedBy") AS retried,
                        array_agg(DISTINCT "retriedBy") FILTER (WHERE "retriedBy" IS NOT NULL) AS by
                   FROM "FleetJobOutcome" ${this.where(filter)}`,
    );
    return {
      jobs: Number(counts!.jobs),
      sample: await this.retryPage(scope, '', PREVIEW_SAMPLE),
      alreadyRetried: Number(counts!.retried),
      retriedBy: counts!.by ?? [],
    };
  }

  /** The rows a retry over `scope` takes up, in key order, strictly after `after`: its source, a page at a time. */
  async retryPage(scope: RetryScope, after: string, limit: number): Promise<string[]> {
    const rows = await sqlRows<{ key: string }>(
      this.prisma,
      Prisma.sql`SELECT key FROM "FleetJobOutcome" ${this.where({ ...retryFilter(scope), notRetried: true })} AND key > ${after}
                  ORDER BY key LIMIT ${limit}`,
    );
    return rows.map((row) => row.key);
  }

  /** Notes that run `by` took the rows up: a retry over the same filter leaves them be. */
  async markRetried(scope: RetryScope, keys: readonly string[], by: string): Promise<void> {
    if (keys.length === 0) return;
    await sqlRows(
      this.prisma,
      Prisma.sql`UPDATE "FleetJobOutcome" SET "retriedBy" = ${by}
                  WHERE "runId" = ${scope.runId} AND key = ANY(${[...keys]}::text[]) AND "retriedBy" IS NULL`,
    );
  }

  /** Deletes the notes older than `before`, a batch at a time; `onProgress` is told the count so far. Resolves to how many went. */
  async purge(before: Date, onProgress?: (deleted: number) => void): Promise<number> {
    let deleted = 0;
    for (;;) {
      const gone = await sqlRows(
        this.prisma,
        Prisma.sql`DELETE FROM "FleetJobOutcome" WHERE id IN (
                     SELECT id FROM "FleetJobOutcome" WHERE at < ${utcTimestampSql(before)} ORDER BY at LIMIT ${PURGE_BATCH}) RETURNING id`,
      );
      deleted += gone.length;
      if (gone.length < PURGE_BATCH) return deleted;
      onProgress?.(deleted);
    }
  }
}

/** The notes a retry scope names: its run's, narrowed by its filter. */
export function retryFilter(scope: RetryScope): OutcomeFilter {
  return { runId: scope.runId, outcome: scope.outcome, reason: scope.reason, keys: scope.keys };
}
