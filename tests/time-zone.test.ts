import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { alertsFamily } from '../src/families/alerts.js';
import { constraintsFamily } from '../src/families/constraints.js';
import { corporateActionsFamily } from '../src/families/corporate-actions.js';
import { families } from '../src/families/index.js';
import { lotsFamily } from '../src/families/lots.js';
import type { WorkItem } from '../src/fleet/family.js';
import { revertRun } from '../src/fleet/revert.js';
import { RunRecords } from '../src/fleet/runs/record.js';
import { AlphaVantageStandIn } from './support/alpha-vantage-server.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { flushPrefix, handlerContext, REDIS_URL, testPrefix } from './support/fleet.js';
import { withClient } from './support/server.js';

/**
 * The application's timestamp(3) and date columns hold UTC, as Prisma writes and reads them. The server's
 * TimeZone here is set, for the test's database, to a zone half a day or more from UTC on the side where its
 * date is not today's UTC date at this hour: a time or a date the fleet's SQL took from the session would be
 * hours off, and a due date a day off.
 */
const ZONE = new Date().getUTCHours() < 12 ? 'Etc/GMT+12' : 'Etc/GMT-14';
const RUN = 'run-20260101T000000Z-00tz00';
const utcDay = (offsetDays: number) => new Date(`${new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10)}T00:00:00Z`);

/** Within a minute of now, as Prisma reads the column (UTC): the fleet's write was not shifted by the server's zone. */
function expectNow(value: Date | null | undefined, what: string): void {
  expect(value, what).toBeInstanceOf(Date);
  expect(Math.abs(value!.getTime() - Date.now()), `${what}: ${value!.toISOString()}`).toBeLessThan(60_000);
}

const item = (family: string, key: string): WorkItem => ({ key, runId: RUN, jobId: `${family}-${key}` });

