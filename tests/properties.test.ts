import { Decimal } from 'decimal.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Prisma } from '../src/db/prisma.js';
import { evaluateAlert, type AlertRule } from '../src/families/alerts.js';
import { CONSTRAINT_POLICIES, planFix, type Entity, type Row } from '../src/families/constraints.js';
import { parseSplitRatio, splitPrice, splitQuantity, splitResidualBound } from '../src/families/corporate-actions.js';
import { PermanentJobError } from '../src/fleet/errors.js';
import { decimalOrNull } from '../src/market/provider.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { fromScaled, SCALE, toScaled } from './support/scaled.js';

/** decimal.js with room for exact products of Decimal(20,8) values. */
const X = Decimal.clone({ precision: 100 });

/** A Decimal(20,8) value as text: up to 12 integer digits and 8 decimals, either sign. */
function decimal8(options: { min?: bigint; max?: bigint } = {}) {
  const max = options.max ?? 10n ** 20n - 1n;
  const min = options.min ?? -max;
  const edges = [0n, 1n, -1n, SCALE, -SCALE, min, max].filter((v) => v >= min && v <= max);
  return fc.oneof({ weight: 4, arbitrary: fc.bigInt({ min, max }) }, { weight: 1, arbitrary: fc.constantFrom(...edges) }).map(fromScaled);
}

const investmentRow = fc.record({
  totalQuantity: decimal8(),
  averageCostBasis: decimal8(),
  currentPrice: fc.option(decimal8(), { nil: null }),
});
const taxLotRow = fc.record({ quantity: decimal8(), remainingQuantity: decimal8(), costBasisPerUnit: decimal8() });

function applyPlan(entity: Entity, row: Row): Row {
  const plan = planFix(entity, row);
  return plan.kind === 'fix' ? { ...row, ...Object.fromEntries(plan.changes) } : row;
}

describe('fix policies (property-based)', () => {
  it('an Investment row comes out satisfying every constraint, with only broken columns changed, as the document prescribes', () => {
    fc.assert(
      fc.property(investmentRow, (row) => {
        const fixed = applyPlan('Investment', row);
        expect(planFix('Investment', fixed).kind).toBe('clean');
        const q = toScaled(row.totalQuantity);
        expect(fixed.totalQuantity).toBe(q <= 0n ? '0.00000001' : row.totalQuantity);
        expect(fixed.averageCostBasis).toBe(toScaled(row.averageCostBasis) < 0n ? '0' : row.averageCostBasis);
        const price = row.currentPrice;
        expect(fixed.currentPrice).toBe(price !== null && toScaled(price) < 0n ? null : price);
      }),
      { numRuns: 2_000 },
    );
  });

  it('a TaxLot row: remainingQuantity clamped into [0, quantity] and a negative cost basis 0 when quantity is positive, else left for a person', () => {
    fc.assert(
      fc.property(taxLotRow, (row) => {
        const q = toScaled(row.quantity);
        const plan = planFix('TaxLot', row);
        if (q <= 0n) {
          expect(plan.kind).toBe('manual');
          return;
        }
        const fixed = applyPlan('TaxLot', row);
        const r = toScaled(row.remainingQuantity);
        const expected = r < 0n ? 0n : r > q ? q : r;
        expect(toScaled(fixed.remainingQuantity!)).toBe(expected);
        expect(fixed.quantity).toBe(row.quantity);
        expect(fixed.costBasisPerUnit).toBe(toScaled(row.costBasisPerUnit) < 0n ? '0' : row.costBasisPerUnit);
        expect(planFix('TaxLot', fixed).kind).toBe('clean');
      }),
      { numRuns: 2_000 },
    );
  });

  it('fixing is idempotent: a fixed row plans no further change', () => {
    fc.assert(
      fc.property(investmentRow, taxLotRow, (investment, lot) => {
        const once = applyPlan('Investment', investment);
        expect(applyPlan('Investment', once)).toEqual(once);
        const lotOnce = applyPlan('TaxLot', lot);
        expect(applyPlan('TaxLot', lotOnce)).toEqual(lotOnce);
      }),
    );
  });
});

describe('fix policies agree with Postgres', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  // The source query selects rows by the policies' SQL, the handler re-checks
  // them in JavaScript: the two must never disagree.
  it('the SQL and JavaScript tests of every policy give the same verdict on random rows', async () => {
    const investments = fc.sample(investmentRow, 1_000);
    const lots = fc.sample(taxLotRow, 1_000);
    for (const policy of CONSTRAINT_POLICIES) {
      const rows: Row[] = policy.entity === 'Investment' ? investments : lots;
      const columns = Object.keys(rows[0]!);
      const values = Prisma.join(rows.map((row, i) => Prisma.sql`(${i}::int, ${Prisma.join(columns.map((c) => Prisma.sql`${row[c]}::numeric`))})`));
      const verdicts = await db.prisma.$queryRaw<{ i: number; violated: boolean }[]>`
        SELECT x.i, coalesce(${policy.violationSql(Prisma.raw('x'))}, false) AS violated
          FROM (VALUES ${values}) AS x(i, ${Prisma.raw(columns.map((c) => `"${c}"`).join(', '))}) ORDER BY x.i`;
      expect(
        verdicts.map((v) => v.violated),
        policy.constraint,
      ).toEqual(rows.map((row) => policy.violated(row)));
      expect(
        verdicts.some((v) => v.violated),
        `${policy.constraint}: some random rows break it`,
      ).toBe(true);
    }
  });
});

