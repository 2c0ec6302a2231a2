import type { RedisClient } from '../redis/connection.js';
import type { Logger } from 'pino';
import type { MarketConfig } from '../config/market.js';
import type { PrismaClient } from '../db/prisma.js';
import type { RowScope } from './scope.js';

/** What every job of every family carries: ids only, never row contents or secrets. */
export interface JobData {
  runId: string;
  /** The row (or ticker) the job works on; the family's source query produced it. */
  key: string;
  /** Proof that the producer of run `by` (or `runId`) added the job (see job-seal.ts). */
  seal?: string;
  /** The run whose producer added the job, once it was handed over to another run that follows it. */
  by?: string;
}

export type JobOutcome = { status: 'changed'; detail?: string } | { status: 'skipped'; reason: string };

export interface HandlerContext {
  prisma: PrismaClient;
  /** Non-blocking Redis connection of the worker process, for shared state (budgets, queues). */
  redis: RedisClient;
  /** Queue key prefix of the fleet. */
  prefix: string;
  log: Logger;
  /** Adds to a named figure of a run (calls made, rows updated...), shown with its progress. */
  count(runId: string, stat: string, n?: number): void;
  /** The market-data settings, read and checked once when the workers started. */
  market: MarketConfig;
}

/** One job's work as the handler sees it. */
export interface WorkItem {
  key: string;
  runId: string;
  jobId: string;
}

/** An outcome, or an Error that fails this item's job alone (a PermanentJobError fails it without retry). */
export type ItemResult = JobOutcome | Error;

export interface FamilyOptions {
  /** Tries per job before it fails for good. */
  attempts: number;
  /** Exponential backoff base delay in ms; BullMQ adds jitter. */
  backoffMs: number;
  /** Jobs one worker process runs at once for this family. */
  concurrency: number;
  /** Global rate limit of the family's queue, shared by every worker process. */
  limiter?: { max: number; duration: number };
  /**
   * Items of concurrent jobs handled together, at most `maxSize` per call
   * after waiting at most `maxWaitMs` for the batch to fill. maxSize 1 turns
   * batching off.
   */
  batch: { maxSize: number; maxWaitMs: number };
  /**
   * Completed jobs kept in Redis for the dashboard: at most this many, and
   * none older than `keepCompletedHours`. 0 keeps none.
   */
  keepCompleted: number;
  /** How long a completed job stays on the board, in hours. */
  keepCompletedHours: number;
  /** Failed jobs kept in Redis, with their reasons. */
  keepFailed: number;
}

export const DEFAULT_FAMILY_OPTIONS: FamilyOptions = {
  attempts: 5,
  backoffMs: 1_000,
  concurrency: 20,
  batch: { maxSize: 1, maxWaitMs: 0 },
  keepCompleted: 1_000,
  keepCompletedHours: 24,
  keepFailed: 50_000,
};

/**
 * A job family: everything the producer, the workers, the CLI and the
 * dashboard need to know about one kind of work. Adding a family is adding a
 * module that exports one of these and listing it in families/index.ts.
 */
export interface JobFamily {
  /** Also the BullMQ queue name. Lowercase letters and dashes. */
  name: string;
  /** One line: what the family does, for `tys families`, the CLI's help and the README's table. */
  description: string;
  /** A well-formed key of a row that does not exist (`Investment.nosuchrow`): what a key looks like, in help and tests. */
  exampleKey: string;
  /** One line: what `tys audit` counts for the family (with `audit`). */
  auditHelp?: string;
  /** One line: what `tys verify` checks for the family (with `verify`). */
  verifyHelp?: string;
  /** Scope kinds the family's source query takes (any family takes a retry of its own jobs). */
  scopes: ReadonlyArray<RowScope['kind']>;
  /**
   * One page of the keys that still need work, in ascending key order,
   * strictly after `after` (keyset pagination: never the whole table).
   */
  source: (prisma: PrismaClient, scope: RowScope, after: string, limit: number) => Promise<string[]>;
  /**
   * The keys of the family's jobs that concern one investment (its id, its
   * lots, its ticker), for `tys why investment ID`. Default: the family's
   * jobs concern no investment.
   */
  investmentKeys?: (prisma: PrismaClient, investmentId: string) => Promise<string[]>;
  /** Validates a key before it becomes a job id or reaches SQL. */
  isValidKey: (key: string) => boolean;
  /**
   * Does the work for a batch of keys (distinct jobs; see options.batch) and
   * returns one result per item, in order. Must be idempotent: a job can run
   * more than once, and the same key can even arrive twice in one batch.
   */
  handle: (ctx: HandlerContext, items: WorkItem[]) => Promise<ItemResult[]>;
  /**
   * The tables and columns the family changes, which `tys revert` may put
   * back from the run's audit entries (only those). Default none.
   */
  revertible?: Record<string, RevertibleTable>;
  /**
   * Tables the family's work fills with many new rows (a lot per
   * investment): while it runs, the workers keep their planner statistics
   * fresh (see TableStatsKeeper), so that the application's queries on them
   * keep their plans. Default none.
   */
  grows?: readonly string[];
  /** What work the database still needs, by check: counts and a sample of offending ids. */
  audit?: (prisma: PrismaClient) => Promise<AuditFinding[]>;
  /**
   * Checks that the family's work is complete and correct over the whole
   * database. `context` gives what a check needs beyond the database (what
   * the fleet remembers in Redis); without it such a check is stricter.
   */
  verify?: (prisma: PrismaClient, context?: VerifyContext) => Promise<VerifyReport>;
  options: FamilyOptions;
}

export interface AuditFinding {
  check: string;
  count: number;
  sample: string[];
}

/** The SQL type a column's audit text is cast back to: a Postgres type, or an enum of the schema (quoted). */
export type RevertibleColumnType = 'numeric' | 'text' | 'boolean' | 'timestamp(3)' | '"TaxLotStatus"';

export interface RevertibleTable {
  /** Columns the family writes, with the SQL type their audit text is cast back to. */
  columns: Record<string, RevertibleColumnType>;
  /** Rows the family creates may be deleted by a revert (when they still hold what it wrote). Default false. */
  deletable?: boolean;
  /** The table has an updatedAt column, set when a value is put back. */
  hasUpdatedAt: boolean;
}

export interface VerifyContext {
  redis: RedisClient;
  prefix: string;
}

export interface VerifyReport {
  ok: boolean;
  /** Rows checked. */
  checked: number;
  /** Offending rows, each with what is wrong; at most `sampleLimit` of them. */
  problems: { id: string; problem: string }[];
  /** Offending rows in all. */
  problemCount: number;
}

/** Deterministic, so enqueuing the same row twice is a no-op. BullMQ ids may not contain ':' nor be all digits. */
export function jobIdFor(family: JobFamily, key: string): string {
  return `${family.name}-${key}`;
}

/** The handler of a family that takes each item on its own (no batching): items run side by side. */
export function eachItem(handle: (ctx: HandlerContext, item: WorkItem) => Promise<ItemResult>): JobFamily['handle'] {
  return (ctx, items) => Promise.all(items.map((item) => handle(ctx, item)));
}
