import type pg from 'pg';
import type { Prisma, PrismaClient } from '../generated/prisma/client.js';

/** Runs statements inside one transaction; rows come back as pg returns them (numeric as exact strings). */
export interface SqlTransaction {
  query<Row>(statement: Prisma.Sql): Promise<Row[]>;
}

const pools = new WeakMap<PrismaClient, pg.Pool>();

/** Records the pg pool a client runs on, so that hot paths can share its connections. */
export function registerPool(prisma: PrismaClient, pool: pg.Pool): void {
  pools.set(prisma, pool);
}

/**
 * One transaction straight on the pg pool under `prisma`, for set-based
 * statements on a hot path: Prisma's per-query work (parameter and row
 * conversion, its transaction manager) was about 15 of the lots worker's 70
 * µs of CPU per job. The statements are still built
 * with Prisma.sql, so values are always parameters, never spliced text.
 *
 * A connection whose BEGIN, COMMIT or ROLLBACK fails is destroyed rather than
 * returned to the pool: it is dead or in an unknown state.
 */
export async function sqlTransaction<T>(prisma: PrismaClient, work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
  const pool = pools.get(prisma);
  if (!pool) throw new Error('sqlTransaction: this PrismaClient was not made by createPrisma, so its pg pool is unknown');
  const client = await pool.connect();
  const tx: SqlTransaction = {
    async query<Row>(statement: Prisma.Sql) {
      return (await client.query(statement.text, statement.values)).rows as Row[];
    },
  };
  // Set when BEGIN, COMMIT or ROLLBACK fails: the session is dead or in an
  // unknown state, and pg destroys a client released with an error.
  let broken: Error | undefined;
  const control = async (command: 'BEGIN' | 'COMMIT' | 'ROLLBACK') => {
    try {
      await client.query(command);
    } catch (error) {
      broken = error as Error;
      throw error;
    }
  };
  try {
    await control('BEGIN');
    let result: T;
    try {
      result = await work(tx);
    } catch (error) {
      await control('ROLLBACK').catch(() => undefined);
      throw error;
    }
    await control('COMMIT');
    return result;
  } finally {
    client.release(broken);
  }
}
