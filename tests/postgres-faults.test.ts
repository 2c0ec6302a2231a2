import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { createPrisma, Prisma, type PrismaClient } from '../src/db/prisma.js';
import { sqlTransaction } from '../src/db/sql.js';
import { isTransientDatabaseError } from '../src/db/transient.js';
import { seedMvp } from '../src/demo/seed.js';
import { lotsFamily } from '../src/families/lots.js';
import { testFleet } from './support/fleet.js';
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

  it('a client keeps its pool connections once opened, idle or not: each one opened again would cost the server a new process', async () => {
    // Fake clocks that still move on their own: a minute of idleness passes at once, queries still run.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldAdvanceTime: true });
    onTestFinished(() => void vi.useRealTimers());
    const prisma = createPrisma(db.url, { maxConnections: 3, applicationName: 'kept-connections' });
    onTestFinished(() => prisma.$disconnect());
    const sessions = async () =>
      (await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = 'kept-connections' ORDER BY pid`)).rows.map(
        (row) => row.pid,
      );
    // Three at once, each holding its connection while the others ask for theirs.
    await Promise.all([1, 2, 3].map(() => prisma.$queryRaw`SELECT 1 AS held FROM pg_sleep(0.05)`));
    const opened = await sessions();
    expect(opened).toHaveLength(3);
    // pg's default closed a connection idle for 10 s.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(await sessions()).toEqual(opened);
    await Promise.all([1, 2, 3].map(() => prisma.$queryRaw`SELECT 1 AS held FROM pg_sleep(0.05)`));
    expect(await sessions()).toEqual(opened);
  });

  const sleepingTransactions: [string, (prisma: PrismaClient) => Promise<unknown>][] = [
    ['Prisma transactions', (prisma) => prisma.$transaction((tx) => tx.$queryRaw`SELECT 1 AS slept FROM pg_sleep(5)`)],
    ['direct pg transactions (sqlTransaction)', (prisma) => sqlTransaction(prisma, (tx) => tx.query(Prisma.sql`SELECT 1 AS slept FROM pg_sleep(5)`))],
  ];
  it.each(sleepingTransactions)(
    '%s never leak pool connections: after more cuts than the pool holds, queries still run and disconnect ends',
    async (_, sleepInTransaction) => {
      const prisma = createPrisma(db.url, { maxConnections: 2 });
      // pg_terminate_backend only signals: a cut backend can still be listed, mid-statement, when the next round looks.
      const cut = new Set<number>();
      for (let i = 0; i < 4; i += 1) {
        // Its outcome is taken at once: the rejection comes while the loop below awaits.
        const outcome = sleepInTransaction(prisma).then(
          () => 'committed',
          (error: Error) => error.message,
        );
        // Wait until this round's statement runs, then cut its backend.
        const deadline = Date.now() + 10_000;
        let sleeper: number | undefined;
        while (sleeper === undefined && Date.now() < deadline) {
          const { rows } = await admin.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE '%pg_sleep%' AND NOT pid = ANY($2::int[])`,
            [db.name, [...cut]],
          );
          sleeper = rows[0]?.pid;
          if (sleeper === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(sleeper, `round ${i}: no statement of this round showed up running`).toBeDefined();
        cut.add(sleeper!);
        await admin.query('SELECT pg_terminate_backend($1)', [sleeper]);
        expect(await outcome).toMatch(/terminating connection|connection error|Connection terminated/);
      }
      expect(await withinDeadline(prisma.$queryRaw<{ ok: number }[]>`SELECT 1 AS ok`, 10_000)).toEqual([{ ok: 1 }]);
      expect(
        await withinDeadline(
          prisma.$disconnect().then(() => 'disconnected'),
          10_000,
        ),
      ).toBe('disconnected');
    },
  );

  it('a producer rides out a database outage in the middle of a run: every row gets its job, once', async () => {
    await seedMvp(db.prisma, { investments: 3_000 });
    const fleet = await testFleet(db);
    try {
      let cut = false;
      let outage: Promise<void> = Promise.resolve();
      const result = await fleet.enqueue(
        lotsFamily,
        { kind: 'all' },
        {
          pageSize: 200,
          onProgress: () => {
            if (cut) return;
            cut = true;
            outage = (async () => {
              await admin.query(`ALTER DATABASE "${db.name}" WITH ALLOW_CONNECTIONS false`);
              await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [db.name]);
              await new Promise((resolve) => setTimeout(resolve, 1_500));
              await admin.query(`ALTER DATABASE "${db.name}" WITH ALLOW_CONNECTIONS true`);
            })();
          },
        },
      );
      await outage;
      expect(cut).toBe(true);
      expect(result).toMatchObject({ found: 3_000, added: 3_000, alreadyQueued: 0 });
      expect(await fleet.context.queue(lotsFamily).count()).toBe(3_000);
    } finally {
      await admin.query(`ALTER DATABASE "${db.name}" WITH ALLOW_CONNECTIONS true`);
      await fleet.close();
    }
  });

  it('sqlTransaction rolls back a statement error, keeps the connection, and commits what succeeds', async () => {
    const prisma = createPrisma(db.url, { maxConnections: 1 });
    try {
      await prisma.$executeRaw`CREATE TABLE IF NOT EXISTS sql_tx_probe (n int PRIMARY KEY)`;
      const failed = sqlTransaction(prisma, async (tx) => {
        await tx.query(Prisma.sql`INSERT INTO sql_tx_probe VALUES (${1})`);
        await tx.query(Prisma.sql`INSERT INTO sql_tx_probe VALUES (${1})`);
      });
      await expect(failed).rejects.toMatchObject({ code: '23505' });
      // The pool's only connection came back usable, outside any transaction.
      const committed = await sqlTransaction(prisma, async (tx) => {
        await tx.query(Prisma.sql`INSERT INTO sql_tx_probe VALUES (${2})`);
        return tx.query<{ n: number }>(Prisma.sql`SELECT n FROM sql_tx_probe ORDER BY n`);
      });
      expect(committed).toEqual([{ n: 2 }]);
      expect(await prisma.$queryRaw`SELECT n FROM sql_tx_probe ORDER BY n`).toEqual([{ n: 2 }]);
    } finally {
      await prisma.$disconnect();
    }
  });

  it('tells connection failures from errors in the statement', () => {
    const transient = [
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      new Error('database "x" is not currently accepting connections'),
      Object.assign(new Error("Can't reach database server at 127.0.0.1:5432"), { code: 'P1001' }),
      new Error('wrapped', { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) }),
    ];
    const permanent = [
      Object.assign(new Error('The table `public.FleetRun` does not exist in the current database.'), { code: 'P2021' }),
      Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' }),
      new Error('syntax error at or near "SELEC"'),
    ];
    for (const error of transient) expect(isTransientDatabaseError(error), error.message).toBe(true);
    for (const error of permanent) expect(isTransientDatabaseError(error), error.message).toBe(false);
  });
});
