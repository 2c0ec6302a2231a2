import { MigrationError } from '../migration-error.js';
import { withLockRetries } from '../lock-retry.js';
import { lockPlan, newObjectsFirst } from '../lock-plan.js';
import { adopt, type Adoption, type AdoptOptions } from './adopt.js';
import { connectDatabase, type ConnectOptions } from './connect.js';
import { listMigrationFiles, MIGRATIONS_DIR, readMigrationSql } from './files.js';
import { HISTORY_TABLE_DDL, PRISMA_MIGRATE_LOCK, readHistory, recordApplied } from './history.js';

export interface MigrateOptions extends ConnectOptions, AdoptOptions {
  /** Default: the project's prisma/migrations. */
  dir?: string;
  /** The last migration to apply (a phase at a time, as a rehearsal or a cautious operator goes). Default: all. */
  to?: string;
}

export interface DeployResult {
  /** Set when this deploy adopted a database that had the MVP tables and no history. */
  adopted: Adoption | null;
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
