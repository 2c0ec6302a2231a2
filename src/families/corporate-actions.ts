import { Exact } from '../db/exact.js';
import { Prisma, type PrismaClient } from '../db/prisma.js';
import { sqlRows } from '../db/sql.js';
import { utcNowSql, utcTodaySql } from '../db/utc.js';
import { auditRecord } from '../fleet/audit.js';
import { PermanentJobError } from '../fleet/errors.js';
import { DEFAULT_FAMILY_OPTIONS, eachItem, type ItemResult, type JobFamily, type WorkItem } from '../fleet/family.js';
import { investmentScopeSql, isRowId } from '../fleet/scope.js';
import { normalizeTicker, TICKER_PATTERN } from '../market/provider.js';
import type { CorporateActionType } from '../generated/prisma/enums.js';

/**
 * Every stored result is rounded half up to 8 decimal places. A lot's total
 * cost q * c becomes q' * c' with q' = round8(q * N / M) and c' = round8(c *
 * M / N); each rounding moves its factor by at most 0.5e-8, so
 * |q' * c' - q * c| <= 0.5e-8 * (q' + c') + 0.25e-16.
 */
export const SPLIT_DECIMALS = 8;

export function splitResidualBound(quantity: Prisma.Decimal, costPerUnit: Prisma.Decimal): Prisma.Decimal {
  return new Exact('0.5e-8').times(new Exact(quantity.toString()).plus(costPerUnit.toString())).plus('0.25e-16');
}

const SUPPORTED: readonly CorporateActionType[] = ['STOCK_SPLIT', 'REVERSE_SPLIT', 'TICKER_CHANGE'];

export interface SplitRatio {
  /** New shares... */
  newShares: Prisma.Decimal;
  /** ...for this many old ones. */
  oldShares: Prisma.Decimal;
}

/** "N:M", N new shares for M old, both positive whole numbers. Anything else is refused with the reason. */
export function parseSplitRatio(text: string | null): SplitRatio {
  const match = /^\s*(\d{1,9}):(\d{1,9})\s*$/.exec(text ?? '');
  if (!match) throw new PermanentJobError(`split ratio ${JSON.stringify(text)} is malformed: expected "N:M" such as "2:1", "3:2" or "1:10"`);
  const [newShares, oldShares] = [new Exact(match[1]!), new Exact(match[2]!)];
  if (newShares.isZero() || oldShares.isZero()) throw new PermanentJobError(`split ratio "${text}" has a zero side`);
  return { newShares, oldShares };
}

const round = (value: Prisma.Decimal) => value.toDecimalPlaces(SPLIT_DECIMALS, Prisma.Decimal.ROUND_HALF_UP);

/** Quantities times N/M, prices times M/N, each rounded to 8 places. */
export function splitQuantity(quantity: string, ratio: SplitRatio): string {
  return round(new Exact(quantity).times(ratio.newShares).dividedBy(ratio.oldShares)).toFixed(SPLIT_DECIMALS);
}

export function splitPrice(price: string, ratio: SplitRatio): string {
  return round(new Exact(price).times(ratio.oldShares).dividedBy(ratio.newShares)).toFixed(SPLIT_DECIMALS);
}

interface Action {
  id: string;
  actionType: CorporateActionType;
  effectiveDate: string;
  splitRatio: string | null;
  newTicker: string | null;
}

type Tx = Prisma.TransactionClient;

interface AuditContext {
  tx: Tx;
  userId: string;
  item: WorkItem;
  action: Action;
}

async function audit(ctx: AuditContext, entity: string, entityId: string, before: Record<string, string | null>, after: Record<string, string | null>) {
  await ctx.tx.auditLog.create({
    data: auditRecord({
      userId: ctx.userId,
      action: `APPLY_${ctx.action.actionType}`,
      entity,
      entityId,
      runId: ctx.item.runId,
      jobId: ctx.item.jobId,
      before,
      after,
      extra: { corporateActionId: ctx.action.id },
    }),
  });
}

