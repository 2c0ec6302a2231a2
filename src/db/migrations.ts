import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { redactUrl } from '../config/env.js';
import { PROJECT_ROOT } from '../project-root.js';
import { MigrationError } from './migration-error.js';
import { serverVersionProblem } from './server-version.js';
import { archiveSales, salesHeld, SALES_MIGRATION } from './sales-archive.js';
import { createIndexStatement, describeDifference, diffSchemas, snapshotOfSql, snapshotSchema, type SchemaDifference } from './schema-diff.js';
import { withLockRetries, type LockLimits } from './lock-retry.js';
import { lockPlan, newObjectsFirst } from './lock-plan.js';

export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'prisma', 'migrations');

export { MigrationError };

/** The database has the MVP tables but not exactly the baseline's schema: nothing was changed. */
export class AdoptionRefused extends MigrationError {
  override name = 'AdoptionRefused';
  constructor(readonly differences: string[]) {
    super(`the database's schema differs from the baseline in ${differences.length} ${differences.length === 1 ? 'place' : 'places'}; nothing was changed`);
  }
}

export interface MigrationFile {
  name: string;
  /** sha256 of migration.sql, as Prisma records it in _prisma_migrations.checksum. */
  checksum: string;
  hasDown: boolean;
}

export interface MigrationState extends MigrationFile {
  appliedAt: Date | null;
  /** The file changed after it was applied. */
  modified: boolean;
}

export interface MigrationStatus {
  migrations: MigrationState[];
  /** The database has the MVP tables and the baseline is not recorded: `tys migrate` will adopt it. */
  notAdopted: boolean;
}

export function listMigrationFiles(dir = MIGRATIONS_DIR): MigrationFile[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(path.join(dir, entry.name, 'migration.sql')))
    .map((entry) => entry.name)
    .sort()
    .map((name) => ({
      name,
      checksum: createHash('sha256')
        .update(readFileSync(path.join(dir, name, 'migration.sql')))
        .digest('hex'),
      hasDown: existsSync(path.join(dir, name, 'down.sql')),
    }));
}

export function readMigrationSql(name: string, which: 'migration' | 'down', dir = MIGRATIONS_DIR): string {
  return readFileSync(path.join(dir, name, `${which}.sql`), 'utf8');
}

export interface ConnectOptions {
  /** Create the database when the server does not have it. Default false: a mistyped name is an error, not a new database. */
  createDatabase?: boolean;
}

/** A connection to the database of the URL, with an error that names a missing database and how to create it. */
export async function connectDatabase(databaseUrl: string, options: ConnectOptions = {}): Promise<pg.Client> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new MigrationError(`DATABASE_URL names no database (${redactUrl(databaseUrl)})`);
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'tys migrate' });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    if ((error as { code?: string }).code !== '3D000') throw error;
    if (!options.createDatabase) {
      throw new MigrationError(`database "${name}" does not exist on ${url.hostname}:${url.port || 5432} (use --create-database to create it)`);
    }
    await createDatabase(databaseUrl, name);
    return connectDatabase(databaseUrl);
  }
  try {
    const { rows } = await client.query<{ num: number; version: string }>(
      `SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version`,
    );
    const problem = serverVersionProblem(rows[0]!.num, rows[0]!.version);
    if (problem) throw new MigrationError(problem);
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

async function createDatabase(databaseUrl: string, name: string): Promise<void> {
  const maintenance = new URL(databaseUrl);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({ connectionString: maintenance.toString() });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } catch (error) {
    // Another process created it meanwhile.
    if ((error as { code?: string }).code !== '42P04') throw error;
  } finally {
    await client.end();
  }
}

/** Prisma Migrate's advisory lock key: deploys from tys and from prisma exclude each other. */
const PRISMA_MIGRATE_LOCK = 72707369;

