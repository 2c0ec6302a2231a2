import { connectDatabase } from '../db/migrate/connect.js';
import { listMigrationFiles, MIGRATIONS_DIR, readMigrationSql } from '../db/migrate/files.js';
import { migrationStatus } from '../db/migrate/status.js';
import type { VerifyReport } from './family.js';

/** Names of the CHECK constraints a migration adds (`ADD CONSTRAINT "name" CHECK ...`). */
export function checkConstraintsOf(sql: string): string[] {
  return [...sql.matchAll(/ADD\s+CONSTRAINT\s+"([^"]+)"\s+CHECK\b/gi)].map((match) => match[1]!);
}

/**
 * The schema as the migrations say it should be: every migration applied
 * and unmodified since, and every CHECK constraint they add present and
 * validated (a NOT VALID one still lets old rows break it). Reads only.
 */
export async function verifySchema(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<VerifyReport> {
  const status = await migrationStatus(databaseUrl, dir);
  const problems: { id: string; problem: string }[] = [];
  if (status.notAdopted) problems.push({ id: status.migrations[0]!.name, problem: 'the MVP database is not adopted yet (tys migrate)' });
  for (const migration of status.migrations) {
    if (!migration.appliedAt) problems.push({ id: migration.name, problem: 'not applied (tys migrate)' });
    else if (migration.modified) problems.push({ id: migration.name, problem: 'applied, then its migration.sql changed: the database may not match the file' });
  }
  const expected = listMigrationFiles(dir)
    .filter((file) => status.migrations.find((m) => m.name === file.name)?.appliedAt)
    .flatMap((file) => checkConstraintsOf(readMigrationSql(file.name, 'migration', dir)).map((name) => ({ name, migration: file.name })));
  const client = await connectDatabase(databaseUrl);
  try {
    const { rows } = await client.query<{ conname: string; convalidated: boolean }>(
      `SELECT conname, convalidated FROM pg_constraint WHERE contype = 'c' AND conname = ANY($1::text[])`,
      [expected.map((c) => c.name)],
    );
    const present = new Map(rows.map((row) => [row.conname, row.convalidated]));
    for (const { name, migration } of expected) {
      if (!present.has(name)) problems.push({ id: name, problem: `CHECK constraint of ${migration} is missing (dropped by hand?)` });
      else if (!present.get(name))
        problems.push({ id: name, problem: 'CHECK constraint is NOT VALID yet: fix the rows (tys enqueue constraints), then tys validate' });
    }
  } finally {
    await client.end();
  }
  return { ok: problems.length === 0, checked: status.migrations.length + expected.length, problems, problemCount: problems.length };
}
