import { Prisma } from '../db/prisma.js';

/** Which rows an enqueue covers. */
export type Scope =
  | { kind: 'all' }
  | { kind: 'investments'; ids: string[] }
  | { kind: 'portfolio'; id: string }
  | { kind: 'user'; id: string };

/** Ids of the application are cuids; anything else is refused before it reaches SQL or Redis. */
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function isRowId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

export function describeScope(scope: Scope): string {
  switch (scope.kind) {
    case 'all':
      return 'all rows';
    case 'investments':
      return `${scope.ids.length} investment(s)`;
    case 'portfolio':
      return `portfolio ${scope.id}`;
    case 'user':
      return `user ${scope.id}`;
  }
}

/**
 * The WHERE fragment that restricts investments (alias `i`, joined to its
 * portfolio as `p`) to a scope.
 */
export function investmentScopeSql(scope: Scope): Prisma.Sql {
  switch (scope.kind) {
    case 'all':
      return Prisma.sql`TRUE`;
    case 'investments':
      return Prisma.sql`i.id = ANY(${scope.ids}::text[])`;
    case 'portfolio':
      return Prisma.sql`i."portfolioId" = ${scope.id}`;
    case 'user':
      return Prisma.sql`p."userId" = ${scope.id}`;
  }
}
