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
  const max = options.maxConnections ?? 10;
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    // A connection, once open, stays open until the client disconnects.
    // Opening one costs Postgres a new process. pg closes a connection idle
    // for 10 s by default, and its pool reuses the last one released: under
    // steady load the spare ones go idle, are closed, and are opened again at
    // the next burst while requests wait, a stall every 10 s or so that the
    // rehearsal's application saw and that kept connections do not have.
    min: max,
    // An idle pool never keeps a process from exiting.
    allowExitOnIdle: true,
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
  registerPool(prisma, pool, max);
  return prisma;
}
