import type pg from 'pg';
import { MigrationError } from '../migration-error.js';
import { archiveSales, dropsSales, salesHeld } from '../sales-archive.js';
import { withLockRetries, type LockLimits } from '../lock-retry.js';
import { lockPlan } from '../lock-plan.js';
import { connectDatabase } from './connect.js';
import { listMigrationFiles, MIGRATIONS_DIR, readMigrationSql, type MigrationFile } from './files.js';
import { PRISMA_MIGRATE_LOCK, readHistory } from './history.js';

/** Something a revert removes, with what it holds now. */
export interface DropItem {
  /** `table "TaxLot"`, `column Investment.sector`, `type "TaxLotStatus"`, `constraint TaxLot_quantity_positive`. */
  what: string;
  /** Rows of a table, non-null values of a column; null for what holds no data. */
  rows: number | null;
}

export interface RevertPlan {
  /** Migrations to revert, newest first, each with what its down.sql drops. */
  migrations: { name: string; drops: DropItem[] }[];
  /** Sales and allocations that the tax-lot rollback would take with it. */
  sales: { sales: number; allocations: number } | null;
}

function resolveTarget(files: MigrationFile[], target: string): number {
  const index = target === 'empty' ? -1 : files.findIndex((file) => file.name === target);
  if (target !== 'empty' && index < 0) {
    throw new MigrationError(`unknown migration "${target}" (expected one of: empty, ${files.map((f) => f.name).join(', ')})`);
  }
  return index;
}

/** What reverting down to `target` would drop, read from each down.sql and counted in the database; changes nothing. */
export async function planRevert(databaseUrl: string, target: string, dir = MIGRATIONS_DIR): Promise<RevertPlan> {
  const files = listMigrationFiles(dir);
  const targetIndex = resolveTarget(files, target);
  const client = await connectDatabase(databaseUrl);
  try {
    const { applied } = await readHistory(client);
    const plan: RevertPlan = { migrations: [], sales: null };
    for (const file of files.slice(targetIndex + 1).reverse()) {
      if (!applied.has(file.name)) continue;
      if (!file.hasDown) throw new MigrationError(`migration ${file.name} has no down.sql and cannot be reverted`);
      const drops: DropItem[] = [];
      const dropped = dropsOf(readMigrationSql(file.name, 'down', dir));
      for (const drop of dropped) drops.push({ what: drop.what, rows: await countHeld(client, drop) });
      plan.migrations.push({ name: file.name, drops });
      if (dropsSales(dropped)) plan.sales = await salesHeld(client);
    }
    return plan;
  } finally {
    await client.end();
  }
}

/** Something a down.sql drops: a table, a column of one, a type or a constraint. */
export type Drop = { what: string; table?: string; column?: string };

/** The tables, columns, types and constraints a down.sql drops, in its order. */
export function dropsOf(downSql: string): Drop[] {
  const drops: Drop[] = [];
  const statements = downSql.replace(/--.*$/gm, '').split(';');
  for (const statement of statements) {
    const table = /DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?"([^"]+)"/i.exec(statement);
    if (table) drops.push({ what: `table "${table[1]}"`, table: table[1] });
    const type = /DROP\s+TYPE\s+(?:IF\s+EXISTS\s+)?"([^"]+)"/i.exec(statement);
    if (type) drops.push({ what: `type "${type[1]}"` });
    const altered = /ALTER\s+TABLE\s+"([^"]+)"/i.exec(statement)?.[1];
    for (const column of statement.matchAll(/DROP\s+COLUMN\s+(?:IF\s+EXISTS\s+)?"([^"]+)"/gi)) {
      drops.push({ what: `column ${altered}.${column[1]}`, table: altered, column: column[1] });
    }
    for (const constraint of statement.matchAll(/DROP\s+CONSTRAINT\s+(?:IF\s+EXISTS\s+)?"([^"]+)"/gi)) {
      drops.push({ what: `constraint ${constraint[1]}` });
    }
  }
  return drops;
}

async function countHeld(client: pg.Client, drop: Drop): Promise<number | null> {
  if (!drop.table) return null;
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [`public."${drop.table}"`]);
  if (!exists.rows[0]!.t) return 0;
  const where = drop.column ? ` WHERE "${drop.column}" IS NOT NULL` : '';
  const result = await client.query<{ n: string }>(`SELECT count(*) AS n FROM "${drop.table}"${where}`);
  return Number(result.rows[0]!.n);
}

export interface RevertOptions extends Partial<LockLimits> {
  dir?: string;
  /**
   * When the tax-lot rollback finds sales or allocations, copy them (and the
   * lots) into archive tables that outlive the rollback. Default false: the
   * rollback is refused while they exist.
   */
  archiveSales?: boolean;
  onProgress?: (line: string) => void;
}

/**
 * Reverts applied migrations newer than `target` (a migration name, or
 * `empty` for all of them), newest first, each with its down.sql in one
 * transaction together with the removal of its history row. The caller has
 * the operator's consent: this drops what `planRevert` lists.
 */
export async function revertMigrations(databaseUrl: string, target: string, options: RevertOptions = {}): Promise<string[]> {
  const dir = options.dir ?? MIGRATIONS_DIR;
  const files = listMigrationFiles(dir);
  const targetIndex = resolveTarget(files, target);
  const client = await connectDatabase(databaseUrl);
  const reverted: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK]);
    const { applied } = await readHistory(client);
    for (const file of files.slice(targetIndex + 1).reverse()) {
      if (!applied.has(file.name)) continue;
      if (!file.hasDown) throw new MigrationError(`migration ${file.name} has no down.sql and cannot be reverted`);
      const sql = readMigrationSql(file.name, 'down', dir);
      await withLockRetries(client, databaseUrl, `reverting ${file.name}`, lockPlan(sql), options, async () => {
        if (dropsSales(dropsOf(sql))) {
          const archived = await archiveSales(client, options.archiveSales ?? false);
          if (archived) options.onProgress?.(`archived ${archived.sales} sales, ${archived.allocations} allocations and ${archived.lots} lots`);
        }
        await client.query(sql);
        await client.query('DELETE FROM _prisma_migrations WHERE migration_name = $1', [file.name]);
      });
      reverted.push(file.name);
    }
    return reverted;
  } finally {
    await client.end();
  }
}
