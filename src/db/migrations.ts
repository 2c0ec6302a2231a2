import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { redactUrl } from '../config/env.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'prisma', 'migrations');

export class MigrationError extends Error {
  override name = 'MigrationError';
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

export function listMigrationFiles(dir = MIGRATIONS_DIR): MigrationFile[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(path.join(dir, entry.name, 'migration.sql')))
    .map((entry) => entry.name)
    .sort()
    .map((name) => ({
      name,
      checksum: createHash('sha256').update(readFileSync(path.join(dir, name, 'migration.sql'))).digest('hex'),
      hasDown: existsSync(path.join(dir, name, 'down.sql')),
    }));
}

/** Creates the database named in the URL when the server does not have it yet. */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new MigrationError(`DATABASE_URL names no database (${redactUrl(databaseUrl)})`);
  const maintenance = new URL(databaseUrl);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({ connectionString: maintenance.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
    return true;
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

/**
 * Applies pending migrations in name order and records them in Prisma's own
 * `_prisma_migrations` table, row for row as `prisma migrate deploy` does
 * (same checksum, same lock), so either tool can take over from the other.
 * Unlike Prisma, each migration and its history row commit in one
 * transaction: a failing migration leaves neither a half-applied schema nor
 * a failed record that blocks the next deploy.
 */
export async function deployMigrations(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<string[]> {
  await ensureDatabase(databaseUrl);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK]);
    await client.query(HISTORY_TABLE_DDL);
    const unfinished = await client.query(
      'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NULL AND rolled_back_at IS NULL',
    );
    if (unfinished.rowCount) {
      throw new MigrationError(
        `migration ${unfinished.rows[0].migration_name} failed earlier and is unresolved: fix it, then run "prisma migrate resolve"`,
      );
    }
    const applied = await appliedMigrations(client);
    const done: string[] = [];
    for (const file of listMigrationFiles(dir)) {
      if (applied.has(file.name)) continue;
      const sql = readFileSync(path.join(dir, file.name, 'migration.sql'), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query(
          `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
           VALUES ($1, $2, $3, now(), clock_timestamp(), 1)`,
          [randomUUID(), file.checksum, file.name],
        );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new MigrationError(`migration ${file.name} failed and was rolled back: ${(error as Error).message}`);
      }
      done.push(file.name);
    }
    return done;
  } finally {
    await client.end();
  }
}

async function appliedMigrations(client: pg.Client): Promise<Map<string, { checksum: string; finishedAt: Date }>> {
  const table = await client.query(`SELECT to_regclass('public._prisma_migrations') AS t`);
  const applied = new Map<string, { checksum: string; finishedAt: Date }>();
  if (!table.rows[0].t) return applied;
  const rows = await client.query(
    `SELECT migration_name, checksum, finished_at FROM _prisma_migrations
      WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
  );
  for (const row of rows.rows) applied.set(row.migration_name, { checksum: row.checksum, finishedAt: row.finished_at });
  return applied;
}

export async function migrationStatus(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<MigrationState[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const applied = await appliedMigrations(client);
    return listMigrationFiles(dir).map((file) => {
      const record = applied.get(file.name);
      return { ...file, appliedAt: record?.finishedAt ?? null, modified: record ? record.checksum !== file.checksum : false };
    });
  } finally {
    await client.end();
  }
}

/**
 * Reverts applied migrations newer than `target` (a migration name, or
 * `empty` for all of them), newest first, each with its down.sql in one
 * transaction together with the removal of its history row.
 */
export async function revertMigrations(databaseUrl: string, target: string, dir = MIGRATIONS_DIR): Promise<string[]> {
  const files = listMigrationFiles(dir);
  const targetIndex = target === 'empty' ? -1 : files.findIndex((file) => file.name === target);
  if (target !== 'empty' && targetIndex < 0) {
    throw new MigrationError(`unknown migration "${target}" (expected one of: empty, ${files.map((f) => f.name).join(', ')})`);
  }
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const reverted: string[] = [];
  try {
    const applied = await appliedMigrations(client);
    for (const file of files.slice(targetIndex + 1).reverse()) {
      if (!applied.has(file.name)) continue;
      if (!file.hasDown) throw new MigrationError(`migration ${file.name} has no down.sql and cannot be reverted`);
      const sql = readFileSync(path.join(dir, file.name, 'down.sql'), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('DELETE FROM _prisma_migrations WHERE migration_name = $1', [file.name]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new MigrationError(`reverting ${file.name} failed: ${(error as Error).message}`);
      }
      reverted.push(file.name);
    }
    return reverted;
  } finally {
    await client.end();
  }
}
