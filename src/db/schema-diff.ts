import { randomBytes } from 'node:crypto';
import type pg from 'pg';

/** One comparable part of a schema: a table, a column, an enum, an index or a constraint. */
export interface SchemaItem {
  /** How messages name it: `table "User"`, `Investment.sector`, `index Account_userId_idx`. */
  label: string;
  /** The table it belongs to; differences inside a table that is missing altogether are not repeated. */
  table: string | null;
  kind: 'table' | 'column' | 'enum' | 'index' | 'constraint';
  /** What must match, schema names removed: a column's type, an index's definition. */
  detail: string;
}

export type SchemaSnapshot = Map<string, SchemaItem>;

export interface SchemaDifference {
  item: SchemaItem;
  /** Where the item is: only in the expected schema, only in the database, or in both but unlike. */
  where: 'missing' | 'extra' | 'changed';
  /** The database's detail, for a changed item. */
  actual?: string;
}

/** Prisma's migration history is bookkeeping, not schema. */
const IGNORED_TABLES = new Set(['_prisma_migrations']);

/**
 * Reads the tables, columns and their types, enums, indexes and constraints
 * of one schema. Runs inside the caller's transaction: it sets the search
 * path locally, so type and table names print without their schema.
 */
export async function snapshotSchema(client: pg.ClientBase, schema: string): Promise<SchemaSnapshot> {
  await client.query(`SELECT set_config('search_path', $1, true)`, [quoteIdent(schema)]);
  const rows = await client.query<{ kind: SchemaItem['kind']; name: string; tbl: string | null; detail: string }>(
    `WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
          tbl AS (SELECT c.oid, c.relname FROM pg_class c, ns WHERE c.relnamespace = ns.oid AND c.relkind IN ('r', 'p'))
     SELECT 'table' AS kind, relname AS name, relname AS tbl, '' AS detail FROM tbl
     UNION ALL
     SELECT 'column', a.attname, t.relname,
            format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE ' NULL' END
       FROM pg_attribute a JOIN tbl t ON t.oid = a.attrelid WHERE a.attnum > 0 AND NOT a.attisdropped
     UNION ALL
     SELECT 'enum', t.typname, NULL, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
       FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid, ns WHERE t.typnamespace = ns.oid GROUP BY t.typname
     UNION ALL
     SELECT 'index', i.relname, t.relname, pg_get_indexdef(i.oid)
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN tbl t ON t.oid = x.indrelid
      WHERE NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid AND k.contype IN ('p', 'u', 'x'))
     UNION ALL
     SELECT 'constraint', k.conname, t.relname, pg_get_constraintdef(k.oid)
       FROM pg_constraint k JOIN tbl t ON t.oid = k.conrelid WHERE k.contype IN ('p', 'f', 'u', 'c', 'x')`,
    [schema],
  );
  const snapshot: SchemaSnapshot = new Map();
  const qualified = new RegExp(`${escapeRegExp(quoteIdent(schema))}\\.`, 'g');
  for (const row of rows.rows) {
    if (row.tbl && IGNORED_TABLES.has(row.tbl)) continue;
    const detail = row.detail.replace(qualified, '').replace(`INDEX ${quoteIdent(row.name)} ON`, 'INDEX ON');
    const label = row.kind === 'table' ? `table "${row.name}"` : row.kind === 'column' ? `${row.tbl}.${row.name}` : `${row.kind} ${row.name}`;
    snapshot.set(`${row.kind}:${row.tbl ?? ''}:${row.name}`, { label, table: row.tbl, kind: row.kind, detail });
  }
  return snapshot;
}

/**
 * The schema a migration's SQL creates, read without leaving a trace: the
 * SQL runs in a scratch schema inside a transaction that is rolled back.
 * The caller's connection must not be inside a transaction.
 */
export async function snapshotOfSql(client: pg.ClientBase, sql: string): Promise<SchemaSnapshot> {
  const scratch = `tys_probe_${randomBytes(6).toString('hex')}`;
  await client.query('BEGIN');
  try {
    await client.query(`CREATE SCHEMA ${scratch}`);
    await client.query(`SELECT set_config('search_path', $1, true)`, [scratch]);
    await client.query(sql);
    return await snapshotSchema(client, scratch);
  } finally {
    await client.query('ROLLBACK');
  }
}

/** What differs between the expected schema and the database's, children of a missing or extra table left out. */
export function diffSchemas(expected: SchemaSnapshot, actual: SchemaSnapshot): SchemaDifference[] {
  const differences: SchemaDifference[] = [];
  const wholeTables = new Set<string>();
  for (const [key, item] of expected) {
    const found = actual.get(key);
    if (!found) {
      differences.push({ item, where: 'missing' });
      if (item.kind === 'table') wholeTables.add(item.table!);
    } else if (found.detail !== item.detail) differences.push({ item, where: 'changed', actual: found.detail });
  }
  for (const [key, item] of actual) {
    if (expected.has(key)) continue;
    differences.push({ item, where: 'extra' });
    if (item.kind === 'table') wholeTables.add(item.table!);
  }
  return differences.filter((d) => d.item.kind === 'table' || !d.item.table || !wholeTables.has(d.item.table));
}

export function describeDifference({ item, where, actual }: SchemaDifference): string {
  if (where === 'missing') return `${item.label}: in the baseline, missing in the database`;
  if (where === 'extra') return `${item.label}: present in the database, not in the baseline`;
  return `${item.label}: ${item.detail} in the baseline, ${actual} in the database`;
}

/** The statement that creates an index of the expected schema in the database's schema. */
export function createIndexStatement(item: SchemaItem): string {
  const name = item.label.replace(/^index /, '');
  return item.detail.replace(/INDEX ON/, `INDEX ${quoteIdent(name)} ON`);
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