async function applySplit(ctx: AuditContext, investmentId: string): Promise<void> {
  const ratio = parseSplitRatio(ctx.action.splitRatio);
  const lots = await ctx.tx.$queryRaw<{ id: string; quantity: string; remainingQuantity: string; costBasisPerUnit: string }[]>`
    SELECT id, quantity::text, "remainingQuantity"::text AS "remainingQuantity", "costBasisPerUnit"::text AS "costBasisPerUnit"
      FROM "TaxLot"
     WHERE "investmentId" = ${investmentId} AND "purchaseDate" < ${ctx.action.effectiveDate}::date AND "remainingQuantity" > 0
     ORDER BY id FOR UPDATE`;
  for (const lot of lots) {
    const after = {
      quantity: splitQuantity(lot.quantity, ratio),
      remainingQuantity: splitQuantity(lot.remainingQuantity, ratio),
      costBasisPerUnit: splitPrice(lot.costBasisPerUnit, ratio),
    };
    const [written] = await ctx.tx.$queryRaw<Record<string, string>[]>`
      UPDATE "TaxLot" SET quantity = ${after.quantity}::numeric, "remainingQuantity" = ${after.remainingQuantity}::numeric,
             "costBasisPerUnit" = ${after.costBasisPerUnit}::numeric, "updatedAt" = ${utcNowSql}
       WHERE id = ${lot.id}
       RETURNING quantity::text, "remainingQuantity"::text AS "remainingQuantity", "costBasisPerUnit"::text AS "costBasisPerUnit"`;
    const { id, ...before } = lot;
    await audit(ctx, 'TaxLot', id, before, written!);
  }
  const [investment] = await ctx.tx.$queryRaw<{ totalQuantity: string; averageCostBasis: string; lotCount: bigint }[]>`
    SELECT "totalQuantity"::text AS "totalQuantity", "averageCostBasis"::text AS "averageCostBasis",
           (SELECT count(*) FROM "TaxLot" t WHERE t."investmentId" = i.id) AS "lotCount"
      FROM "Investment" i WHERE id = ${investmentId}`;
  // With lots, the position is what its lots hold after the split, so verify
  // lots stays exact; without lots, the quantity is split like a lot's.
  const [written] = await ctx.tx.$queryRaw<Record<string, string>[]>`
    UPDATE "Investment" SET
      "totalQuantity" = CASE WHEN ${investment!.lotCount > 0n}
                             THEN (SELECT sum("remainingQuantity") FROM "TaxLot" WHERE "investmentId" = ${investmentId})
                             ELSE ${splitQuantity(investment!.totalQuantity, ratio)}::numeric END,
      "averageCostBasis" = ${splitPrice(investment!.averageCostBasis, ratio)}::numeric, "updatedAt" = ${utcNowSql}
     WHERE id = ${investmentId}
     RETURNING "totalQuantity"::text AS "totalQuantity", "averageCostBasis"::text AS "averageCostBasis"`;
  await audit(ctx, 'Investment', investmentId, { totalQuantity: investment!.totalQuantity, averageCostBasis: investment!.averageCostBasis }, written!);
}

async function applyTickerChange(ctx: AuditContext, investmentId: string, oldTicker: string): Promise<void> {
  const newTicker = normalizeTicker(ctx.action.newTicker ?? '');
  if (!TICKER_PATTERN.test(newTicker)) {
    throw new PermanentJobError(`ticker change ${ctx.action.id} has no valid newTicker (${JSON.stringify(ctx.action.newTicker)})`);
  }
  await ctx.tx.$executeRaw`UPDATE "Investment" SET ticker = ${newTicker}, "updatedAt" = ${utcNowSql} WHERE id = ${investmentId}`;
  await audit(ctx, 'Investment', investmentId, { ticker: oldTicker }, { ticker: newTicker });
  // The owner's alerts on the old symbol follow it.
  const moved = await ctx.tx.$queryRaw<{ id: string; ticker: string }[]>`
    UPDATE "PriceAlert" a SET ticker = ${newTicker} FROM (
      SELECT id, ticker FROM "PriceAlert" WHERE "userId" = ${ctx.userId} AND upper(trim(ticker)) = ${normalizeTicker(oldTicker)} FOR UPDATE
    ) old WHERE a.id = old.id RETURNING a.id, old.ticker`;
  for (const alert of moved) await audit(ctx, 'PriceAlert', alert.id, { ticker: alert.ticker }, { ticker: newTicker });
}

