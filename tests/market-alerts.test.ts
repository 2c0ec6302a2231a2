import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Prisma } from '../src/db/prisma.js';
import { alertsFamily, evaluateAlert, type AlertRule } from '../src/families/alerts.js';
import { NOTIFICATIONS_QUEUE } from '../src/fleet/queues.js';
import { Queue } from 'bullmq';
import { AlphaVantageStandIn } from './support/alpha-vantage-server.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { handlerContext, testFleet } from './support/fleet.js';

const D = (v: string) => new Prisma.Decimal(v);
const rule = (alertType: AlertRule['alertType'], targetPrice: string | null, percentChange: string | null = null): AlertRule => ({
  alertType,
  targetPrice,
  percentChange,
});

describe('alert rules, at their boundaries', () => {
  it('PRICE_ABOVE at price >= target, PRICE_BELOW at price <= target', () => {
    expect(evaluateAlert(rule('PRICE_ABOVE', '100.00000000'), D('100'), null)).toEqual({ trigger: true });
    expect(evaluateAlert(rule('PRICE_ABOVE', '100.00000000'), D('99.99999999'), null)).toEqual({ trigger: false });
    expect(evaluateAlert(rule('PRICE_BELOW', '100.00000000'), D('100'), null)).toEqual({ trigger: true });
    expect(evaluateAlert(rule('PRICE_BELOW', '100.00000000'), D('100.00000001'), null)).toEqual({ trigger: false });
  });

  it('PERCENT_GAIN / PERCENT_LOSS against the quantity-weighted cost basis, exactly', () => {
    // 3 shares at 10 and 1 at 30: basis (30 + 30) / 4 = 15. +10% is 16.5, -10% is 13.5.
    const position = { quantity: '4', cost: '60' };
    expect(evaluateAlert(rule('PERCENT_GAIN', null, '10.00'), D('16.5'), position)).toEqual({ trigger: true });
    expect(evaluateAlert(rule('PERCENT_GAIN', null, '10.00'), D('16.49999999'), position)).toEqual({ trigger: false });
    expect(evaluateAlert(rule('PERCENT_LOSS', null, '10.00'), D('13.5'), position)).toEqual({ trigger: true });
    expect(evaluateAlert(rule('PERCENT_LOSS', null, '10.00'), D('13.50000001'), position)).toEqual({ trigger: false });
    // A basis that is not a finite decimal (100 / 3): still exact, no rounding at the boundary.
    const thirds = { quantity: '3', cost: '100' };
    expect(evaluateAlert(rule('PERCENT_GAIN', null, '50.00'), D('50'), thirds)).toEqual({ trigger: true });
    expect(evaluateAlert(rule('PERCENT_GAIN', null, '50.00'), D('49.99999999'), thirds)).toEqual({ trigger: false });
  });

  it('skips what cannot be evaluated, with the reason', () => {
    expect(evaluateAlert(rule('PRICE_ABOVE', null), D('1'), null)).toEqual({ skip: 'PRICE_ABOVE alert has no target price' });
    expect(evaluateAlert(rule('PERCENT_LOSS', null, null), D('1'), null)).toEqual({ skip: 'PERCENT_LOSS alert has no percentage' });
    expect(evaluateAlert(rule('PERCENT_GAIN', null, '5'), D('1'), null)).toEqual({ skip: 'the owner holds none of this ticker' });
    expect(evaluateAlert(rule('PERCENT_GAIN', null, '5'), D('1'), { quantity: '2', cost: '0' })).toEqual({ skip: "the owner's cost basis is zero" });
  });
});

