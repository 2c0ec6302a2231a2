import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Prisma } from '../src/db/prisma.js';
import { lotsFamily } from '../src/families/lots.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { seedMvp } from '../src/demo/seed.js';
import { refreshTableStats } from '../src/fleet/table-stats.js';
import pino from 'pino';
import { testFleet } from './support/fleet.js';
import { until } from './support/processes.js';

const D = (value: string) => new Prisma.Decimal(value);

describe('lots while the application keeps buying', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let portfolioId: string;
  const investment = async (quantity: string, cost: string) =>
    (
      await db.prisma.investment.create({
        data: { portfolioId, ticker: 'VTI', name: 'VTI', assetType: 'ETF', totalQuantity: D(quantity), averageCostBasis: D(cost) },
      })
    ).id;
  const lotsOf = async (id: string) =>
    (await db.prisma.taxLot.findMany({ where: { investmentId: id }, orderBy: { costBasisPerUnit: 'asc' } })).map((lot) => [
      lot.quantity.toFixed(),
      lot.remainingQuantity.toFixed(),
      lot.costBasisPerUnit.toFixed(),
    ]);

  beforeAll(async () => {
    db = await createTestDatabase();
    const user = await db.prisma.user.create({ data: { email: 'buyer@example.com' } });
    portfolioId = (await db.prisma.portfolio.create({ data: { name: 'P', userId: user.id } })).id;
    fleet = await testFleet(db);
    fleet.startWorkers([lotsFamily]);
  });
  afterAll(async () => {
    await fleet?.close();
    await db?.drop();
  });

  it('a purchase recorded as a lot while the investment waits for its first: the job waits for the row, then makes the lot of the rest', async () => {
    const id = await investment('10', '100');
    // The application (phase 2 code) buys 5 at 130: the position and the purchase's own lot in one transaction, held open.
    const app = new pg.Client({ connectionString: db.url, application_name: 'the-application' });
    await app.connect();
    try {
      await app.query('BEGIN');
      await app.query(`SELECT 1 FROM "Investment" WHERE id = $1 FOR UPDATE`, [id]);
      await app.query(`UPDATE "Investment" SET "totalQuantity" = 15, "averageCostBasis" = 110, "updatedAt" = now() WHERE id = $1`, [id]);
      await app.query(
        `INSERT INTO "TaxLot" (id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", "remainingQuantity", "updatedAt")
         VALUES ('applot1', $1, current_date, 5, 130, 5, now())`,
        [id],
      );
      const { runId } = await fleet.enqueue(lotsFamily, { kind: 'investments', ids: [id] });
      await until('the job to wait for the row lock', async () => {
        const rows = await db.prisma.$queryRaw<{ n: bigint }[]>`
          SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
        return rows[0]!.n > 0n;
      });
      await app.query('COMMIT');
      const run = await fleet.waitForRun(runId!);
      expect(run).toMatchObject({ status: 'COMPLETED', completed: 1 });
    } finally {
      await app.end();
    }
    // 10 at 100 bought before phase 2, and the application's 5 at 130: 15, the position.
    expect(await lotsOf(id)).toEqual([
      ['10', '10', '100'],
      ['5', '5', '130'],
    ]);
    const made = await db.prisma.taxLot.findFirstOrThrow({ where: { investmentId: id, id: { not: 'applot1' } } });
    const audit = await db.prisma.auditLog.findFirstOrThrow({ where: { action: 'CREATE_TAX_LOT', entityId: made.id } });
    expect(JSON.stringify(audit.metadata)).toMatch(
      /"quantity":"10\.00000000".*"costBasisPerUnit":"100\.00000000"|"costBasisPerUnit":"100\.00000000".*"quantity":"10\.00000000"/,
    );
    expect((await lotsFamily.verify!(db.prisma)).problems.map((p) => p.id)).not.toContain(id);
  });

  it('a purchase written without its lot (MVP code) is explained by verify lots and covered by the next run', async () => {
    const id = await investment('10', '100');
    expect((await fleet.waitForRun((await fleet.enqueue(lotsFamily, { kind: 'investments', ids: [id] })).runId!)).completed).toBe(1);
    // 2 more at 160, the position only: average (10 x 100 + 2 x 160) / 12 = 110.
    await db.prisma.investment.update({ where: { id }, data: { totalQuantity: D('12'), averageCostBasis: D('110') } });
    const report = await lotsFamily.verify!(db.prisma);
    expect(report.problems.filter((p) => p.id === id)).toEqual([{ id, problem: 'lots hold 10 but totalQuantity is 12' }]);
    const again = await fleet.enqueue(lotsFamily, { kind: 'investments', ids: [id] });
    expect(again.added).toBe(1);
    expect(await fleet.waitForRun(again.runId!)).toMatchObject({ status: 'COMPLETED', completed: 1 });
    expect(await lotsOf(id)).toEqual([
      ['10', '10', '100'],
      ['2', '2', '160'],
    ]);
    expect((await lotsFamily.verify!(db.prisma)).problems.map((p) => p.id)).not.toContain(id);
    // Covered now: nothing to do.
    expect((await fleet.enqueue(lotsFamily, { kind: 'investments', ids: [id] })).added).toBe(0);
  });

  it('lots that cost more than the whole position: the job fails with the reason and changes nothing', async () => {
    const id = await investment('10', '100');
    await db.prisma.taxLot.create({
      data: { id: 'costly', investmentId: id, purchaseDate: new Date(), quantity: D('5'), costBasisPerUnit: D('1000'), remainingQuantity: D('5') },
    });
    const run = await fleet.waitForRun((await fleet.enqueue(lotsFamily, { kind: 'investments', ids: [id] })).runId!);
    expect(run).toMatchObject({ status: 'FAILED', failed: 1 });
    const [job] = await fleet.context.queue(lotsFamily).getFailed();
    expect(job!.failedReason).toBe(
      `investment ${id}: its lots hold 5 costing 5000, more than the position's whole cost 1000 (10 x 100): the 5 shares they lack would cost -800 each; nothing was changed (tys audit lots lists it)`,
    );
    expect(await lotsOf(id)).toEqual([['5', '5', '1000']]);
  });
});

describe('table statistics while the fleet fills a table', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  it('analyzes a table the run has filled, its indexed columns only, and again once it has doubled', async () => {
    await seedMvp(db.prisma, { investments: 3_000 });
    const log = pino({ level: 'silent' });
    const refresh = () => refreshTableStats(db.prisma, lotsFamily.grows!, log);
    const table = async () =>
      (
        await db.prisma.$queryRaw<{ known: number; live: number }[]>`
          SELECT c.reltuples::float8 AS known, s.n_live_tup::float8 AS live
            FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relname = 'TaxLot'`
      )[0]!;
    // What a lots run writes, as fast as SQL can: a lot for each of `count` investments, into a table the planner knows nothing of.
    const addLots = (tag: string, count: number) => db.prisma.$executeRaw`
      INSERT INTO "TaxLot" (id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", "remainingQuantity", "updatedAt")
      SELECT ${tag} || id, id, current_date, "totalQuantity", "averageCostBasis", "totalQuantity", now()
        FROM "Investment" ORDER BY id LIMIT ${count}`;
    // The server counts changes a moment after they commit.
    const counted = (rows: number) => until(`the server to count ${rows} lots`, async () => (await table()).live === rows, 30_000);
    expect(await refresh()).toEqual([]);

    await addLots('a', 3_000);
    let analyzed: string[] = [];
    await until('TaxLot to be analyzed', async () => (analyzed = await refresh()).length > 0, 30_000);
    expect(analyzed).toEqual(['TaxLot']);
    expect((await table()).known).toBe(3_000);
    const columns = await db.prisma.$queryRaw<{ name: string }[]>`SELECT attname::text AS name FROM pg_stats WHERE tablename = 'TaxLot' ORDER BY 1`;
    expect(columns.map((c) => c.name)).toEqual(['id', 'investmentId', 'purchaseDate', 'status']);

    // Changes in place, and growth short of doubling, are not worth another ANALYZE...
    await db.prisma.$executeRaw`UPDATE "TaxLot" SET fees = 1 WHERE id IN (SELECT id FROM "TaxLot" LIMIT 50)`;
    await addLots('b', 2_900);
    await counted(5_900);
    expect(await refresh()).toEqual([]);
    // ...since the planner scales what it knows by the table's size: one investment's lots are still a handful, the table its real size.
    const estimate = async (sql: string) => {
      const [plan] = await db.prisma.$queryRawUnsafe<{ 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }[]>(`EXPLAIN (FORMAT JSON) ${sql}`);
      return plan!['QUERY PLAN'][0].Plan['Plan Rows'];
    };
    const [first] = await db.prisma.$queryRaw<{ id: string }[]>`SELECT id FROM "Investment" ORDER BY id LIMIT 1`;
    expect(await estimate(`SELECT * FROM "TaxLot" WHERE "investmentId" = '${first!.id}'`)).toBeLessThanOrEqual(3);
    expect(await estimate(`SELECT * FROM "TaxLot"`)).toBeGreaterThan(5_000);

    await addLots('c', 200);
    await counted(6_100);
    expect(await refresh()).toEqual(['TaxLot']);
    expect((await table()).known).toBe(6_100);
  });
});