const HISTORY_TABLE_DDL = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum"            VARCHAR(64) NOT NULL,
  "finished_at"         TIMESTAMPTZ,
  "migration_name"      VARCHAR(255) NOT NULL,
  "logs"                TEXT,
  "rolled_back_at"      TIMESTAMPTZ,
  "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export interface MigrateOptions extends ConnectOptions, Partial<LockLimits> {
  /** Default: the project's prisma/migrations. */
  dir?: string;
  /**
   * Adopt a database whose MVP schema differs from the baseline (`--baseline`):
   * create the baseline's missing indexes, record the baseline as applied and
   * go on. Default false: such a database is refused, unchanged.
   */
  adoptAnyway?: boolean;
  /** Told about each step that is not instant: adoption, lock waits. */
  onProgress?: (line: string) => void;
  /** The last migration to apply (a phase at a time, as a rehearsal or a cautious operator goes). Default: all. */
  to?: string;
}

export interface DeployResult {
  /** Set when this deploy adopted a database that had the MVP tables and no history. */
  adopted: { differences: string[]; createdIndexes: string[] } | null;
  applied: string[];
}

/**
 * Applies pending migrations in name order and records them in Prisma's own
 * `_prisma_migrations` table, row for row as `prisma migrate deploy` does
 * (same checksum, same lock), so either tool can take over from the other.
 * Unlike Prisma, each migration and its history row commit in one
 * transaction, under a lock timeout: a failing migration leaves neither a
 * half-applied schema nor a history table or record behind.
 *
 * A database that already has the MVP tables and no history (the
 * application's production database) is adopted first: when its schema
 * matches the baseline migration, the baseline is recorded as applied.
 */
export async function deployMigrations(databaseUrl: string, options: MigrateOptions = {}): Promise<DeployResult> {
  const dir = options.dir ?? MIGRATIONS_DIR;
  const client = await connectDatabase(databaseUrl, options);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK]);
    const history = await readHistory(client);
    if (history.unfinished) {
      throw new MigrationError(`migration ${history.unfinished} failed earlier and is unresolved: fix it, then run "prisma migrate resolve"`);
    }
    const all = listMigrationFiles(dir);
    const last = options.to === undefined ? all.length - 1 : all.findIndex((file) => file.name === options.to);
    if (last < 0) throw new MigrationError(`no migration named "${options.to}" (expected one of: ${all.map((f) => f.name).join(', ')})`);
    const files = all.slice(0, last + 1);
    // The baseline not recorded: a new database, or the application's own
    // (whose history, if it has one, names the application's migrations).
    const adopted = files[0] && !history.applied.has(files[0].name) ? await adopt(client, databaseUrl, files[0], dir, options) : null;
    if (adopted) history.applied.set(files[0]!.name, { checksum: files[0]!.checksum, finishedAt: new Date() });
    const applied: string[] = [];
    for (const file of files) {
      if (history.applied.has(file.name)) continue;
      const { early, late } = newObjectsFirst(readMigrationSql(file.name, 'migration', dir));
      const beforeLocks = early ? () => client.query(early) : undefined;
      await withLockRetries(client, databaseUrl, file.name, lockPlan(late), { ...options, beforeLocks }, async () => {
        await client.query(HISTORY_TABLE_DDL);
        if (late) await client.query(late);
        await recordApplied(client, file);
      });
      applied.push(file.name);
    }
    return { adopted, applied };
  } finally {
    await client.end();
  }
}

async function recordApplied(client: pg.Client, file: MigrationFile, logs: string | null = null): Promise<void> {
  await client.query(
    `INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at, finished_at, applied_steps_count)
     VALUES ($1, $2, $3, $4, now(), clock_timestamp(), 1)`,
    [randomUUID(), file.checksum, file.name, logs],
  );
}

/**
 * Adoption of a database that has the baseline's tables but no history. Its
 * schema is compared with what the baseline migration creates; when they
 * differ, nothing changes unless the operator said to adopt anyway.
 */
