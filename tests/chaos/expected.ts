/**
 * The state the chaos scenario must end in, computed on its own from the
 * seeded rows with exact integer arithmetic (numbers scaled by 1e8 as
 * BigInt), sharing no code with the families it judges.
 */

import { fromScaled, SCALE, toScaled } from '../support/scaled.js';

/** a * n / m, rounded half up to 8 places, for a >= 0. */
function mulDivHalfUp(a: bigint, n: bigint, m: bigint): bigint {
  return (2n * a * n + m) / (2n * m);
}

export interface SeededInvestment {
  id: string;
  userId: string;
  ticker: string;
  assetType: string;
  totalQuantity: string;
  averageCostBasis: string;
  currentPrice: string | null;
}

export interface SeededAlert {
  id: string;
  userId: string;
  ticker: string;
  alertType: 'PRICE_ABOVE' | 'PRICE_BELOW' | 'PERCENT_GAIN' | 'PERCENT_LOSS';
  targetPrice: string | null;
  percentChange: string | null;
}

export interface SeededAction {
  id: string;
  investmentId: string;
  effectiveDate: string;
  splitRatio: string;
}

export interface MarketFixtures {
  /** Quote price per ticker; a ticker without one has no quote. */
  prices: Map<string, string>;
  /** Sector per ticker that has an overview. */
  sectors: Map<string, string>;
}

export interface ExpectedInvestment {
  /** Whether phase 4 must fix the row (one audit entry), and its values after the fix. */
  violating: boolean;
  quantity: string;
  cost: string;
  /** After the corporate actions, which also apply to its one lot. */
  finalQuantity: string;
  finalCost: string;
  sector: string | null;
}

export interface Expected {
  investments: Map<string, ExpectedInvestment>;
  /** Alert id to whether it must trigger. */
  alerts: Map<string, boolean>;
  actions: number;
}

const norm = (ticker: string) => ticker.trim().toUpperCase();

export function computeExpected(investments: SeededInvestment[], alerts: SeededAlert[], actions: SeededAction[], market: MarketFixtures): Expected {
  const actionsOf = new Map<string, SeededAction[]>();
  for (const action of actions) actionsOf.set(action.investmentId, [...(actionsOf.get(action.investmentId) ?? []), action]);
  const positions = new Map<string, { quantity: bigint; cost: bigint }>();
  const expected = new Map<string, ExpectedInvestment>();
  for (const row of investments) {
    const q = toScaled(row.totalQuantity);
    const c = toScaled(row.averageCostBasis);
    const p = row.currentPrice === null ? null : toScaled(row.currentPrice);
    const violating = q <= 0n || c < 0n || (p !== null && p < 0n);
    let quantity = q <= 0n ? 1n : q;
    let cost = c < 0n ? 0n : c;
    const position = positions.get(`${row.userId}|${norm(row.ticker)}`) ?? { quantity: 0n, cost: 0n };
    position.quantity += quantity;
    position.cost += quantity * cost;
    positions.set(`${row.userId}|${norm(row.ticker)}`, position);
    const fixed = { quantity: fromScaled(quantity), cost: fromScaled(cost) };
    const ordered = [...(actionsOf.get(row.id) ?? [])].sort((a, b) => a.effectiveDate.localeCompare(b.effectiveDate) || a.id.localeCompare(b.id));
    for (const action of ordered) {
      const [n, m] = action.splitRatio.split(':').map((v) => BigInt(v)) as [bigint, bigint];
      quantity = mulDivHalfUp(quantity, n, m);
      cost = mulDivHalfUp(cost, m, n);
    }
    const stockLike = row.assetType === 'STOCK' || row.assetType === 'ETF';
    expected.set(row.id, {
      violating,
      ...fixed,
      finalQuantity: fromScaled(quantity),
      finalCost: fromScaled(cost),
      sector: stockLike ? (market.sectors.get(norm(row.ticker)) ?? null) : null,
    });
  }
  const triggers = new Map<string, boolean>();
  for (const alert of alerts) {
    const priceText = market.prices.get(norm(alert.ticker));
    if (priceText === undefined) {
      triggers.set(alert.id, false);
      continue;
    }
    const price = toScaled(priceText);
    if (alert.alertType === 'PRICE_ABOVE') triggers.set(alert.id, price >= toScaled(alert.targetPrice!));
    else if (alert.alertType === 'PRICE_BELOW') triggers.set(alert.id, price <= toScaled(alert.targetPrice!));
    else {
      const position = positions.get(`${alert.userId}|${norm(alert.ticker)}`);
      if (!position || position.quantity <= 0n || position.cost === 0n) {
        triggers.set(alert.id, false);
        continue;
      }
      // price >= basis * (1 +- p/100), with basis = cost / quantity: all at scale 1e24.
      const lhs = price * 100n * SCALE * position.quantity;
      const percent = toScaled(alert.percentChange!);
      const factor = alert.alertType === 'PERCENT_GAIN' ? 100n * SCALE + percent : 100n * SCALE - percent;
      const rhs = position.cost * factor;
      triggers.set(alert.id, alert.alertType === 'PERCENT_GAIN' ? lhs >= rhs : lhs <= rhs);
    }
  }
  return { investments: expected, alerts: triggers, actions: actions.length };
}
