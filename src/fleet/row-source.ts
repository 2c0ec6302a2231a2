import type { PrismaClient } from '../db/prisma.js';
import { retryTransient } from '../db/transient.js';
import type { JobFamily } from './family.js';
import { JobOutcomes } from './runs/outcomes.js';
import type { Scope } from './scope.js';

/**
 * Where the rows of a run come from, a page at a time, and what is told once
 * a page's jobs are in Redis. Each is tried again through a dropped
 * connection: a database blip costs a pause, not the run.
 */
export interface RowSource {
  /** The next page of keys, in ascending order, strictly after `after`; empty at the end. */
  page(after: string, limit: number): Promise<string[]>;
  /** The jobs of `keys` belong to run `runId` now (added, or followed where an earlier run's were queued). */
  taken(keys: readonly string[], runId: string): Promise<void>;
}

/**
 * A scope's rows: the family's source query for the rows that still need
 * its work, or, for a retry, the rows of the earlier run's jobs that the
 * filter names, each noted as taken up so that the same retry again finds
 * nothing new. A retried job runs whether or not the source query would
 * select its row: handlers are idempotent, and change nothing where
 * nothing is left to do.
 */
export function rowSource(prisma: PrismaClient, family: JobFamily, scope: Scope): RowSource {
  if (scope.kind !== 'retry') {
    return { page: (after, limit) => retryTransient(() => family.source(prisma, scope, after, limit)), taken: () => Promise.resolve() };
  }
  const outcomes = new JobOutcomes(prisma);
  return {
    page: (after, limit) => retryTransient(() => outcomes.retryPage(scope, after, limit)),
    taken: (keys, runId) => retryTransient(() => outcomes.markRetried(scope, keys, runId)),
  };
}
