import { Exact } from '../db/exact.js';

/**
 * How a position's tax lots are brought back in step with what the MVP
 * application wrote to its aggregates (`totalQuantity`, `averageCostBasis`):
 * a pure plan over values read under the investment's row lock, applied by
 * the lots family in one transaction. Nothing here invents a fact: a
 * purchase's price is the one its aggregates imply, a sale takes shares
 * from the oldest lots and records no price, and whatever does not add up
 * is refused with its numbers for a person.
 */

export type LotStatus = 'OPEN' | 'PARTIALLY_CLOSED' | 'CLOSED';

/** A lot as read under the investment's lock; a position's lots come oldest first (purchase date, then creation, then id). */
export interface HeldLot {
  id: string;
  /** YYYY-MM-DD */
  purchaseDate: string;
  quantity: string;
  remainingQuantity: string;
  costBasisPerUnit: string;
  status: LotStatus;
  /** The fleet made it (it has a CREATE_TAX_LOT entry). */
  fleetMade: boolean;
  /** The fleet made it and nothing changed it since: never updated, nothing sold from it, no allocation. */
  untouched: boolean;
}

/** One logged write of the application to the position (FleetLotChange), oldest first. */
export interface LoggedChange {
  oldQuantity: string | null;
  newQuantity: string;
  oldAverage: string | null;
  newAverage: string;
  /** The UTC date of the writing transaction, YYYY-MM-DD. */
  changedOn: string;
  /** The writing transaction: consecutive writes of one transaction are one change. */
  transactionId: string;
}

export interface Position {
  totalQuantity: string;
  averageCostBasis: string;
  /** UTC dates, YYYY-MM-DD. */
  createdOn: string;
  updatedOn: string;
}

/** A lot the catch-up creates. */
export interface NewLot {
  purchaseDate: string;
  quantity: string;
  costBasisPerUnit: string;
  remainingQuantity: string;
  status: LotStatus;
}

/** The new values of an existing lot the catch-up changes. */
export interface LotUpdate {
  id: string;
  remainingQuantity: string;
  status: LotStatus;
  costBasisPerUnit: string;
}

/** Shares the application sold (its aggregate fell) with no sale recorded: taken from the oldest lots, no price known. */
export interface Disposal {
  on: string;
  quantity: string;
  /** Lots it took shares from (ids; "new N" for the Nth lot this plan creates), with how many. */
  lots: { lot: string; quantity: string }[];
}

export type CatchUpPlan =
  | { kind: 'in-step' }
  | { kind: 'refused'; reason: string }
  | {
      kind: 'apply';
      /** How the changes were read: change by change from the log, or as one net difference. */
      via: 'log' | 'net';
      created: NewLot[];
      updated: LotUpdate[];
      disposals: Disposal[];
      /** Purchases made (lots created), cost corrections applied. */
      purchases: number;
      corrections: number;
      /** Average-cost corrections left alone (lots the application made or changed, or sales use): what a person should look at. */
      leftAlone: string[];
    };

/** The lots a plan is worked out on: existing lots and the ones it adds, in the order sales take from them. */
interface WorkingLot {
  ref: string;
  purchaseDate: string;
  /** Its place among lots bought on the same day: as read, then the plan's own in the order it makes them. */
  order: number;
  quantity: Exact;
  remaining: Exact;
  cost: Exact;
  untouched: boolean;
  original?: HeldLot;
}

const PLACES = 8;
const round = (value: Exact) => value.toDecimalPlaces(PLACES);
const text = (value: Exact) => value.toFixed();

function statusOf(lot: WorkingLot): LotStatus {
  if (lot.remaining.isZero()) return 'CLOSED';
  return lot.remaining.lt(lot.quantity) ? 'PARTIALLY_CLOSED' : 'OPEN';
}

/** Oldest first: purchase date, then the order the lots were made in. */
function byAge(a: WorkingLot, b: WorkingLot): number {
  return a.purchaseDate.localeCompare(b.purchaseDate) || a.order - b.order;
}

class Working {
  readonly lots: WorkingLot[];
  readonly disposals: Disposal[] = [];
  purchases = 0;
  corrections = 0;
  readonly leftAlone: string[] = [];