async function adopt(client: pg.Client, databaseUrl: string, baseline: MigrationFile, dir: string, options: MigrateOptions): Promise<DeployResult['adopted']> {
  const sql = readMigrationSql(baseline.name, 'migration', dir);
  const differences = await compareWithBaseline(client, sql);
  if (differences === null) return null;
  const lines = differences.map(describeDifference);
  if (lines.length > 0 && !options.adoptAnyway) throw new AdoptionRefused(lines);
  const missingIndexes = differences.filter((d) => d.item.kind === 'index' && d.where === 'missing').map((d) => d.item);
  options.onProgress?.(`adopting the database as ${baseline.name}${missingIndexes.length ? `, creating ${missingIndexes.length} missing index(es)` : ''}`);
  const indexStatements = missingIndexes.map(createIndexStatement);
  await withLockRetries(client, databaseUrl, baseline.name, lockPlan(indexStatements.join(';\n')), options, async () => {
    for (const statement of indexStatements) await client.query(statement);
    await client.query(HISTORY_TABLE_DDL);
    const logs = lines.length ? `adopted with differences:\n${lines.join('\n')}` : 'adopted: schema matched the baseline';
    await recordApplied(client, baseline, logs);
  });
  return { differences: lines, createdIndexes: missingIndexes.map((i) => i.label.replace(/^index /, '')) };
}

/**
 * Null when the database holds none of the baseline's tables (a new
 * database, migrated from scratch); else how its public schema differs from
 * the baseline's.
 */
async function compareWithBaseline(client: pg.Client, baselineSql: string): Promise<SchemaDifference[] | null> {
  const expected = await snapshotOfSql(client, baselineSql);
  await client.query('BEGIN READ ONLY');
  try {
    const actual = await snapshotSchema(client, 'public');
    const baselineTables = [...expected.values()].filter((item) => item.kind === 'table');
    if (!baselineTables.some((table) => actual.has(`table:${table.table}:${table.table}`))) return null;
    return diffSchemas(expected, actual);
  } finally {
    await client.query('COMMIT');
  }
}

interface History {
  applied: Map<string, { checksum: string; finishedAt: Date }>;
  /** A migration Prisma recorded as started and never finished. */
  unfinished: string | null;
}

async function readHistory(client: pg.Client): Promise<History> {
  const table = await client.query<{ t: string | null }>(`SELECT to_regclass('public._prisma_migrations') AS t`);
  const history: History = { applied: new Map(), unfinished: null };
  if (!table.rows[0]!.t) return history;
  const rows = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
    `SELECT migration_name, checksum, finished_at FROM _prisma_migrations WHERE rolled_back_at IS NULL ORDER BY started_at`,
  );
  for (const row of rows.rows) {
    if (row.finished_at) history.applied.set(row.migration_name, { checksum: row.checksum, finishedAt: row.finished_at });
    else history.unfinished ??= row.migration_name;
  }
  return history;
}

export async function migrationStatus(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<MigrationStatus> {
  const client = await connectDatabase(databaseUrl);
  try {
    const { applied } = await readHistory(client);
    const files = listMigrationFiles(dir);
    const notAdopted =
      files[0] !== undefined && !applied.has(files[0].name) && (await compareWithBaseline(client, readMigrationSql(files[0].name, 'migration', dir))) !== null;
    const migrations = files.map((file) => {
      const record = applied.get(file.name);
      return { ...file, appliedAt: record?.finishedAt ?? null, modified: record ? record.checksum !== file.checksum : false };
    });
    return { migrations, notAdopted };
  } finally {
    await client.end();
  }
}

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
      for (const drop of dropsOf(readMigrationSql(file.name, 'down', dir))) drops.push({ what: drop.what, rows: await countHeld(client, drop) });
      plan.migrations.push({ name: file.name, drops });
      if (file.name === SALES_MIGRATION) plan.sales = await salesHeld(client);
    }
    return plan;
  } finally {
    await client.end();
  }
}

type Drop = { what: string; table?: string; column?: string };

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
        if (file.name === SALES_MIGRATION) {
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
