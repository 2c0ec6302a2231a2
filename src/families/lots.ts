import { Prisma } from '../db/prisma.js';
import { newRowIdSql } from '../db/row-id.js';
import { sqlTransaction } from '../db/sql.js';
import { auditMetadataSql, FLEET_ACTOR } from '../fleet/audit.js';
import { PermanentJobError } from '../fleet/errors.js';
import { DEFAULT_FAMILY_OPTIONS, type ItemResult, type JobFamily } from '../fleet/family.js';
import { investmentScopeSql, isRowId } from '../fleet/scope.js';
import { brokenPolicies, violationsOf, type Row } from './constraints.js';

const VERIFY_SAMPLE = 100;

interface VerifyRow {
  id: string;
  totalQuantity: string;
  averageCostBasis: string;
  lotSum: string | null;
  minCost: string | null;
  /** The cost basis of a lot never changed since its creation that differs from its investment's average. */
  driftedCost: string | null;
  lots: bigint;
  offenders: bigint;
  checked: bigint;
}

function lotProblem(row: VerifyRow): string {
  const text = (value: string) => new Prisma.Decimal(value).toFixed();
  if (row.lots === 0n) return 'no tax lots';
  if (new Prisma.Decimal(row.minCost!).lt(0)) return `a lot has a negative costBasisPerUnit ${text(row.minCost!)}`;
  if (!new Prisma.Decimal(row.lotSum!).eq(row.totalQuantity)) return `lots hold ${text(row.lotSum!)} but totalQuantity is ${text(row.totalQuantity)}`;
  return `lot costBasisPerUnit ${text(row.driftedCost!)} but averageCostBasis is ${text(row.averageCostBasis)}`;
}

/**
 * Phase 2: one OPEN tax lot per investment that has none, carrying the
 * aggregated position (the MVP kept no purchase history): bought on the day
 * the investment was created, at its average cost, no fees.
 */
