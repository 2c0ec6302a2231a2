import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corporateActionsFamily, parseSplitRatio, splitResidualBound } from '../src/families/corporate-actions.js';
import { lotsFamily } from '../src/families/lots.js';
import { createTestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { fleetEnv, runTys } from './support/processes.js';

// The expected values are computed here on their own, with decimal.js at high precision.
const X = Decimal.clone({ precision: 100 });
const r8 = (v: Decimal) => v.toDecimalPlaces(8, Decimal.ROUND_HALF_UP).toFixed(8);
const times = (a: string, n: number, m: number) => r8(new X(a).times(n).div(m));

interface LotSpec {
  tag: string;
  purchaseDate: string;
  quantity: string;
  remaining: string;
  cost: string;
  status?: 'OPEN' | 'PARTIALLY_CLOSED' | 'CLOSED';
}

/**
 * A database with lots and due actions of every kind, and one corporate-actions run over it (workers left running):
 * the tests read what the run did; the revert test makes a scenario of its own, since it undoes the run.
 */
async function scenario() {
  const db = await createTestDatabase();
  const userId = (await db.prisma.user.create({ data: { email: 'ca@example.com' } })).id;
  const portfolioId = (await db.prisma.portfolio.create({ data: { name: 'P', userId } })).id;
  const lotIds = new Map<string, string>();

  async function investmentWithLots(ticker: string, averageCostBasis: string, lots: LotSpec[]) {
    const total = lots.reduce((sum, l) => sum.plus(l.remaining), new X(0)).toFixed(8);
    const inv = await db.prisma.investment.create({
      data: { portfolioId, ticker, name: ticker, assetType: 'STOCK', totalQuantity: total, averageCostBasis },
    });
    for (const lot of lots) {
      const row = await db.prisma.taxLot.create({
        data: {
          investmentId: inv.id,
          purchaseDate: new Date(lot.purchaseDate),
          quantity: lot.quantity,
          remainingQuantity: lot.remaining,
          costBasisPerUnit: lot.cost,
          status: lot.status ?? 'OPEN',
        },
      });
      lotIds.set(lot.tag, row.id);
    }
    return inv.id;
  }
  const action = (
    investmentId: string,
    actionType: 'STOCK_SPLIT' | 'REVERSE_SPLIT' | 'TICKER_CHANGE' | 'MERGER',
    effectiveDate: string,
    extra: { splitRatio?: string; newTicker?: string } = {},
  ) => db.prisma.corporateAction.create({ data: { investmentId, actionType, effectiveDate: new Date(effectiveDate), description: actionType, ...extra } });
  const inv32 = await investmentWithLots('THREE', '110.5', [
    { tag: 'open', purchaseDate: '2024-01-10', quantity: '10', remaining: '10', cost: '100.00000001' },
    { tag: 'partial', purchaseDate: '2024-02-01', quantity: '7.33333333', remaining: '3.33333333', cost: '45.12345679', status: 'PARTIALLY_CLOSED' },
    { tag: 'closed', purchaseDate: '2024-03-01', quantity: '5', remaining: '0', cost: '50', status: 'CLOSED' },
    { tag: 'later', purchaseDate: '2024-09-01', quantity: '4', remaining: '4', cost: '200' },
  ]);
  await action(inv32, 'STOCK_SPLIT', '2024-06-01', { splitRatio: '3:2' });
  const inv110 = await investmentWithLots('TEN', '9.99999999', [
    { tag: 'tenA', purchaseDate: '2023-05-05', quantity: '3.00000001', remaining: '3.00000001', cost: '9.99999999' },
    { tag: 'tenB', purchaseDate: '2023-06-05', quantity: '12.34567891', remaining: '12.34567891', cost: '0.00000007' },
  ]);
  await action(inv110, 'REVERSE_SPLIT', '2024-01-01', { splitRatio: '1:10' });
  const inv21 = await investmentWithLots('TWO', '80', [{ tag: 'two', purchaseDate: '2024-01-01', quantity: '2.5', remaining: '2.5', cost: '80.00000001' }]);
  await action(inv21, 'STOCK_SPLIT', '2024-07-01', { splitRatio: '2:1' });
  const invOrder = await investmentWithLots(' old ', '10', [{ tag: 'order', purchaseDate: '2023-01-01', quantity: '1', remaining: '1', cost: '10' }]);
  // Created out of date order on purpose.
  await action(invOrder, 'TICKER_CHANGE', '2024-05-01', { newTicker: 'NEWT' });
  await action(invOrder, 'STOCK_SPLIT', '2024-04-01', { splitRatio: '2:1' });
  await action(invOrder, 'STOCK_SPLIT', '2099-01-01', { splitRatio: '5:1' }); // not due yet
  await db.prisma.priceAlert.create({ data: { userId, ticker: 'old', alertType: 'PRICE_ABOVE', targetPrice: '20' } });
  // Order shows in the result: 1:3 then 3:1 leaves 0.99999999, the other way round 1.
  const invSeq = await investmentWithLots('SEQ', '10', [{ tag: 'seq', purchaseDate: '2023-01-01', quantity: '1', remaining: '1', cost: '10' }]);
  await action(invSeq, 'STOCK_SPLIT', '2024-03-01', { splitRatio: '3:1' });
  await action(invSeq, 'REVERSE_SPLIT', '2024-02-01', { splitRatio: '1:3' });
  const invBad = await investmentWithLots('BAD', '10', [{ tag: 'bad', purchaseDate: '2023-01-01', quantity: '1', remaining: '1', cost: '10' }]);
  await action(invBad, 'STOCK_SPLIT', '2024-01-01', { splitRatio: '2-1' });
  const invMerger = await investmentWithLots('MRG', '10', [{ tag: 'merger', purchaseDate: '2023-01-01', quantity: '1', remaining: '1', cost: '10' }]);
  await action(invMerger, 'MERGER', '2024-01-01');
  await action(invMerger, 'STOCK_SPLIT', '2024-02-01', { splitRatio: '2:1' });
  const fleet = await testFleet(db);
  fleet.startWorkers([corporateActionsFamily]);
  const enqueued = await fleet.enqueue(corporateActionsFamily);
  const run = await fleet.waitForRun(enqueued.runId!);
  const lot = async (tag: string) => db.prisma.taxLot.findUniqueOrThrow({ where: { id: lotIds.get(tag)! } });
  return { db, fleet, userId, enqueued, run, lot, inv32, inv110, inv21, invOrder, invSeq, invBad, invMerger };
}

describe('corporate-actions family', () => {
  let s: Awaited<ReturnType<typeof scenario>>;
  beforeAll(async () => {
    s = await scenario();
  });
  afterAll(async () => {
    await s?.fleet.close();
    await s?.db.drop();
  });

  it('parses N:M ratios and refuses malformed ones with the reason', () => {
    expect(parseSplitRatio('3:2').newShares.toString()).toBe('3');
    for (const bad of ['2-1', '0:1', '1:0', 'abc', '', null, '2:1:1', '-2:1']) {
      expect(() => parseSplitRatio(bad), String(bad)).toThrow(/split ratio .* (is malformed|has a zero side)/);
    }
  });

  it('applies 3:2, 1:10 and 2:1 to open and partly closed lots bought before the date, preserving total cost within the bound', async () => {
    expect(s.enqueued.added).toBe(7);
    expect(s.run).toMatchObject({ failed: 1 }); // the malformed ratio

    const checks: [string, string, string, number, number][] = [
      ['open', '10', '100.00000001', 3, 2],
      ['partial', '7.33333333', '45.12345679', 3, 2],
      ['tenA', '3.00000001', '9.99999999', 1, 10],
      ['tenB', '12.34567891', '0.00000007', 1, 10],
      ['two', '2.5', '80.00000001', 2, 1],
    ];
    for (const [tag, quantity, cost, n, m] of checks) {
      const after = await s.lot(tag);
      expect(after.quantity.toFixed(8), tag).toBe(times(quantity, n, m));
      expect(after.costBasisPerUnit.toFixed(8), tag).toBe(times(cost, m, n));
      const residual = new X(after.quantity.toString()).times(after.costBasisPerUnit.toString()).minus(new X(quantity).times(cost)).abs();
      expect(residual.lte(splitResidualBound(after.quantity, after.costBasisPerUnit).toString()), `${tag} residual ${residual.toString()}`).toBe(true);
    }
    expect((await s.lot('partial')).remainingQuantity.toFixed(8)).toBe(times('3.33333333', 3, 2));
    expect((await s.lot('partial')).purchaseDate.toISOString().slice(0, 10)).toBe('2024-02-01');
    for (const [tag, q, c] of [
      ['closed', '5', '50'],
      ['later', '4', '200'],
    ]) {
      const untouched = await s.lot(tag!);
      expect([untouched.quantity.toFixed(), untouched.costBasisPerUnit.toFixed()], tag).toEqual([q, c]);
    }
    const three = await s.db.prisma.investment.findUniqueOrThrow({ where: { id: s.inv32 } });
    expect(three.totalQuantity.toFixed(8)).toBe(
      new X(times('10', 3, 2))
        .plus(times('3.33333333', 3, 2))
        .plus(4)
        .toFixed(8),
    );
    expect(three.averageCostBasis.toFixed(8)).toBe(times('110.5', 2, 3));
    expect((await lotsFamily.verify!(s.db.prisma)).problems.filter((p) => [s.inv32, s.inv110, s.inv21].includes(p.id))).toEqual([]);
  });

  it("applies two actions of one investment in date order, and a ticker change moves the owner's alerts", async () => {
    const actions = await s.db.prisma.corporateAction.findMany({ where: { investmentId: s.invOrder }, orderBy: { effectiveDate: 'asc' } });
    const [split, change, future] = actions;
    expect(split!.processed && change!.processed).toBe(true);
    expect(future!.processed).toBe(false);
    expect((await s.lot('seq')).quantity.toFixed(8)).toBe('0.99999999');
    const inv = await s.db.prisma.investment.findUniqueOrThrow({ where: { id: s.invOrder } });
    expect(inv.ticker).toBe('NEWT');
    expect(inv.totalQuantity.toFixed()).toBe('2');
    expect((await s.db.prisma.priceAlert.findFirstOrThrow({ where: { userId: s.userId } })).ticker).toBe('NEWT');
  });

  it('reports malformed ratios and unsupported types, changing nothing for them', async () => {
    const failed = await s.fleet.context.queue(corporateActionsFamily).getFailed();
    expect(failed.map((j) => [j.attemptsMade, j.failedReason])).toEqual([[1, 'split ratio "2-1" is malformed: expected "N:M" such as "2:1", "3:2" or "1:10"']]);
    expect((await s.lot('bad')).quantity.toFixed()).toBe('1');
    expect(await s.db.prisma.corporateAction.count({ where: { investmentId: s.invBad, processed: true } })).toBe(0);
    expect((await s.lot('merger')).quantity.toFixed()).toBe('1'); // the split after an unsupported merger waits too
    expect(await s.db.prisma.corporateAction.count({ where: { investmentId: s.invMerger, processed: true } })).toBe(0);
    const audit = await runTys(['audit', 'corporate-actions', '--json'], fleetEnv(s.fleet.config));
    expect(audit.code).toBe(1);
    const findings = JSON.parse(audit.stdout).findings;
    expect(findings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ check: 'unsupported MERGER (left for a person)', count: 1 }),
        expect.objectContaining({ check: 'malformed split ratio', count: 1 }),
      ]),
    );
  });

  it('changes nothing when applied again', async () => {
    const before = await s.db.prisma.taxLot.findMany({ orderBy: { id: 'asc' } });
    const again = await s.fleet.enqueue(corporateActionsFamily);
    await s.fleet.waitForRun(again.runId!);
    expect(await s.db.prisma.taxLot.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
  });

  it('revert restores every lot, investment, alert and action the run changed', async () => {
    const own = await scenario();
    try {
      const { db, lot, invOrder, userId } = own;
      const result = await runTys(['revert', '--run', own.enqueued.runId!], fleetEnv(own.fleet.config));
      expect(result.stdout).toMatch(/0 conflicts/);
      expect(result.code).toBe(0);
      expect((await lot('open')).quantity.toFixed(8)).toBe('10.00000000');
      expect((await lot('tenB')).costBasisPerUnit.toFixed(8)).toBe('0.00000007');
      expect((await db.prisma.investment.findUniqueOrThrow({ where: { id: invOrder } })).ticker).toBe(' old ');
      expect((await db.prisma.priceAlert.findFirstOrThrow({ where: { userId } })).ticker).toBe('old');
      expect(await db.prisma.corporateAction.count({ where: { processed: true } })).toBe(0);
    } finally {
      await own.fleet.close();
      await own.db.drop();
    }
  });
});
