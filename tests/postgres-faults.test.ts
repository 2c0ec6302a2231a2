import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrisma } from '../src/db/prisma.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { adminUrl } from './support/server.js';

/** Settles with the promise, or with 'still waiting' once the deadline passes: a hang fails the test instead of stalling it. */
function withinDeadline<T>(promise: Promise<T>, ms: number): Promise<T | 'still waiting'> {
  return Promise.race([promise, new Promise<'still waiting'>((resolve) => setTimeout(() => resolve('still waiting'), ms).unref())]);
}

describe('Postgres connections cut inside transactions', () => {
  let db: TestDatabase;
  let admin: pg.Client;
  beforeAll(async () => {
    db = await createTestDatabase();
    admin = new pg.Client({ connectionString: adminUrl() });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await db?.drop();
  });

  it('never leak pool connections: after more cuts than the pool holds, queries still run and disconnect ends', async () => {
    const prisma = createPrisma(db.url, { maxConnections: 2 });
    for (let i = 0; i < 4; i += 1) {
      const transaction = prisma.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT pg_sleep(5)`;
      });
      // Wait until the transaction's statement runs, then cut its backend (this database's only).
      for (;;) {
        const { rows } = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep%'`, [db.name]);
        if (rows[0].n > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [db.name]);
      await expect(transaction).rejects.toThrow(/terminating connection|connection error|Connection terminated/);
    }
    expect(await withinDeadline(prisma.$queryRaw<{ ok: number }[]>`SELECT 1 AS ok`, 10_000)).toEqual([{ ok: 1 }]);
    expect(await withinDeadline(prisma.$disconnect().then(() => 'disconnected'), 10_000)).toBe('disconnected');
  });
});
