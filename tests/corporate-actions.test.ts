import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corporateActionsFamily, parseSplitRatio, splitResidualBound } from '../src/families/corporate-actions.js';
import { lotsFamily } from '../src/families/lots.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
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

// A story: each step works on what the steps before it left (a run, then its revert...), so its steps keep their order
// when the suite is shuffled; the files still run in any order.
describe('corporate-actions family', { shuffle: false }, () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let userId: string;
  let portfolioId: string;
  let runId: string;
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
  const lot = async (tag: string) => db.prisma.taxLot.findUniqueOrThrow({ where: { id: lotIds.get(tag)! } });

  let inv32: string, inv110: string, inv21: string, invOrder: string, invBad: string, invMerger: string, invSeq: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    userId = (await db.prisma.user.create({ data: { email: 'ca@example.com' } })).id;
    portfolioId = (await db.prisma.portfolio.create({ data: { name: 'P', userId } })).id;
    inv32 = await investmentWithLots('THREE', '110.5', [
      { tag: 'open', purchaseDate: '2024-01-10', quantity: '10', remaining: '10', cost: '100.00000001' },
      { tag: 'partial', purchaseDate: '2024-02-01', quantity: '7.33333333', remaining: '3.33333333', cost: '45.12345679', status: 'PARTIALLY_CLOSED' },
      { tag: 'closed', purchaseDate: '2024-03-01', quantity: '5', remaining: '0', cost: '50', status: 'CLOSED' },
      { tag: 'later', purchaseDate: '2024-09-01', quantity: '4', remaining: '4', cost: '200' },
    ]);
    await action(inv32, 'STOCK_SPLIT', '2024-06-01', { splitRatio: '3:2' });
    inv110 = await investmentWithLots('TEN', '9.99999999', [
      { tag: 'tenA', purchaseDate: '2023-05-05', quantity: '3.00000001', remaining: '3.00000001', cost: '9.99999999' },
      { tag: 'tenB', purchaseDate: '2023-06-05', quantity: '12.34567891', remaining: '12.34567891', cost: '0.00000007' },
    ]);
    await action(inv110, 'REVERSE_SPLIT', '2024-01-01', { splitRatio: '1:10' });
    inv21 = await investmentWithLots('TWO', '80', [{ tag: 'two', purchaseDate: '2024-01-01', quantity: '2.5', remaining: '2.5', cost: '80.00000001' }]);
    await action(inv21, 'STOCK_SPLIT', '2024-07-01', { splitRatio: '2:1' });
    invOrder = await investmentWithLots(' old ', '10', [{ tag: 'order', purchaseDate: '2023-01-01', quantity: '1', remaining: '1', cost: '10' }]);
    // Created out of date order on purpose.
    await action(invOrder, 'TICKER_CHANGE', '2024-05-01', { newTicker: 'NEWT' });
    await action(invOrder, 'STOCK_SPLIT', '2024-04-01', { splitRatio: '2:1' });
    await action(invOrder, 'STOCK_SPLIT', '2099-01-01', { splitRatio: '5:1' }); // not due yet
    await db.prisma.priceAlert.create({ data: { userId, ticker: 'old', alertType: 'PRICE_ABOVE', targetPrice: '20' } });
    // Order shows in the result: 1:3 then 3:1 leaves 0.99999999, the other way round 1.
    invSeq = await investmentWithLots('SEQ', '10', [{ tag: 'seq', purchaseDate: '2023-01-01', quantity: '1', remaining: '1', cost: '10' }]);
    await action(invSeq, 'STOCK_SPLIT', '2024-03-01', { splitRatio: '3:1' });
    await action(invSeq, 'REVERSE_SPLIT', '2024-02-01', { splitRatio: '1:3' });
    invBad = await investmentWithLots('BAD', '10', [{ tag: 'bad', purchaseDate: '2023-01-01', quantity: '1', remaining: '1', cost: '10' }]);
    await action(invBad, 'STOCK_SPLIT', '2024-01-01', { splitRatio: '2-1' });
    invMerger = await investmentWithLots('MRG', '10', [{ tag: 'merger', purchaseDate: '2023-01-01', quantity: '1', remaining: '1', cost: '10' }]);
    await action(invMerger, 'MERGER', '2024-01-01');
    await action(invMerger, 'STOCK_SPLIT', '2024-02-01', { splitRatio: '2:1' });
    fleet = await testFleet(db);
    fleet.startWorkers([corporateActionsFamily]);
  });
  afterAll(async () => {
    await fleet?.close();
    await db?.drop();
  });

  it('parses N:M ratios and refuses malformed ones with the reason', () => {
    expect(parseSplitRatio('3:2').newShares.toString()).toBe('3');
    for (const bad of ['2-1', '0:1', '1:0', 'abc', '', null, '2:1:1', '-2:1']) {
      expect(() => parseSplitRatio(bad), String(bad)).toThrow(/split ratio .* (is malformed|has a zero side)/);
    }
  });

  it('applies 3:2, 1:10 and 2:1 to open and partly closed lots bought before the date, preserving total cost within the bound', async () => {
    const result = await fleet.enqueue(corporateActionsFamily);
    runId = result.runId!;
    expect(result.added).toBe(7);
    const run = await fleet.waitForRun(runId);
    expect(run).toMatchObject({ failed: 1 }); // the malformed ratio

    const checks: [string, string, string, number, number][] = [
      ['open', '10', '100.00000001', 3, 2],
      ['partial', '7.33333333', '45.12345679', 3, 2],
      ['tenA', '3.00000001', '9.99999999', 1, 10],
      ['tenB', '12.34567891', '0.00000007', 1, 10],
      ['two', '2.5', '80.00000001', 2, 1],
    ];
    for (const [tag, quantity, cost, n, m] of checks) {
      const after = await lot(tag);
      expect(after.quantity.toFixed(8), tag).toBe(times(quantity, n, m));
      expect(after.costBasisPerUnit.toFixed(8), tag).toBe(times(cost, m, n));
      const residual = new X(after.quantity.toString()).times(after.costBasisPerUnit.toString()).minus(new X(quantity).times(cost)).abs();
      expect(residual.lte(splitResidualBound(after.quantity, after.costBasisPerUnit).toString()), `${tag} residual ${residual.toString()}`).toBe(true);
    }
    expect((await lot('partial')).remainingQuantity.toFixed(8)).toBe(times('3.33333333', 3, 2));
    expect((await lot('partial')).purchaseDate.toISOString().slice(0, 10)).toBe('2024-02-01');
    for (const [tag, q, c] of [
      ['closed', '5', '50'],
      ['later', '4', '200'],
    ]) {
      const untouched = await lot(tag!);
      expect([untouched.quantity.toFixed(), untouched.costBasisPerUnit.toFixed()], tag).toEqual([q, c]);
    }
    const three = await db.prisma.investment.findUniqueOrThrow({ where: { id: inv32 } });
    expect(three.totalQuantity.toFixed(8)).toBe(
      new X(times('10', 3, 2))
        .plus(times('3.33333333', 3, 2))
        .plus(4)
        .toFixed(8),
    );
    expect(three.averageCostBasis.toFixed(8)).toBe(times('110.5', 2, 3));
    expect((await lotsFamily.verify!(db.prisma)).problems.filter((p) => [inv32, inv110, inv21].includes(p.id))).toEqual([]);
  });

  it("applies two actions of one investment in date order, and a ticker change moves the owner's alerts", async () => {
    const actions = await db.prisma.corporateAction.findMany({ where: { investmentId: invOrder }, orderBy: { effectiveDate: 'asc' } });
    const [split, change, future] = actions;
    expect(split!.processed && change!.processed).toBe(true);
    expect(future!.processed).toBe(false);
    expect((await lot('seq')).quantity.toFixed(8)).toBe('0.99999999');
    const inv = await db.prisma.investment.findUniqueOrThrow({ where: { id: invOrder } });
    expect(inv.ticker).toBe('NEWT');
    expect(inv.totalQuantity.toFixed()).toBe('2');
    expect((await db.prisma.priceAlert.findFirstOrThrow({ where: { userId } })).ticker).toBe('NEWT');
  });

  it('reports malformed ratios and unsupported types, changing nothing for them', async () => {
    const failed = await fleet.context.queue(corporateActionsFamily).getFailed();
    expect(failed.map((j) => [j.attemptsMade, j.failedReason])).toEqual([[1, 'split ratio "2-1" is malformed: expected "N:M" such as "2:1", "3:2" or "1:10"']]);
    expect((await lot('bad')).quantity.toFixed()).toBe('1');
    expect(await db.prisma.corporateAction.count({ where: { investmentId: invBad, processed: true } })).toBe(0);
    expect((await lot('merger')).quantity.toFixed()).toBe('1'); // the split after an unsupported merger waits too
    expect(await db.prisma.corporateAction.count({ where: { investmentId: invMerger, processed: true } })).toBe(0);
    const audit = await runTys(['audit', 'corporate-actions', '--json'], fleetEnv(fleet.config));
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
    const before = await db.prisma.taxLot.findMany({ orderBy: { id: 'asc' } });
    const again = await fleet.enqueue(corporateActionsFamily);
    await fleet.waitForRun(again.runId!);
    expect(await db.prisma.taxLot.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
  });

  it('revert restores every lot, investment, alert and action the run changed', async () => {
    const result = await runTys(['revert', '--run', runId], fleetEnv(fleet.config));
    expect(result.stdout).toMatch(/0 conflicts/);
    expect(result.code).toBe(0);
    expect((await lot('open')).quantity.toFixed(8)).toBe('10.00000000');
    expect((await lot('tenB')).costBasisPerUnit.toFixed(8)).toBe('0.00000007');
    expect((await db.prisma.investment.findUniqueOrThrow({ where: { id: invOrder } })).ticker).toBe(' old ');
    expect((await db.prisma.priceAlert.findFirstOrThrow({ where: { userId } })).ticker).toBe('old');
    expect(await db.prisma.corporateAction.count({ where: { processed: true } })).toBe(0);
  });
});
