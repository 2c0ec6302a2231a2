import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { MigrationFile } from './files.js';

/** Prisma Migrate's advisory lock key: deploys from tys and from prisma exclude each other. */
export const PRISMA_MIGRATE_LOCK = 72707369;

/** Prisma's history table, made as Prisma makes it. */
export const HISTORY_TABLE_DDL = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum"            VARCHAR(64) NOT NULL,
  "finished_at"         TIMESTAMPTZ,
  "migration_name"      VARCHAR(255) NOT NULL,
  "logs"                TEXT,
  "rolled_back_at"      TIMESTAMPTZ,
  "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

/** Records a migration as applied, row for row as Prisma does. */
export async function recordApplied(client: pg.Client, file: MigrationFile, logs: string | null = null): Promise<void> {
  await client.query(
    `INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at, finished_at, applied_steps_count)
     VALUES ($1, $2, $3, $4, now(), clock_timestamp(), 1)`,
    [randomUUID(), file.checksum, file.name, logs],
  );
}

export interface History {
  applied: Map<string, { checksum: string; finishedAt: Date }>;
  /** A migration Prisma recorded as started and never finished. */
  unfinished: string | null;
}

/** The migrations the database records as applied, and one that started and never finished. */
export async function readHistory(client: pg.Client): Promise<History> {
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
