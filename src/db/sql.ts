import type pg from 'pg';
import { Prisma, type PrismaClient } from '../generated/prisma/client.js';

/** Runs statements inside one transaction; rows come back as pg returns them (numeric as exact strings). */
export interface SqlTransaction {
  query<Row>(statement: Prisma.Sql): Promise<Row[]>;
}

const pools = new WeakMap<PrismaClient, { pool: pg.Pool; size: number }>();

/** Records the pg pool a client runs on and its size, so that hot paths can share its connections. */
export function registerPool(prisma: PrismaClient, pool: pg.Pool, size: number): void {
  pools.set(prisma, { pool, size });
}

function poolOf(prisma: PrismaClient, caller: string): { pool: pg.Pool; size: number } {
  const registered = pools.get(prisma);
  if (!registered) throw new Error(`${caller}: this PrismaClient was not made by createPrisma, so its pg pool is unknown`);
  return registered;
}

/**
 * Opens connections of the pool under `prisma` until it holds `count` (or its
 * size), one after another, and keeps them (createPrisma's pools keep what
 * they open). A worker does it before its first job: otherwise its first
 * jobs make the server start a process per connection at once (11 in the
 * same half second for the constraints family's first 40 jobs), at the
 * server's own priority, while the application waits for CPU. One at a time
 * spreads that cost. Resolves to the connections the pool then holds.
 */
export async function openConnections(prisma: PrismaClient, count: number): Promise<number> {
  const { pool, size } = poolOf(prisma, 'openConnections');
  const target = Math.min(count, size);
  // Held until the last one is open, so that each connect() opens another instead of taking back the one just released.
  const held: pg.PoolClient[] = [];
  try {
    while (pool.totalCount < target) held.push(await pool.connect());
  } finally {
    for (const client of held) client.release();
  }
  return pool.totalCount;
}

/**
 * One statement straight on the pg pool under `prisma`, built with
 * Prisma.sql (values always parameters), its rows as pg returns them
 * (numeric and bigint as exact strings). For a process that needs nothing
 * else of Prisma's query engine: `tys enqueue` reads its source pages and
 * writes its run's record this way, and never starts the engine, about 150
 * ms of CPU at the start of every enqueue, on the application's machine
 * when the fleet shares it.
 */
export async function sqlRows<Row>(prisma: PrismaClient, statement: Prisma.Sql): Promise<Row[]> {
  const { pool } = poolOf(prisma, 'sqlRows');
  return (await pool.query(statement.text, statement.values)).rows as Row[];
}

/**
 * One transaction straight on the pg pool under `prisma`, for set-based
 * statements on a hot path: Prisma's per-query work (parameter and row
 * conversion, its transaction manager) was a fifth of the lots worker's CPU
 * per job. The statements are still built
 * with Prisma.sql, so values are always parameters, never spliced text.
 *
 * A connection whose BEGIN, COMMIT or ROLLBACK fails is destroyed rather than
 * returned to the pool: it is dead or in an unknown state.
 */
export async function sqlTransaction<T>(prisma: PrismaClient, work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
  const { pool } = poolOf(prisma, 'sqlTransaction');
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

/**
 * Fails with one line when the database of `databaseUrl` does not exist on
 * its server: a process that works on a database must not run on as if it
 * were down for a moment, warning for every job, when its DATABASE_URL names
 * one that is not there. Any other failure (the server not answering yet)
 * is left to the work's own retries.
 */
export async function requireDatabase(prisma: PrismaClient, databaseUrl: string): Promise<void> {
  try {
    await sqlRows(prisma, Prisma.sql`SELECT 1`);
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') return;
    const url = new URL(databaseUrl);
    throw new Error(`database "${decodeURIComponent(url.pathname.slice(1))}" does not exist on ${url.hostname}:${url.port || 5432}: is DATABASE_URL right?`, {
      cause: error,
    });
  }
}
