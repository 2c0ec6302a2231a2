import { Prisma, type PrismaClient } from '../db/prisma.js';
import { sqlRows } from '../db/sql.js';

/**
 * Which rows a family's source query covers. `changed`: the rows the
 * application changed since the fleet last brought them in step, as the
 * family's change log holds them (only families that keep one take it).
 */
export type RowScope =
  { kind: 'all' } | { kind: 'changed' } | { kind: 'investments'; ids: string[] } | { kind: 'portfolio'; id: string } | { kind: 'user'; id: string };

/**
 * The rows of jobs of an earlier run that failed or were skipped, as the
 * fleet noted them, narrowed by the filter (tys retry with a filter): any
 * family's, without its source query, each row taken up once.
 */
export interface RetryScope {
  kind: 'retry';
  /** The run whose jobs are taken up again. */
  runId: string;
  outcome?: 'failed' | 'skipped';
  /** A part of the reason, in any case (as `tys jobs --reason`). */
  reason?: string;
  /** These rows only. */
  keys?: string[];
}

/** Which rows an enqueue covers. */
export type Scope = RowScope | RetryScope;

/** Ids of the application are cuids; anything else is refused before it reaches SQL or Redis. */
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function isRowId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

export function describeScope(scope: Scope): string {
  switch (scope.kind) {
    case 'all':
      return 'all rows';
    case 'changed':
      return 'rows the application changed';
    case 'investments':
      return `${scope.ids.length} investment(s)`;
    case 'portfolio':
      return `portfolio ${scope.id}`;
    case 'user':
      return `user ${scope.id}`;
    case 'retry':
      return retryText(scope);
  }
}

/** "the failed jobs of run-... whose reason holds "x" among 2 row(s)": what a retry takes up. */
function retryText(scope: RetryScope): string {
  const jobs = scope.outcome ? `${scope.outcome} jobs` : 'failed and skipped jobs';
  const reason = scope.reason !== undefined ? ` whose reason holds "${scope.reason}"` : '';
  const keys = scope.keys ? ` among ${scope.keys.length} row(s)` : '';
  return `the ${jobs} of ${scope.runId}${reason}${keys}`;
}

/**
 * The WHERE fragment that restricts investments (alias `i`, joined to its
 * portfolio as `p`) to a scope.
 */
export function investmentScopeSql(scope: RowScope): Prisma.Sql {
  switch (scope.kind) {
    case 'all':
      return Prisma.sql`TRUE`;
    case 'changed':
      return Prisma.sql`i.id IN (SELECT c."investmentId" FROM "FleetLotChange" c)`;
    case 'investments':
      return Prisma.sql`i.id = ANY(${scope.ids}::text[])`;
    case 'portfolio':
      return Prisma.sql`i."portfolioId" = ${scope.id}`;
    case 'user':
      return Prisma.sql`p."userId" = ${scope.id}`;
  }
}

/** The rows a scope names that do not exist, as "investment ID" and the like: an enqueue over them would silently do nothing. */
export async function missingScopeRows(prisma: PrismaClient, scope: Scope): Promise<string[]> {
  // On the pool, as the producer's other reads (see sqlRows).
  const exists = async (table: 'Portfolio' | 'User', id: string) =>
    (await sqlRows(prisma, Prisma.sql`SELECT 1 FROM ${Prisma.raw(`"${table}"`)} WHERE id = ${id}`)).length > 0;
  switch (scope.kind) {
    case 'all':
    case 'changed':
    case 'retry':
      return [];
    case 'investments': {
      const rows = await sqlRows<{ id: string }>(prisma, Prisma.sql`SELECT id FROM "Investment" WHERE id = ANY(${scope.ids}::text[])`);
      const found = new Set(rows.map((row) => row.id));
      return scope.ids.filter((id) => !found.has(id)).map((id) => `investment ${id}`);
    }
    case 'portfolio':
      return (await exists('Portfolio', scope.id)) ? [] : [`portfolio ${scope.id}`];
    case 'user':
      return (await exists('User', scope.id)) ? [] : [`user ${scope.id}`];
  }
}