  constructor(held: readonly HeldLot[]) {
    this.lots = held.map((lot, order) => ({
      ref: lot.id,
      purchaseDate: lot.purchaseDate,
      order,
      quantity: new Exact(lot.quantity),
      remaining: new Exact(lot.remainingQuantity),
      cost: new Exact(lot.costBasisPerUnit),
      untouched: lot.untouched,
      original: lot,
    }));
  }

  held(): Exact {
    return this.lots.reduce((sum, lot) => sum.plus(lot.remaining), new Exact(0));
  }

  cost(): Exact {
    return this.lots.reduce((sum, lot) => sum.plus(lot.remaining.times(lot.cost)), new Exact(0));
  }

  buy(on: string, quantity: Exact, costPerUnit: Exact): void {
    const made = this.lots.filter((lot) => !lot.original).length;
    // After the lots that exist (made earlier), in the order bought: the lots family stores them so.
    this.lots.push({ ref: `new ${made + 1}`, purchaseDate: on, order: this.lots.length, quantity, remaining: quantity, cost: costPerUnit, untouched: true });
    this.purchases += 1;
  }

  /** Takes `quantity` from the open lots, oldest first; false when they hold less. */
  sell(on: string, quantity: Exact): boolean {
    if (this.held().lt(quantity)) return false;
    const disposal: Disposal = { on, quantity: text(quantity), lots: [] };
    let left = quantity;
    for (const lot of [...this.lots].sort(byAge)) {
      if (left.isZero()) break;
      if (lot.remaining.isZero()) continue;
      const taken = Exact.min(lot.remaining, left);
      lot.remaining = lot.remaining.minus(taken);
      lot.untouched = false;
      left = left.minus(taken);
      disposal.lots.push({ lot: lot.ref, quantity: text(taken) });
    }
    this.disposals.push(disposal);
    return true;
  }

  /**
   * The application corrected the position's average cost by `delta` a
   * share. Lots the fleet made from the aggregates and nothing changed since
   * carry that average, so they follow it; any other lot holds a fact (the
   * application's own purchase, or shares a sale took), which is never
   * rewritten. False when a lot would cost less than nothing.
   */
  correct(delta: Exact, report: string): boolean {
    if (!this.lots.every((lot) => lot.untouched)) {
      this.leftAlone.push(report);
      return true;
    }
    if (this.lots.some((lot) => lot.cost.plus(delta).lt(0))) return false;
    for (const lot of this.lots) lot.cost = lot.cost.plus(delta);
    this.corrections += 1;
    return true;
  }

  plan(via: 'log' | 'net'): CatchUpPlan {
    const created = this.lots
      .filter((lot) => !lot.original)
      .map((lot) => ({
        purchaseDate: lot.purchaseDate,
        quantity: text(lot.quantity),
        costBasisPerUnit: text(lot.cost),
        remainingQuantity: text(lot.remaining),
        status: statusOf(lot),
      }));
    const updated = this.lots.flatMap((lot): LotUpdate[] => {
      const was = lot.original;
      if (!was) return [];
      const now = { id: was.id, remainingQuantity: text(lot.remaining), status: statusOf(lot), costBasisPerUnit: text(lot.cost) };
      const same = lot.remaining.eq(was.remainingQuantity) && lot.cost.eq(was.costBasisPerUnit) && now.status === was.status;
      return same ? [] : [now];
    });
    if (created.length === 0 && updated.length === 0 && this.leftAlone.length === 0) return { kind: 'in-step' };
    return {
      kind: 'apply',
      via,
      created,
      updated,
      disposals: this.disposals,
      purchases: this.purchases,
      corrections: this.corrections,
      leftAlone: this.leftAlone,
    };
  }
}

const same = (a: string | null, b: string | null) => a !== null && b !== null && new Exact(a).eq(b);

/**
 * The log explains the lots' difference when it starts where the lots stand
 * and runs without a gap to the position as it is now; otherwise some of
 * its changes are in the lots already (the application's new code wrote
 * lots too) or happened before the log began.
 */
function logExplains(changes: readonly LoggedChange[], held: Exact, position: Position): boolean {
  const first = changes[0];
  const last = changes[changes.length - 1];
  if (!first || !last || first.oldQuantity === null || !held.eq(first.oldQuantity)) return false;
  for (let i = 1; i < changes.length; i += 1) {
    const [before, change] = [changes[i - 1]!, changes[i]!];
    if (!same(change.oldQuantity, before.newQuantity) || !same(change.oldAverage, before.newAverage)) return false;
  }
  return same(last.newQuantity, position.totalQuantity) && same(last.newAverage, position.averageCostBasis);
}

