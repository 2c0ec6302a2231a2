import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Exact } from '../src/db/exact.js';
import { planCatchUp, type HeldLot, type LoggedChange, type Position } from '../src/families/lot-catch-up.js';

const firstLot: HeldLot = {
  id: 'first',
  purchaseDate: '2024-01-02',
  quantity: '10',
  remainingQuantity: '10',
  costBasisPerUnit: '100',
  status: 'OPEN',
  fleetMade: true,
  untouched: true,
};

/** The MVP code's writes from a position: buys (quantity, price), sells (quantity), corrections (new average). */
type Write = { kind: 'buy'; quantity: string; price: string } | { kind: 'sell'; share: number } | { kind: 'correct'; average: string };

const decimal = (min: number, max: number) => fc.integer({ min: min * 100, max: max * 100 }).map((n) => new Exact(n).dividedBy(100).toFixed());
const write: fc.Arbitrary<Write> = fc.oneof(
  fc.record({ kind: fc.constant('buy' as const), quantity: decimal(0.01, 50), price: decimal(0.01, 900) }),
  fc.record({ kind: fc.constant('sell' as const), share: fc.double({ min: 0.01, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('correct' as const), average: decimal(0, 900) }),
);

/** The log the trigger writes for `writes`, from a position of 10 at 100, and the position they leave. */
function logOf(writes: readonly Write[]): { changes: LoggedChange[]; position: Position } {
  let quantity = new Exact(10);
  let average = new Exact(100);
  const changes: LoggedChange[] = [];
  writes.forEach((w, day) => {
    let [q, a] = [quantity, average];
    if (w.kind === 'buy') {
      q = quantity.plus(w.quantity);
      a = quantity.times(average).plus(new Exact(w.quantity).times(w.price)).dividedBy(q).toDecimalPlaces(8);
    } else if (w.kind === 'sell') {
      q = quantity.minus(quantity.times(w.share).toDecimalPlaces(8));
    } else a = new Exact(w.average);
    if (q.eq(quantity) && a.eq(average)) return;
    const changedOn = `2026-12-${String(1 + (day % 28)).padStart(2, '0')}`;
    changes.push({
      oldQuantity: quantity.toFixed(),
      newQuantity: q.toFixed(),
      oldAverage: average.toFixed(),
      newAverage: a.toFixed(),
      changedOn,
      transactionId: String(1000 + day),
    });
    [quantity, average] = [q, a];
  });
  return { changes, position: { totalQuantity: quantity.toFixed(), averageCostBasis: average.toFixed(), createdOn: '2024-01-02', updatedOn: '2026-12-31' } };
}

describe('the catch-up plan', () => {
  it('leaves lots that add up exactly to the position, never below zero nor above what was bought, whatever the MVP code wrote', () => {
    fc.assert(
      fc.property(fc.array(write, { minLength: 1, maxLength: 12 }), (writes) => {
        const { changes, position } = logOf(writes);
        const plan = planCatchUp(position, [firstLot], changes);
        // In step only when nothing was logged; refused only when a lot would cost less than nothing.
        if (plan.kind !== 'apply') {
          if (plan.kind === 'in-step') expect(changes).toEqual([]);
          else expect(plan.reason).toMatch(/would cost -[\d.]+ each$/);
          return;
        }
        const first = plan.updated.find((u) => u.id === 'first');
        const lots = [
          { quantity: '10', remaining: first?.remainingQuantity ?? '10', cost: first?.costBasisPerUnit ?? '100', status: first?.status ?? 'OPEN' },
          ...plan.created.map((lot) => ({ quantity: lot.quantity, remaining: lot.remainingQuantity, cost: lot.costBasisPerUnit, status: lot.status })),
        ];
        const held = lots.reduce((sum, lot) => sum.plus(lot.remaining), new Exact(0));
        expect(held.toFixed()).toBe(new Exact(position.totalQuantity).toFixed());
        for (const lot of lots) {
          expect(new Exact(lot.remaining).gte(0) && new Exact(lot.remaining).lte(lot.quantity)).toBe(true);
          expect(new Exact(lot.cost).gte(0)).toBe(true);
          const expected = new Exact(lot.remaining).isZero() ? 'CLOSED' : new Exact(lot.remaining).eq(lot.quantity) ? 'OPEN' : 'PARTIALLY_CLOSED';
          expect(lot.status).toBe(expected);
        }
        // Shares sold add up to what the position lost, lot by lot.
        const sold = plan.disposals.reduce((sum, d) => sum.plus(d.quantity), new Exact(0));
        const soldFromLots = plan.disposals.flatMap((d) => d.lots).reduce((sum, l) => sum.plus(l.quantity), new Exact(0));
        expect(sold.toFixed()).toBe(soldFromLots.toFixed());
      }),
      { numRuns: 300 },
    );
  });

  it('prices each purchase at what the averages imply, and dates it on the day of its write', () => {
    const { changes, position } = logOf([
      { kind: 'buy', quantity: '10', price: '200' },
      { kind: 'sell', share: 0.5 },
      { kind: 'buy', quantity: '10', price: '150' },
    ]);
    const plan = planCatchUp(position, [firstLot], changes);
    expect(plan).toMatchObject({
      kind: 'apply',
      via: 'log',
      created: [
        { purchaseDate: '2026-12-01', quantity: '10', costBasisPerUnit: '200', remainingQuantity: '10', status: 'OPEN' },
        { purchaseDate: '2026-12-03', quantity: '10', costBasisPerUnit: '150', remainingQuantity: '10', status: 'OPEN' },
      ],
      updated: [{ id: 'first', remainingQuantity: '0', status: 'CLOSED', costBasisPerUnit: '100' }],
      disposals: [{ on: '2026-12-02', quantity: '10', lots: [{ lot: 'first', quantity: '10' }] }],
    });
  });

  it('takes the writes of one transaction as one change: the quantity, then the average, is one purchase at its price', () => {
    const { changes, position } = logOf([{ kind: 'buy', quantity: '10', price: '200' }]);
    const [buy] = changes;
    const split: LoggedChange[] = [
      { ...buy!, newAverage: buy!.oldAverage! },
      { ...buy!, oldQuantity: buy!.newQuantity },
    ];
    expect(planCatchUp(position, [firstLot], split)).toMatchObject({
      kind: 'apply',
      via: 'log',
      corrections: 0,
      created: [{ quantity: '10', costBasisPerUnit: '200' }],
    });
    // The same two statements in two transactions: a purchase at the old average, then a correction both lots follow.
    const apart = [split[0]!, { ...split[1]!, transactionId: 'another' }];
    expect(planCatchUp(position, [firstLot], apart)).toMatchObject({
      corrections: 1,
      created: [{ quantity: '10', costBasisPerUnit: '150' }],
      updated: [{ id: 'first', costBasisPerUnit: '150' }],
    });
  });

  it('falls back to the net difference when the log does not start where the lots stand, and refuses a negative price with the numbers', () => {
    const { changes, position } = logOf([{ kind: 'buy', quantity: '5', price: '130' }]);
    const appLot: HeldLot = {
      ...firstLot,
      id: 'app',
      purchaseDate: '2026-12-01',
      quantity: '5',
      remainingQuantity: '5',
      costBasisPerUnit: '130',
      fleetMade: false,
      untouched: false,
    };
    // The application's new code wrote the purchase's lot too: in step, nothing to add.
    expect(planCatchUp(position, [firstLot, appLot], changes)).toEqual({ kind: 'in-step' });
    const costly = { ...position, averageCostBasis: '1' };
    expect(planCatchUp(costly, [firstLot], [])).toEqual({
      kind: 'refused',
      reason: "its lots hold 10 costing 1000, more than the position's whole cost 15 (15 x 1): the 5 shares they lack would cost -197 each",
    });
  });
});
