import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../project-root.js';

export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'prisma', 'migrations');

export interface MigrationFile {
  name: string;
  /** sha256 of migration.sql, as Prisma records it in _prisma_migrations.checksum. */
  checksum: string;
  hasDown: boolean;
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
