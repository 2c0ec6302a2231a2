import { Prisma } from '../db/prisma.js';
import { newRowIdSql } from '../db/row-id.js';
import { utcNowSql } from '../db/utc.js';
import { sqlRows, sqlTransaction } from '../db/sql.js';
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
 *
 * The application keeps buying while the fleet runs, and once phase 2 is in
 * it records each purchase as a lot of its own. An investment bought after
 * phase 2 but before its job ran then has lots that cover only the new
 * purchase: its job makes the lot of the rest (the quantity the lots leave
 * uncovered, at the cost the position's total leaves), under the
 * investment's row lock, so that the lots always add up to the quantity.
 * A purchase written without its lot (an application still on the MVP code)
 * is left for the next run, whose source query selects the investment
 * again.
 */
export const lotsFamily: JobFamily = {
  name: 'lots',
  description: 'create the initial tax lot of every investment that has none (phase 2)',
  exampleKey: 'nosuchinvestment',
  verifyHelp: 'every investment has tax lots, and the sum of their remainingQuantity equals its totalQuantity exactly (no tolerance)',
  scopes: ['all', 'investments', 'portfolio', 'user'],

  async source(prisma, scope, after, limit) {
    const rows = await sqlRows<{ id: string }>(
      prisma,
      Prisma.sql`
      SELECT i.id FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId"
        -- One index lookup per investment: written as NOT EXISTS ... OR a
        -- sum, the planner hashed a scan of every lot into each page.
        LEFT JOIN LATERAL (SELECT sum(t."remainingQuantity") AS held FROM "TaxLot" t WHERE t."investmentId" = i.id) l ON true
       WHERE i.id > ${after} AND ${investmentScopeSql(scope)}
         AND (l.held IS NULL OR i."totalQuantity" > l.held)
       ORDER BY i.id LIMIT ${limit}`,
    );
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
        ), cover AS (
          -- What the investment's lots do not cover yet: all of it when it
          -- has none; the part bought before phase 2 when the application
          -- has recorded later purchases as lots of their own. That part's
          -- cost is what the position's total cost leaves once those lots'
          -- is taken out, exact in numeric.
          SELECT i.id, count(t.id) AS lots,
                 i."totalQuantity" - coalesce(sum(t."remainingQuantity"), 0) AS residual,
                 i."totalQuantity" * i."averageCostBasis" - coalesce(sum(t."remainingQuantity" * t."costBasisPerUnit"), 0) AS "residualCost"
            FROM "Investment" i JOIN input ON input.id = i.id LEFT JOIN "TaxLot" t ON t."investmentId" = i.id
           GROUP BY i.id
        ), lots AS (
          INSERT INTO "TaxLot" (id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", fees,
                                "remainingQuantity", status, "createdAt", "updatedAt")
          SELECT ${newRowIdSql}, i.id, i."createdAt"::date, c.residual,
                 CASE WHEN c.lots = 0 THEN i."averageCostBasis" ELSE round(c."residualCost" / c.residual, 8) END, 0,
                 c.residual, 'OPEN', ${utcNowSql}, ${utcNowSql}
            FROM "Investment" i JOIN cover c ON c.id = i.id
           WHERE NOT (${violationsOf('Investment', Prisma.raw('i'))})
             AND c.residual > 0 AND (c.lots = 0 OR c."residualCost" >= 0)
          RETURNING id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", "remainingQuantity"
        ), audit AS (
          INSERT INTO "AuditLog" (id, "userId", action, entity, "entityId", "userAgent", "createdAt", metadata)
          SELECT ${newRowIdSql}, p."userId", 'CREATE_TAX_LOT', 'TaxLot', lots.id, ${FLEET_ACTOR}, ${utcNowSql},
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
      // Rare: lots that cover part of the position yet cost more than all of it. Asked only when a job made no lot.
      const unmade = ids.filter((id) => !lotOf.has(id) && investments.has(id));
      const uncoveredOf = new Map(
        unmade.length === 0
          ? []
          : (
              await tx.query<{ id: string; residual: string }>(Prisma.sql`
                SELECT i.id, (i."totalQuantity" - sum(t."remainingQuantity"))::text AS residual
                  FROM "Investment" i JOIN "TaxLot" t ON t."investmentId" = i.id
                 WHERE i.id = ANY(${unmade}::text[])
                 GROUP BY i.id HAVING i."totalQuantity" > sum(t."remainingQuantity")`)
            ).map((row) => [row.id, new Prisma.Decimal(row.residual).toFixed()]),
      );
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
        const uncovered = uncoveredOf.get(item.key);
        if (uncovered) {
          return new PermanentJobError(
            `investment ${item.key}: its lots leave ${uncovered} of its quantity uncovered at a negative cost (they cost more than the whole position): ` +
              'check its lots (tys verify lots); nothing was changed',
          );
        }
        return { status: 'skipped', reason: 'investment already has tax lots covering its quantity' };
      });
    });
  },

  // From no lots to one per investment: stale statistics would send the
  // application's lot queries to sequential scans (seen in the rehearsal).
  grows: ['TaxLot'],

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
