import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { releaseBrokenTransactions } from './release-guard.js';
import { registerPool } from './sql.js';

export { Prisma, PrismaClient } from '../generated/prisma/client.js';

export interface PrismaOptions {
  /** Pool size of the pg driver. Default 10. */
  maxConnections?: number;
  /**
   * The sessions' application_name: what a DBA sees of them in
   * pg_stat_activity and in lock reports, and what they can be told apart
   * from the application's by. Default "tys".
   */
  applicationName?: string;
}

export function createPrisma(databaseUrl: string, options: PrismaOptions = {}): PrismaClient {
  // JIT off: the fleet's queries are short, paged and many. With it on, a
  // page of a source query over a large table was planned costly enough to
  // be compiled each time, a second of CPU per page taken from the
  // application (measured by the rehearsal).
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: options.maxConnections ?? 10,
    options: '-c jit=off',
    application_name: options.applicationName ?? 'tys',
  });
  // A connection the server ends (restart, failover, terminated backend)
  // fails the query that meets it, which is how callers learn of it. As an
  // 'error' event on the pool or on a client that nobody listens to at that
  // moment, it would crash the process instead.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const adapter = releaseBrokenTransactions(new PrismaPg(pool, { disposeExternalPool: true }));
  const prisma = new PrismaClient({ adapter });
  registerPool(prisma, pool);
  return prisma;
}
