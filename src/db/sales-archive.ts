import type pg from 'pg';
import { MigrationError } from './migration-error.js';

/** Each table the rollback drops, and the archive that keeps its rows. Allocations name lots, so lots are kept too. */
const ARCHIVES = [
  { table: 'SaleTransaction', archive: 'ArchivedSaleTransaction' },
  { table: 'TaxLotAllocation', archive: 'ArchivedTaxLotAllocation' },
  { table: 'TaxLot', archive: 'ArchivedTaxLot' },
] as const;

/**
 * Whether a rollback that drops these tables would take sales, allocations
 * or the lots they name with it: the plan says those are kept when they
 * exist, so such a rollback archives them first (or is refused).
 */
export function dropsSales(drops: readonly { table?: string; column?: string }[]): boolean {
  return drops.some((drop) => !drop.column && ARCHIVES.some(({ table }) => table === drop.table));
}

export async function salesHeld(client: pg.ClientBase): Promise<{ sales: number; allocations: number }> {
  const result = await client.query<{ sales: string; allocations: string }>(
    `SELECT (SELECT count(*) FROM "SaleTransaction") AS sales, (SELECT count(*) FROM "TaxLotAllocation") AS allocations`,
  );
  return { sales: Number(result.rows[0]!.sales), allocations: Number(result.rows[0]!.allocations) };
}

/**
 * Before the tax-lot tables are dropped: when they hold sales or
 * allocations, either refuses (no consent to archive) or copies sales,
 * allocations and lots into archive tables. The archives have no foreign
 * keys (what they named is being dropped) and enum columns as text (the enum
 * types are dropped too); a later rollback adds to them. Runs inside the
 * rollback's transaction, so the copy and the drop happen together or not
 * at all. Null when there was nothing to keep.
 */
export async function archiveSales(client: pg.ClientBase, consent: boolean): Promise<{ sales: number; allocations: number; lots: number } | null> {
  const held = await salesHeld(client);
  if (held.sales === 0 && held.allocations === 0) return null;
  if (!consent) {
    throw new MigrationError(
      `the tax-lot tables hold ${held.sales} sales and ${held.allocations} lot allocations, which this rollback would drop; ` +
        'nothing was changed. Run it again with --archive-sales to keep them (and the lots) in archive tables',
    );
  }
  const copied: Record<string, number> = {};
  for (const { table, archive } of ARCHIVES) copied[table] = await copyInto(client, table, archive);
  return { sales: copied.SaleTransaction!, allocations: copied.TaxLotAllocation!, lots: copied.TaxLot! };
}

async function copyInto(client: pg.ClientBase, table: string, archive: string): Promise<number> {
  const columns = await client.query<{ name: string; enum: boolean }>(
    `SELECT attname AS name, t.typtype = 'e' AS enum
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [`public."${table}"`],
  );
  const names = columns.rows.map((c) => `"${c.name}"`).join(', ');
  const values = columns.rows.map((c) => (c.enum ? `"${c.name}"::text AS "${c.name}"` : `"${c.name}"`)).join(', ');
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [`public."${archive}"`]);
  if (!exists.rows[0]!.t) {
    await client.query(`CREATE TABLE "${archive}" AS SELECT ${values} FROM "${table}" WITH NO DATA`);
    await client.query(`ALTER TABLE "${archive}" ADD PRIMARY KEY ("id"), ADD COLUMN "archivedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP`);
  }
  const inserted = await client.query(`INSERT INTO "${archive}" (${names}) SELECT ${values} FROM "${table}" ON CONFLICT ("id") DO NOTHING`);
  return inserted.rowCount ?? 0;
}