export const lotsFamily: JobFamily = {
  name: 'lots',
  description: 'create the initial tax lot of every investment that has none (phase 2)',
  exampleKey: 'nosuchinvestment',
  verifyHelp: 'every investment has tax lots, and the sum of their remainingQuantity equals its totalQuantity exactly (no tolerance)',
  scopes: ['all', 'investments', 'portfolio', 'user'],

  async source(prisma, scope, after, limit) {
    const rows = await prisma.$queryRaw<{ id: string }[]>`
      SELECT i.id FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId"
       WHERE i.id > ${after} AND ${investmentScopeSql(scope)}
         AND NOT EXISTS (SELECT 1 FROM "TaxLot" t WHERE t."investmentId" = i.id)
       ORDER BY i.id LIMIT ${limit}`;
    return rows.map((row) => row.id);
  },

  isValidKey: isRowId,

  // Set-based: one transaction of two statements per batch, however many
  // jobs the batch holds, on the pool directly (see sqlTransaction).
  async handle({ prisma }, items) {
    const ids = items.map((item) => item.key);
    return sqlTransaction(prisma, async (tx) => {
      // Row locks, taken in id order so that overlapping batches cannot
      // deadlock, serialise racing jobs for one investment: the later one
      // waits for the earlier to commit. The lot check must be a statement of
      // its own, after the lock: only a new statement's snapshot (READ
      // COMMITTED) sees the lots the earlier job committed.
      const locked = await tx.query<Row & { id: string }>(Prisma.sql`
        SELECT id, "totalQuantity"::text AS "totalQuantity", "averageCostBasis"::text AS "averageCostBasis",
               "currentPrice"::text AS "currentPrice"
          FROM "Investment" WHERE id = ANY(${ids}::text[]) ORDER BY id FOR NO KEY UPDATE`);
      const created = await tx.query<{ investmentId: string; lotId: string }>(Prisma.sql`
        WITH input AS (
          SELECT DISTINCT ON (id) id, run_id, job_id
            FROM unnest(${ids}::text[], ${items.map((i) => i.runId)}::text[], ${items.map((i) => i.jobId)}::text[])
                 AS u(id, run_id, job_id)
           ORDER BY id
        ), lots AS (
          INSERT INTO "TaxLot" (id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", fees,
                                "remainingQuantity", status, "updatedAt")
          SELECT ${newRowIdSql}, i.id, i."createdAt"::date, i."totalQuantity", i."averageCostBasis", 0,
                 i."totalQuantity", 'OPEN', now()
            FROM "Investment" i JOIN input ON input.id = i.id
           WHERE NOT (${violationsOf('Investment', Prisma.raw('i'))})
             AND NOT EXISTS (SELECT 1 FROM "TaxLot" t WHERE t."investmentId" = i.id)
          RETURNING id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", "remainingQuantity"
        ), audit AS (
          INSERT INTO "AuditLog" (id, "userId", action, entity, "entityId", "userAgent", metadata)
          SELECT ${newRowIdSql}, p."userId", 'CREATE_TAX_LOT', 'TaxLot', lots.id, ${FLEET_ACTOR},
                 ${auditMetadataSql(
                   Prisma.sql`input.run_id`,
                   Prisma.sql`input.job_id`,
                   Prisma.sql`NULL`,
                   Prisma.sql`jsonb_build_object(
                     'investmentId', lots."investmentId",
                     'purchaseDate', to_char(lots."purchaseDate", 'YYYY-MM-DD'),
                     'quantity', lots.quantity::text,
                     'costBasisPerUnit', lots."costBasisPerUnit"::text,
                     'remainingQuantity', lots."remainingQuantity"::text)`,
                 )}
            FROM lots
            JOIN input ON input.id = lots."investmentId"
            JOIN "Investment" i ON i.id = lots."investmentId"
            JOIN "Portfolio" p ON p.id = i."portfolioId"
        )
        SELECT "investmentId", id AS "lotId" FROM lots`);
      const investments = new Map(locked.map((row) => [row.id, row]));
      const lotOf = new Map(created.map((row) => [row.investmentId, row.lotId]));
      return items.map((item): ItemResult => {
        const investment = investments.get(item.key);
        if (!investment) return { status: 'skipped', reason: 'investment no longer exists' };
        const lotId = lotOf.get(item.key);
        if (lotId) {
          lotOf.delete(item.key); // the same key twice in a batch: the second finds the lot
          return { status: 'changed', detail: `lot ${lotId}` };
        }
        // A lot copies the investment's values: a broken one would carry its
        // fault into every later tax figure. Fixed first, with its own audit.
        const broken = brokenPolicies('Investment', investment);
        if (broken.length > 0) {
          const rules = broken.map((p) => `${p.constraint} (${p.column} = ${investment[p.column]})`).join(', ');
          return new PermanentJobError(`investment ${item.key} breaks ${rules}: run the constraints family first (tys enqueue constraints)`);
        }
        return { status: 'skipped', reason: 'investment already has tax lots' };
      });
    });
  },

  // The lots it created: a revert deletes those still as made.
  revertible: { TaxLot: { columns: { quantity: 'numeric', remainingQuantity: 'numeric', costBasisPerUnit: 'numeric' }, deletable: true, hasUpdatedAt: true } },

  // The document's check, exactly: decimal sums compared in SQL, no tolerance.
  async verify(prisma) {
    // The only lot of an investment, untouched since it was made from the
    // position (no split, no fix), still has the investment's average as its
    // cost basis: when the investment's basis was fixed and the lot's not,
    // they differ.
    const rows = await prisma.$queryRaw<VerifyRow[]>`
      WITH sums AS (
        SELECT i.id, i."totalQuantity", i."averageCostBasis", sum(t."remainingQuantity") AS "lotSum", count(t.id) AS lots,
               min(t."costBasisPerUnit") AS "minCost",
               min(t."costBasisPerUnit") FILTER (
                 WHERE t."updatedAt" = t."createdAt" AND t."costBasisPerUnit" <> i."averageCostBasis") AS "driftedCost"
          FROM "Investment" i LEFT JOIN "TaxLot" t ON t."investmentId" = i.id
         GROUP BY i.id
      )
      SELECT id, "totalQuantity"::text, "averageCostBasis"::text, "lotSum"::text, "minCost"::text, "driftedCost"::text, lots,
             count(*) OVER () AS offenders, (SELECT count(*) FROM "Investment") AS checked
        FROM sums
       WHERE lots = 0 OR "lotSum" <> "totalQuantity" OR "minCost" < 0 OR (lots = 1 AND "driftedCost" IS NOT NULL)
       ORDER BY id LIMIT ${VERIFY_SAMPLE}`;
    const checked = rows[0] ? Number(rows[0].checked) : await prisma.investment.count();
    return {
      ok: rows.length === 0,
      checked,
      problemCount: rows[0] ? Number(rows[0].offenders) : 0,
      problems: rows.map((row) => ({ id: row.id, problem: lotProblem(row) })),
    };
  },

  options: { ...DEFAULT_FAMILY_OPTIONS, concurrency: 500, batch: { maxSize: 250, maxWaitMs: 10 } },
};