/**
 * Applies the due actions of one investment in date order, each in its own
 * transaction with its processed flag. Stops at an action it cannot apply.
 */
async function applyDueActions(prisma: PrismaClient, item: WorkItem): Promise<ItemResult> {
  const applied: string[] = [];
  for (;;) {
    const [next] = await prisma.$queryRaw<Action[]>`
      SELECT id, "actionType", "effectiveDate"::text AS "effectiveDate", "splitRatio", "newTicker"
        FROM "CorporateAction"
       WHERE "investmentId" = ${item.key} AND processed = false AND "effectiveDate" <= ${utcTodaySql}
       ORDER BY "effectiveDate", "createdAt", id LIMIT 1`;
    if (!next) break;
    if (!SUPPORTED.includes(next.actionType)) {
      const reason = `${next.actionType} ${next.id} of ${next.effectiveDate} needs data the schema does not hold: left for a person (tys audit corporate-actions)`;
      return applied.length ? { status: 'changed', detail: `applied ${applied.join(', ')}; stopped: ${reason}` } : { status: 'skipped', reason };
    }
    const done = await prisma.$transaction(async (tx) => {
      // Claims the action: a second run of the same job finds it processed and does nothing.
      const [claimed] = await tx.$queryRaw<{ processedAt: string }[]>`
        UPDATE "CorporateAction" SET processed = true, "processedAt" = ${utcNowSql}
         WHERE id = ${next.id} AND processed = false RETURNING "processedAt"::text AS "processedAt"`;
      if (!claimed) return false;
      const [owner] = await tx.$queryRaw<{ userId: string; ticker: string }[]>`
        SELECT p."userId", i.ticker FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId"
         WHERE i.id = ${item.key} FOR NO KEY UPDATE OF i`;
      const ctx: AuditContext = { tx, userId: owner!.userId, item, action: next };
      await audit(ctx, 'CorporateAction', next.id, { processed: 'false', processedAt: null }, { processed: 'true', processedAt: claimed.processedAt });
      if (next.actionType === 'TICKER_CHANGE') await applyTickerChange(ctx, item.key, owner!.ticker);
      else await applySplit(ctx, item.key);
      return true;
    });
    if (done) applied.push(`${next.actionType} ${next.id}`);
  }
  return applied.length ? { status: 'changed', detail: `applied ${applied.join(', ')}` } : { status: 'skipped', reason: 'no due corporate action left' };
}

/**
 * Phase 3's processor: applies recorded splits, reverse splits and ticker
 * changes to investments and their open lots. One job per investment, so its
 * actions apply in date order and never two at once; investments run in
 * parallel.
 */
