import { Prisma } from '../db/prisma.js';
import { auditRecord } from '../fleet/audit.js';
import { PermanentJobError } from '../fleet/errors.js';
import { DEFAULT_FAMILY_OPTIONS, type JobFamily } from '../fleet/family.js';
import { investmentScopeSql, isRowId } from '../fleet/scope.js';

const VERIFY_SAMPLE = 100;

interface LockedInvestment {
  id: string;
  totalQuantity: Prisma.Decimal;
  averageCostBasis: Prisma.Decimal;
  createdAt: Date;
  userId: string;
}

/**
 * Phase 2: one OPEN tax lot per investment that has none, carrying the
 * aggregated position (the MVP kept no purchase history): bought on the day
 * the investment was created, at its average cost, no fees.
 */
export const lotsFamily: JobFamily = {
  name: 'lots',
  description: 'create the initial tax lot of every investment that has none (phase 2)',
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

  async handle({ prisma, runId, jobId }, investmentId) {
    return prisma.$transaction(async (tx) => {
      // The row lock serialises racing jobs for one investment: the second
      // waits for the first to commit. The lot count must be a statement of
      // its own, after the lock: only a new statement's snapshot (READ
      // COMMITTED) sees the lot the first job committed.
      const [investment] = await tx.$queryRaw<LockedInvestment[]>`
        SELECT i.id, i."totalQuantity", i."averageCostBasis", i."createdAt", p."userId"
          FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId"
         WHERE i.id = ${investmentId}
           FOR NO KEY UPDATE OF i`;
      if (!investment) return { status: 'skipped', reason: 'investment no longer exists' };
      if ((await tx.taxLot.count({ where: { investmentId } })) > 0) {
        return { status: 'skipped', reason: 'investment already has tax lots' };
      }
      const quantity = new Prisma.Decimal(investment.totalQuantity);
      if (quantity.lte(0)) {
        throw new PermanentJobError(
          `investment ${investmentId} has totalQuantity ${quantity.toFixed()} (must be > 0): run the constraints family first`,
        );
      }
      const lot = await tx.taxLot.create({
        data: {
          investmentId,
          purchaseDate: investment.createdAt,
          quantity,
          remainingQuantity: quantity,
          costBasisPerUnit: new Prisma.Decimal(investment.averageCostBasis),
          fees: new Prisma.Decimal(0),
          status: 'OPEN',
        },
      });
      await tx.auditLog.create({
        data: auditRecord({
          userId: investment.userId,
          action: 'CREATE_TAX_LOT',
          entity: 'TaxLot',
          entityId: lot.id,
          runId,
          jobId,
          before: null,
          after: {
            investmentId,
            purchaseDate: lot.purchaseDate.toISOString().slice(0, 10),
            quantity: lot.quantity.toFixed(),
            costBasisPerUnit: lot.costBasisPerUnit.toFixed(),
            remainingQuantity: lot.remainingQuantity.toFixed(),
          },
        }),
      });
      return { status: 'changed', detail: `lot ${lot.id}` };
    });
  },

  // The document's check, exactly: decimal sums compared in SQL, no tolerance.
  async verify(prisma) {
    const rows = await prisma.$queryRaw<{ id: string; totalQuantity: Prisma.Decimal; lotSum: Prisma.Decimal | null; lots: bigint; offenders: bigint; checked: bigint }[]>`
      WITH sums AS (
        SELECT i.id, i."totalQuantity", sum(t."remainingQuantity") AS "lotSum", count(t.id) AS lots
          FROM "Investment" i LEFT JOIN "TaxLot" t ON t."investmentId" = i.id
         GROUP BY i.id
      )
      SELECT id, "totalQuantity", "lotSum", lots,
             count(*) OVER () AS offenders, (SELECT count(*) FROM "Investment") AS checked
        FROM sums
       WHERE lots = 0 OR "lotSum" <> "totalQuantity"
       ORDER BY id LIMIT ${VERIFY_SAMPLE}`;
    const checked = rows[0] ? Number(rows[0].checked) : await prisma.investment.count();
    return {
      ok: rows.length === 0,
      checked,
      problemCount: rows[0] ? Number(rows[0].offenders) : 0,
      problems: rows.map((row) =>
        row.lots === 0n
          ? { id: row.id, problem: 'no tax lots' }
          : {
              id: row.id,
              problem: `lots hold ${new Prisma.Decimal(row.lotSum!).toFixed()} but totalQuantity is ${new Prisma.Decimal(row.totalQuantity).toFixed()}`,
            },
      ),
    };
  },

  options: { ...DEFAULT_FAMILY_OPTIONS, concurrency: 50 },
};