/**
 * Each logged write in turn: a rise in quantity is a purchase on that day at
 * the price the averages imply ((new q x new avg - old q x old avg) / bought,
 * what the MVP code's weighted average took in); a fall is a disposal from
 * the oldest lots; an average changed alone is a cost correction. Null when
 * a change does not add up (a negative price, a sale of more than is held):
 * the net difference is tried instead.
 */
function replay(held: readonly HeldLot[], changes: readonly LoggedChange[]): CatchUpPlan | null {
  const work = new Working(held);
  for (const change of changes) {
    const [oldQ, newQ] = [new Exact(change.oldQuantity!), new Exact(change.newQuantity)];
    const [oldA, newA] = [new Exact(change.oldAverage!), new Exact(change.newAverage)];
    if (newQ.gt(oldQ)) {
      const bought = newQ.minus(oldQ);
      const price = round(newQ.times(newA).minus(oldQ.times(oldA)).dividedBy(bought));
      if (price.lt(0)) return null;
      work.buy(change.changedOn, bought, price);
    } else if (newQ.lt(oldQ)) {
      if (!work.sell(change.changedOn, oldQ.minus(newQ))) return null;
    } else if (!newA.eq(oldA)) {
      const report = `average cost corrected from ${text(oldA)} to ${text(newA)} on ${change.changedOn}`;
      if (!work.correct(newA.minus(oldA), report)) return null;
    }
  }
  return work.plan('log');
}

/**
 * The difference between the position and its lots as one change, when no
 * log explains it: more shares than the lots hold were bought on the day the
 * position last changed (on the day it was created when the fleet has made
 * none of its lots yet: the part bought before phase 2), priced so that the
 * lots' cost adds up to the position's; fewer were sold from the oldest
 * lots. A lone untouched lot of the fleet's follows a corrected average.
 */
function net(position: Position, held: readonly HeldLot[]): CatchUpPlan {
  const work = new Working(held);
  const [quantity, average] = [new Exact(position.totalQuantity), new Exact(position.averageCostBasis)];
  const difference = quantity.minus(work.held());
  if (difference.gt(0)) {
    const cost = quantity.times(average).minus(work.cost());
    const price = round(cost.dividedBy(difference));
    if (price.lt(0)) {
      return {
        kind: 'refused',
        reason:
          `its lots hold ${text(work.held())} costing ${text(work.cost())}, more than the position's whole cost ` +
          `${text(quantity.times(average))} (${text(quantity)} x ${text(average)}): the ${text(difference)} shares they lack would cost ${text(price)} each`,
      };
    }
    const on = held.some((lot) => lot.fleetMade) ? position.updatedOn : position.createdOn;
    work.buy(on, difference, price);
  } else if (difference.lt(0)) {
    work.sell(position.updatedOn, difference.negated());
  } else if (held.length === 1 && held[0]!.untouched && !average.eq(held[0]!.costBasisPerUnit)) {
    work.correct(average.minus(held[0]!.costBasisPerUnit), '');
  }
  return work.plan('net');
}

/**
 * The writes one transaction made in a row as one change: an application
 * that sets the quantity and then the average in two statements made one
 * purchase, not a purchase at the old average and a correction.
 */
function byTransaction(changes: readonly LoggedChange[]): LoggedChange[] {
  const merged: LoggedChange[] = [];
  for (const change of changes) {
    const last = merged[merged.length - 1];
    if (last && last.transactionId === change.transactionId)
      merged[merged.length - 1] = { ...change, oldQuantity: last.oldQuantity, oldAverage: last.oldAverage };
    else merged.push(change);
  }
  return merged;
}

/** The plan that brings `held` in step with `position`, reading `logged` (the position's logged writes, oldest first) where they explain the difference. */
export function planCatchUp(position: Position, held: readonly HeldLot[], logged: readonly LoggedChange[]): CatchUpPlan {
  const changes = byTransaction(logged);
  const total = held.reduce((sum, lot) => sum.plus(lot.remainingQuantity), new Exact(0));
  const fromLog = held.some((lot) => lot.fleetMade) && logExplains(changes, total, position) ? replay(held, changes) : null;
  return fromLog ?? net(position, held);
}