export const corporateActionsFamily: JobFamily = {
  name: 'corporate-actions',
  description: 'apply due stock splits, reverse splits and ticker changes to investments and open lots (phase 3)',
  exampleKey: 'nosuchinvestment',
  auditHelp: 'due actions left for a person (unsupported types, malformed ratios) and those waiting to be applied',
  verifyHelp: 'no due action is left unapplied, except those behind one left for a person',
  scopes: ['all', 'investments', 'portfolio', 'user'],

  async source(prisma, scope, after, limit) {
    const rows = await sqlRows<{ id: string }>(
      prisma,
      Prisma.sql`
      SELECT DISTINCT i.id FROM "CorporateAction" a
        JOIN "Investment" i ON i.id = a."investmentId" JOIN "Portfolio" p ON p.id = i."portfolioId"
       WHERE a.processed = false AND a."effectiveDate" <= ${utcTodaySql}
         AND a."actionType" IN ('STOCK_SPLIT', 'REVERSE_SPLIT', 'TICKER_CHANGE')
         AND ${investmentScopeSql(scope)} AND i.id > ${after}
       ORDER BY i.id LIMIT ${limit}`,
    );
    return rows.map((row) => row.id);
  },

  isValidKey: isRowId,
  investmentKeys: (_prisma, investmentId) => Promise.resolve([investmentId]),

  handle: eachItem((ctx, item) => applyDueActions(ctx.prisma, item)),

  revertible: {
    Investment: { columns: { totalQuantity: 'numeric', averageCostBasis: 'numeric', ticker: 'text' }, hasUpdatedAt: true },
    TaxLot: { columns: { quantity: 'numeric', remainingQuantity: 'numeric', costBasisPerUnit: 'numeric' }, hasUpdatedAt: true },
    PriceAlert: { columns: { ticker: 'text' }, hasUpdatedAt: false },
    // Reverting an applied action makes it due again.
    CorporateAction: { columns: { processed: 'boolean', processedAt: 'timestamp(3)' }, hasUpdatedAt: false },
  },

  async audit(prisma) {
    const rows = await prisma.$queryRaw<{ check: string; count: bigint; sample: string[] }[]>`
      WITH due AS (
        SELECT * FROM "CorporateAction" WHERE processed = false AND "effectiveDate" <= ${utcTodaySql}
      )
      SELECT 'unsupported ' || "actionType" || ' (left for a person)' AS check, count(*) AS count,
             (array_agg(id ORDER BY "effectiveDate", id))[1:10] AS sample
        FROM due WHERE "actionType" NOT IN ('STOCK_SPLIT', 'REVERSE_SPLIT', 'TICKER_CHANGE') GROUP BY "actionType"
      UNION ALL
      SELECT 'malformed split ratio', count(*), (array_agg(id ORDER BY id))[1:10]
        FROM due WHERE "actionType" IN ('STOCK_SPLIT', 'REVERSE_SPLIT')
         AND ("splitRatio" IS NULL OR "splitRatio" !~ '^\\s*[0-9]{1,9}:[0-9]{1,9}\\s*$' OR "splitRatio" ~ '(^|:)\\s*0+\\s*(:|$)')
      HAVING count(*) > 0
      UNION ALL
      SELECT 'due, waiting to be applied', count(*), (array_agg(id ORDER BY "effectiveDate", id))[1:10]
        FROM due WHERE "actionType" IN ('STOCK_SPLIT', 'REVERSE_SPLIT', 'TICKER_CHANGE')
      HAVING count(*) > 0`;
    return rows.map((row) => ({ check: row.check, count: Number(row.count), sample: row.sample }));
  },

  // Due actions the family should have applied: supported, well formed, and
  // not behind an earlier action of the same investment that waits for a
  // person (the family applies an investment's actions in date order and
  // stops at the first it cannot apply; tys audit lists those).
  async verify(prisma) {
    const rows = await prisma.$queryRaw<{ id: string; investmentId: string; actionType: string; effectiveDate: string }[]>`
      WITH due AS (
        SELECT *, "actionType" IN ('STOCK_SPLIT', 'REVERSE_SPLIT', 'TICKER_CHANGE')
                  AND NOT ("actionType" IN ('STOCK_SPLIT', 'REVERSE_SPLIT')
                       AND ("splitRatio" IS NULL OR "splitRatio" !~ '^\s*[0-9]{1,9}:[0-9]{1,9}\s*$' OR "splitRatio" ~ '(^|:)\s*0+\s*(:|$)')) AS appliable
          FROM "CorporateAction" WHERE processed = false AND "effectiveDate" <= ${utcTodaySql}
      )
      SELECT d.id, d."investmentId", d."actionType"::text AS "actionType", d."effectiveDate"::text AS "effectiveDate"
        FROM due d
       WHERE d.appliable AND NOT EXISTS (
         SELECT 1 FROM due b WHERE b."investmentId" = d."investmentId" AND NOT b.appliable
            AND (b."effectiveDate", b.id) < (d."effectiveDate", d.id))
       ORDER BY d."effectiveDate", d.id`;
    const [{ checked } = { checked: 0n }] = await prisma.$queryRaw<{ checked: bigint }[]>`SELECT count(*) AS checked FROM "CorporateAction"`;
    return {
      ok: rows.length === 0,
      checked: Number(checked),
      problems: rows.slice(0, 100).map((row) => ({
        id: row.id,
        problem: `${row.actionType} of ${row.effectiveDate} on investment ${row.investmentId} is due and not applied (tys enqueue corporate-actions --all)`,
      })),
      problemCount: rows.length,
    };
  },

  options: { ...DEFAULT_FAMILY_OPTIONS, concurrency: 10 },
};