describe('split arithmetic (property-based)', () => {
  const ratio = fc.tuple(fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 1, max: 1_000 }));

  it("keeps each lot's total cost within the stated residual, rounding half up to 8 places", () => {
    fc.assert(
      fc.property(decimal8({ min: 1n, max: 10n ** 16n }), decimal8({ min: 0n, max: 10n ** 14n }), ratio, (q, c, [n, m]) => {
        const parsed = parseSplitRatio(`${n}:${m}`);
        const q2 = splitQuantity(q, parsed);
        const c2 = splitPrice(c, parsed);
        expect(q2).toMatch(/^\d+\.\d{8}$/);
        expect(c2).toMatch(/^\d+\.\d{8}$/);
        // Independent check in integers: q2 is q*n/m rounded half up at 8 places.
        const exact = toScaled(q) * BigInt(n);
        const expectedQ = (2n * exact + BigInt(m)) / (2n * BigInt(m));
        expect(toScaled(q2)).toBe(expectedQ);
        const residual = new X(q2).times(c2).minus(new X(q).times(c)).abs();
        expect(residual.lte(splitResidualBound(new Prisma.Decimal(q2), new Prisma.Decimal(c2)).toString())).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it('accepts exactly "N:M" with positive whole numbers and refuses everything else with a readable reason', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (text) => {
        const match = /^\s*(\d{1,9}):(\d{1,9})\s*$/.exec(text);
        const valid = match !== null && Number(match[1]) > 0 && Number(match[2]) > 0;
        if (valid) {
          const parsed = parseSplitRatio(text);
          expect(parsed.newShares.toString()).toBe(String(Number(match[1])));
        } else {
          expect(() => parseSplitRatio(text)).toThrow(PermanentJobError);
        }
      }),
      { numRuns: 2_000 },
    );
    for (const bad of ['2-1', '0:1', 'abc', '1:0', '', '2:1:1', '-2:1', '1.5:1']) {
      expect(() => parseSplitRatio(bad), bad).toThrow(/split ratio/);
    }
  });
});

describe('alert rules (property-based)', () => {
  const positive = decimal8({ min: 1n, max: 10n ** 14n });
  const percent = fc.integer({ min: 0, max: 10_000 }).map((v) => fromScaled(BigInt(v) * 10n ** 6n)); // 0.00 to 100.00

  it('PERCENT_GAIN and PERCENT_LOSS agree with exact integer arithmetic, including the boundary', () => {
    fc.assert(
      fc.property(positive, positive, positive, percent, fc.boolean(), fc.boolean(), (quantity, basis, price, p, gain, onBoundary) => {
        // On the boundary (no change wanted, price equal to the basis) both rules trigger.
        const [usePrice, useP] = onBoundary ? [basis, '0.00000000'] : [price, p];
        const q = toScaled(quantity);
        const cost = q * toScaled(basis); // scale 1e16
        const pp = toScaled(useP);
        const factor = gain ? 100n * SCALE + pp : 100n * SCALE - pp;
        const lhs = toScaled(usePrice) * 100n * SCALE * q; // price*100*quantity at scale 1e24
        const rhs = cost * factor; // cost*(100+-p) at scale 1e24
        const expected = gain ? lhs >= rhs : lhs <= rhs;
        if (onBoundary) expect(expected).toBe(true);
        const rule: AlertRule = { alertType: gain ? 'PERCENT_GAIN' : 'PERCENT_LOSS', targetPrice: null, percentChange: useP };
        const costText = new X(quantity).times(basis).toFixed();
        const verdict = evaluateAlert(rule, new Prisma.Decimal(usePrice), { quantity, cost: costText });
        expect(verdict).toEqual({ trigger: expected });
      }),
      { numRuns: 3_000 },
    );
  });

  it('PRICE_ABOVE and PRICE_BELOW compare exactly', () => {
    fc.assert(
      fc.property(positive, positive, fc.boolean(), (target, price, above) => {
        const rule: AlertRule = { alertType: above ? 'PRICE_ABOVE' : 'PRICE_BELOW', targetPrice: target, percentChange: null };
        const [t, v] = [toScaled(target), toScaled(price)];
        expect(evaluateAlert(rule, new Prisma.Decimal(price), null)).toEqual({ trigger: above ? v >= t : v <= t });
        expect(evaluateAlert(rule, new Prisma.Decimal(target), null)).toEqual({ trigger: true });
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('provider numbers (property-based)', () => {
  it('reads any plain decimal string exactly and anything else as unknown', () => {
    fc.assert(
      fc.property(decimal8(), (text) => {
        expect(decimalOrNull(text)!.toFixed(8)).toBe(new Decimal(text).toFixed(8));
        expect(toScaled(decimalOrNull(text)!.toFixed(8))).toBe(toScaled(text));
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (text) => {
        const plain = /^-?\d+(\.\d+)?$/.test(text.trim());
        expect(decimalOrNull(text) === null).toBe(!plain);
      }),
      { numRuns: 2_000 },
    );
    for (const unknown of ['None', '-', '', '1e5', 'NaN', 'Infinity', '1,000', null, 42]) expect(decimalOrNull(unknown)).toBeNull();
  });
});