// Each test works on a ticker of its own, so they run in any order.
describe('alerts family', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let server: AlphaVantageStandIn;
  let userId: string;
  let portfolioId: string;

  const savedEnv = { ...process.env };
  beforeAll(async () => {
    server = await new AlphaVantageStandIn().start();
    Object.assign(process.env, { ALPHA_VANTAGE_BASE_URL: server.url, ALPHA_VANTAGE_API_KEY: server.validKey, MARKET_DATA_RATE_LIMIT: '100/1s' });
    db = await createTestDatabase();
    userId = (await db.prisma.user.create({ data: { email: 'alerts@example.com' } })).id;
    portfolioId = (await db.prisma.portfolio.create({ data: { name: 'P', userId } })).id;
    fleet = await testFleet(db);
  });
  afterAll(async () => {
    process.env = savedEnv;
    await fleet?.close();
    await db?.drop();
    await server?.stop();
  });

  it('triggers once when two evaluations race, with one audit entry and one notification', async () => {
    await db.prisma.investment.create({
      data: {
        portfolioId,
        ticker: 'RACE',
        name: 'Race',
        assetType: 'STOCK',
        totalQuantity: '2',
        averageCostBasis: '50',
        currentPrice: '120',
        priceUpdatedAt: new Date(),
      },
    });
    const alert = await db.prisma.priceAlert.create({ data: { userId, ticker: ' race ', alertType: 'PRICE_ABOVE', targetPrice: '100' } });
    const item = { key: 'RACE', runId: 'run-20260101T000000Z-000000', jobId: 'alerts-RACE' };
    const contexts = [handlerContext(db.prisma, fleet.context.redis, fleet.prefix), handlerContext(db.prisma, fleet.context.redis, fleet.prefix)];
    const outcomes = (await Promise.all(contexts.map((ctx) => alertsFamily.handle(ctx, [item])))).flat();
    expect(outcomes.filter((o) => !(o instanceof Error) && o.status === 'changed')).toHaveLength(1);
    expect((await db.prisma.priceAlert.findUniqueOrThrow({ where: { id: alert.id } })).triggered).toBe(true);
    expect(await db.prisma.auditLog.count({ where: { action: 'TRIGGER_ALERT', entityId: alert.id } })).toBe(1);
    const notifications = new Queue(NOTIFICATIONS_QUEUE, { connection: fleet.context.redis, prefix: fleet.prefix });
    const jobs = (await notifications.getWaiting()).filter((j) => (j.data as { alertId: string }).alertId === alert.id);
    expect(jobs.map((j) => j.data)).toEqual([
      { alertId: alert.id, userId, ticker: 'RACE', price: '120', rule: 'PRICE_ABOVE', targetPrice: '100.00000000', percentChange: null },
    ]);
    await notifications.close();
    expect(server.calls.filter((c) => c.symbol === 'RACE')).toHaveLength(0); // the stored price was fresh
  });

  it('quotes a stale ticker once, refreshes every holding, and triggers only what crosses its boundary', async () => {
    const old = new Date(Date.now() - 3_600_000);
    for (const [qty, cost] of [
      ['3', '10'],
      ['1', '30'],
    ] as const) {
      await db.prisma.investment.create({
        data: {
          portfolioId,
          ticker: 'STALE',
          name: 'Stale',
          assetType: 'STOCK',
          totalQuantity: qty,
          averageCostBasis: cost,
          currentPrice: '1',
          priceUpdatedAt: old,
        },
      });
    }
    server.prices.set('STALE', '16.5000');
    const make = (alertType: AlertRule['alertType'], targetPrice: string | null, percentChange: string | null) =>
      db.prisma.priceAlert.create({ data: { userId, ticker: 'stale', alertType, targetPrice, percentChange } });
    const gainAtBoundary = await make('PERCENT_GAIN', null, '10');
    const gainAbove = await make('PERCENT_GAIN', null, '10.01');
    const below = await make('PRICE_BELOW', '16.49', null);
    const noTarget = await make('PRICE_ABOVE', null, null);
    fleet.startWorkers([alertsFamily]);
    const { runId } = await fleet.enqueue(alertsFamily);
    const run = await fleet.waitForRun(runId!);
    expect(run.stats).toMatchObject({ calls: 1, alertsTriggered: 1, alertsNotEvaluable: 1 });
    expect(server.callsFor('GLOBAL_QUOTE', 'STALE')).toHaveLength(1);
    const state = async (id: string) => (await db.prisma.priceAlert.findUniqueOrThrow({ where: { id } })).triggered;
    expect(await state(gainAtBoundary.id)).toBe(true);
    expect(await state(gainAbove.id)).toBe(false);
    expect(await state(below.id)).toBe(false);
    expect(await state(noTarget.id)).toBe(false);
    const holdings = await db.prisma.investment.findMany({ where: { ticker: 'STALE' } });
    expect(holdings.map((h) => h.currentPrice!.toFixed(8))).toEqual(['16.50000000', '16.50000000']);
    expect(holdings.every((h) => h.priceUpdatedAt! > old)).toBe(true);
    expect(await db.prisma.auditLog.count({ where: { action: 'REFRESH_PRICE', entityId: { in: holdings.map((h) => h.id) } } })).toBe(2);

    // Evaluated again with the fresh price: nothing new, no call.
    const again = await fleet.waitForRun((await fleet.enqueue(alertsFamily)).runId!);
    expect(again.stats).toMatchObject({ alertsTriggered: 0 });
    expect(server.callsFor('GLOBAL_QUOTE', 'STALE')).toHaveLength(1);
  });
});