describe(`the fleet on a server whose time zone is not UTC (${ZONE})`, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    // Before the database's first session: every session of the test takes it.
    await withClient((client) => client.query(`ALTER DATABASE "${db.name}" SET TimeZone = '${ZONE}'`));
    const [shown] = await db.prisma.$queryRaw<{ TimeZone: string }[]>`SHOW TimeZone`;
    expect(shown!.TimeZone).toBe(ZONE);
    await seedMvp(db.prisma, { investments: 40, badQuantityRate: 0.1 });
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('judges a stored price by its age in UTC: one a minute old is used as it is, one two hours old is quoted again and stored with the time of now', async () => {
    const server = await new AlphaVantageStandIn().start();
    const saved = { ...process.env };
    Object.assign(process.env, { ALPHA_VANTAGE_BASE_URL: server.url, ALPHA_VANTAGE_API_KEY: server.validKey, MARKET_DATA_RATE_LIMIT: '100/1s' });
    const redis = new Redis(REDIS_URL);
    const prefix = testPrefix();
    try {
      const ctx = handlerContext(db.prisma, redis, prefix);
      const userId = (await db.prisma.user.create({ data: { email: 'zone@example.com' } })).id;
      const portfolioId = (await db.prisma.portfolio.create({ data: { name: 'Z', userId } })).id;
      for (const [ticker, ageMs] of [
        ['FRESH', 60_000],
        ['OLD', 2 * 3_600_000],
      ] as const) {
        await db.prisma.investment.create({
          data: {
            portfolioId,
            ticker,
            name: ticker,
            assetType: 'STOCK',
            totalQuantity: '1',
            averageCostBasis: '1',
            currentPrice: '10',
            priceUpdatedAt: new Date(Date.now() - ageMs),
          },
        });
        await db.prisma.priceAlert.create({ data: { userId, ticker, alertType: 'PRICE_ABOVE', targetPrice: '5' } });
      }
      server.prices.set('OLD', '12.0000');
      for (const ticker of ['FRESH', 'OLD']) expect(await alertsFamily.handle(ctx, [item('alerts', ticker)])).toMatchObject([{ status: 'changed' }]);
      expect(server.callsFor('GLOBAL_QUOTE', 'FRESH')).toHaveLength(0);
      expect(server.callsFor('GLOBAL_QUOTE', 'OLD')).toHaveLength(1);
      const refreshed = await db.prisma.investment.findFirstOrThrow({ where: { ticker: 'OLD' } });
      expect(refreshed.currentPrice!.toFixed(2)).toBe('12.00');
      expectNow(refreshed.priceUpdatedAt, 'a refreshed price');
      expectNow(refreshed.updatedAt, "a refreshed investment's updatedAt");
      expectNow((await db.prisma.priceAlert.findFirstOrThrow({ where: { ticker: 'OLD' } })).triggeredAt, 'a triggered alert');
    } finally {
      process.env = saved;
      redis.disconnect();
      await flushPrefix(prefix, '[:.]*');
      await server.stop();
    }
  });

  it('writes the times of the rows it makes and changes in UTC: seeded portfolios, lots, their audit entries, fixed rows, and a revert', async () => {
    const ctx = handlerContext(db.prisma);
    expectNow((await db.prisma.portfolio.findFirst())?.createdAt, 'a seeded portfolio');
    expectNow((await db.prisma.investment.findFirst())?.updatedAt, 'a seeded investment');

    const broken = await constraintsFamily.source(db.prisma, { kind: 'all' }, '', 100);
    expect(broken.length).toBeGreaterThan(0);
    expect(await constraintsFamily.handle(ctx, [item('constraints', broken[0]!)])).toMatchObject([{ status: 'changed' }]);
    const fixedId = broken[0]!.split('.')[1]!;
    expectNow((await db.prisma.investment.findUniqueOrThrow({ where: { id: fixedId } })).updatedAt, 'a fixed investment');
    expectNow((await db.prisma.auditLog.findFirst({ where: { action: 'FIX_CONSTRAINT' } }))?.createdAt, 'the fix audit entry');

    const ids = (await db.prisma.investment.findMany({ where: { totalQuantity: { gt: 0 } }, select: { id: true }, take: 5, orderBy: { id: 'asc' } })).map(
      (row) => row.id,
    );
    expect(ids).toHaveLength(5);
    const made = await lotsFamily.handle(
      ctx,
      ids.map((id) => item('lots', id)),
    );
    expect(made.every((outcome) => 'status' in outcome && outcome.status === 'changed')).toBe(true);
    const lot = await db.prisma.taxLot.findFirstOrThrow({ where: { investmentId: ids[0] } });
    expectNow(lot.createdAt, 'a lot');
    expectNow(lot.updatedAt, "a lot's updatedAt");
    expectNow((await db.prisma.auditLog.findFirst({ where: { action: 'CREATE_TAX_LOT' } }))?.createdAt, 'the lot audit entry');

    // Put back, the fixed investment is changed again: now.
    await db.prisma.investment.update({ where: { id: fixedId }, data: { updatedAt: new Date('2020-01-01T00:00:00Z') } });
    const reverted = await revertRun(db.prisma, RUN, families);
    expect(reverted.reverted).toBeGreaterThan(0);
    expectNow((await db.prisma.investment.findUniqueOrThrow({ where: { id: fixedId } })).updatedAt, 'a reverted investment');
  });

  it("writes a run's record with the times of this process's clock in UTC", async () => {
    const records = new RunRecords(db.prisma);
    const id = 'run-20260101T000000Z-00tz01';
    await records.create({ id, family: 'lots', scope: { kind: 'all' }, origin: 'test', redisMarker: 'm', redisAddress: 'a' });
    await records.markEnqueued(id, 0, 0);
    expect(await records.finish(id, { total: 0, completed: 0, skipped: 0, failed: 0, enqueued: true, stats: {} })).toBe(true);
    const run = await db.prisma.fleetRun.findUniqueOrThrow({ where: { id } });
    expect(run).toMatchObject({ status: 'COMPLETED', scope: { kind: 'all' }, stats: {} });
    expectNow(run.startedAt, "a run's start");
    expectNow(run.enqueuedAt, "a run's seal");
    expectNow(run.finishedAt, "a run's end");
  });

  it("applies an action due today in UTC, not one due tomorrow, whatever the server's date; and times it in UTC", async () => {
    const ctx = handlerContext(db.prisma);
    const [today, tomorrow] = await db.prisma.investment.findMany({
      where: { taxLots: { none: {} }, totalQuantity: { gt: 0 } },
      take: 2,
      orderBy: { id: 'asc' },
    });
    for (const investment of [today!, tomorrow!]) {
      await db.prisma.taxLot.create({
        data: {
          investmentId: investment.id,
          purchaseDate: new Date('2024-01-02T00:00:00Z'),
          quantity: investment.totalQuantity,
          remainingQuantity: investment.totalQuantity,
          costBasisPerUnit: investment.averageCostBasis,
        },
      });
    }
    const split = (investmentId: string, effectiveDate: Date) =>
      db.prisma.corporateAction.create({ data: { investmentId, actionType: 'STOCK_SPLIT', effectiveDate, description: 'split', splitRatio: '2:1' } });
    const due = await split(today!.id, utcDay(0));
    const early = await split(tomorrow!.id, utcDay(1));

    expect(await corporateActionsFamily.source(db.prisma, { kind: 'all' }, '', 100)).toEqual([today!.id]);
    for (const investment of [today!, tomorrow!]) await corporateActionsFamily.handle(ctx, [item('corporate-actions', investment.id)]);
    const applied = await db.prisma.corporateAction.findUniqueOrThrow({ where: { id: due.id } });
    expect(applied.processed).toBe(true);
    expectNow(applied.processedAt, 'the applied action');
    expectNow((await db.prisma.investment.findUniqueOrThrow({ where: { id: today!.id } })).updatedAt, 'the split investment');
    expectNow((await db.prisma.taxLot.findFirstOrThrow({ where: { investmentId: today!.id } })).updatedAt, 'the split lot');
    expect((await db.prisma.corporateAction.findUniqueOrThrow({ where: { id: early.id } })).processed).toBe(false);
    expect((await corporateActionsFamily.verify!(db.prisma)).ok).toBe(true);
  });
});
