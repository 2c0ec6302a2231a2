import type { PrismaClient } from '../../src/db/prisma.js';
import { toScaled } from '../support/scaled.js';
import type { Expected } from './expected.js';

export interface StateCheck {
  /** Rows or entries present more often than once where once is right (must be 0). */
  duplicates: number;
  /** Work that should have happened and did not (must be 0). */
  lost: number;
  /** Rows whose values differ from the expected ones (must be 0). */
  wrong: number;
  /** Up to 20 findings, readable. */
  findings: string[];
}

const same = (a: string | null, b: string | null) => (a === null || b === null ? a === b : toScaled(a) === toScaled(b));

/**
 * Compares the whole database with the independently computed expectation:
 * one exact lot per investment, every violation fixed with one audit entry
 * and no clean row touched, metadata on every stock, every alert that should
 * trigger triggered once and no other, every split applied once.
 */
export async function checkState(prisma: PrismaClient, expected: Expected): Promise<StateCheck> {
  const result: StateCheck = { duplicates: 0, lost: 0, wrong: 0, findings: [] };
  const finding = (kind: 'duplicates' | 'lost' | 'wrong', text: string, n = 1) => {
    result[kind] += n;
    if (result.findings.length < 20) result.findings.push(`${kind}: ${text}`);
  };

  const rows = await prisma.$queryRaw<
    {
      id: string;
      quantity: string;
      cost: string;
      sector: string | null;
      lots: bigint;
      lotQuantity: string | null;
      lotRemaining: string | null;
      lotCost: string | null;
      lotDateOk: boolean | null;
    }[]
  >`
    SELECT i.id, i."totalQuantity"::text AS quantity, i."averageCostBasis"::text AS cost, i.sector,
           count(t.id) AS lots, min(t.quantity)::text AS "lotQuantity", min(t."remainingQuantity")::text AS "lotRemaining",
           min(t."costBasisPerUnit")::text AS "lotCost", bool_and(t."purchaseDate" = i."createdAt"::date) AS "lotDateOk"
      FROM "Investment" i LEFT JOIN "TaxLot" t ON t."investmentId" = i.id
     GROUP BY i.id ORDER BY i.id`;
  if (rows.length !== expected.investments.size)
    finding('lost', `${rows.length} investments in the database, ${expected.investments.size} seeded`, Math.abs(rows.length - expected.investments.size));
  for (const row of rows) {
    const want = expected.investments.get(row.id);
    if (!want) continue;
    if (row.lots === 0n) finding('lost', `investment ${row.id} has no lot`);
    if (row.lots > 1n) finding('duplicates', `investment ${row.id} has ${row.lots} lots`, Number(row.lots) - 1);
    if (!same(row.quantity, want.finalQuantity) || !same(row.cost, want.finalCost)) {
      finding('wrong', `investment ${row.id}: ${row.quantity} at ${row.cost}, expected ${want.finalQuantity} at ${want.finalCost}`);
    }
    if (
      row.lots > 0n &&
      (!same(row.lotQuantity, want.finalQuantity) || !same(row.lotRemaining, want.finalQuantity) || !same(row.lotCost, want.finalCost) || !row.lotDateOk)
    ) {
      finding(
        'wrong',
        `lot of ${row.id}: ${row.lotQuantity} (${row.lotRemaining} left) at ${row.lotCost}, expected ${want.finalQuantity} at ${want.finalCost}`,
      );
    }
    if (row.sector !== want.sector) finding(row.sector === null ? 'lost' : 'wrong', `investment ${row.id}: sector ${row.sector}, expected ${want.sector}`);
  }

  // One audit entry per change, and none for rows that needed none.
  const audits = await prisma.$queryRaw<{ action: string; entityId: string; n: bigint }[]>`
    SELECT action, "entityId", count(*) AS n FROM "AuditLog"
     WHERE action IN ('FIX_CONSTRAINT', 'CREATE_TAX_LOT', 'BACKFILL_METADATA', 'TRIGGER_ALERT')
        OR (action LIKE 'APPLY_%' AND entity = 'CorporateAction')
     GROUP BY action, "entityId"`;
  const counted = new Map<string, Map<string, number>>();
  for (const audit of audits) {
    if (audit.n > 1n) finding('duplicates', `${audit.n} ${audit.action} entries for ${audit.entityId}`, Number(audit.n) - 1);
    const kind = audit.action.startsWith('APPLY_') ? 'APPLY' : audit.action;
    if (!counted.has(kind)) counted.set(kind, new Map());
    counted.get(kind)!.set(audit.entityId, Number(audit.n));
  }
  const audited = (kind: string, id: string) => counted.get(kind)?.has(id) ?? false;
  for (const [id, want] of expected.investments) {
    if (want.violating !== audited('FIX_CONSTRAINT', id)) {
      finding(
        want.violating ? 'lost' : 'wrong',
        `investment ${id}: ${want.violating ? 'violation fixed without an audit entry' : 'clean row has a constraint fix'}`,
      );
    }
    if ((want.sector !== null) !== audited('BACKFILL_METADATA', id)) finding('wrong', `investment ${id}: metadata audit does not match`);
  }
  const [unaudited] = await prisma.$queryRaw<{ n: bigint }[]>`
    SELECT count(*) AS n FROM "TaxLot" t
     WHERE NOT EXISTS (SELECT 1 FROM "AuditLog" a WHERE a.action = 'CREATE_TAX_LOT' AND a."entityId" = t.id)`;
  if (unaudited!.n > 0n) finding('lost', `${unaudited!.n} lots without a CREATE_TAX_LOT audit entry`, Number(unaudited!.n));
  if ((counted.get('APPLY')?.size ?? 0) !== expected.actions) {
    finding(
      'lost',
      `${counted.get('APPLY')?.size ?? 0} of ${expected.actions} corporate actions applied with an audit entry`,
      expected.actions - (counted.get('APPLY')?.size ?? 0),
    );
  }
  const [unprocessed] = await prisma.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM "CorporateAction" WHERE NOT processed`;
  if (unprocessed!.n > 0n) finding('lost', `${unprocessed!.n} corporate actions not processed`, Number(unprocessed!.n));

  const alerts = await prisma.$queryRaw<{ id: string; triggered: boolean; triggeredAt: Date | null }[]>`
    SELECT id, triggered, "triggeredAt" FROM "PriceAlert"`;
  for (const alert of alerts) {
    const want = expected.alerts.get(alert.id);
    if (want === undefined) continue;
    if (want && !alert.triggered) finding('lost', `alert ${alert.id} should have triggered`);
    if (!want && alert.triggered) finding('wrong', `alert ${alert.id} triggered and should not have`);
    if (alert.triggered !== audited('TRIGGER_ALERT', alert.id) || alert.triggered !== (alert.triggeredAt !== null)) {
      finding('wrong', `alert ${alert.id}: triggered ${alert.triggered} but ${audited('TRIGGER_ALERT', alert.id) ? 'an' : 'no'} audit entry`);
    }
  }
  return result;
}
