import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listMigrationFiles, MIGRATIONS_DIR, readMigrationSql } from '../src/db/migrate/files.js';
import { dropsOf } from '../src/db/migrate/revert.js';
import { dropsSales } from '../src/db/sales-archive.js';
import { PROJECT_ROOT } from '../src/project-root.js';

const SQUAWK = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'squawk');

/** Runs Squawk with the project's .squawk.toml; resolves to its exit status and report. */
function squawk(files: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(SQUAWK, ['--config', path.join(PROJECT_ROOT, '.squawk.toml'), '--reporter', 'gcc', ...files], { cwd: PROJECT_ROOT }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

describe('migration SQL lint (Squawk)', () => {
  it('finds nothing unsafe in any migration', async () => {
    const files = listMigrationFiles().map((f) => path.join(MIGRATIONS_DIR, f.name, 'migration.sql'));
    expect(files.length).toBeGreaterThan(7);
    const result = await squawk(files);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('is armed: a constraint added without NOT VALID on a live table is reported', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tys-squawk-'));
    try {
      const file = path.join(dir, 'migration.sql');
      await writeFile(file, `ALTER TABLE "Investment" ADD CONSTRAINT "x_positive" CHECK ("totalQuantity" > 0);\n`);
      const result = await squawk([file]);
      expect(result.code).toBe(1);
      expect(result.output).toMatch(/constraint-missing-not-valid/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('what a rollback drops, read from its down.sql', () => {
  it('names the one rollback that would take sales with it, by what it drops', () => {
    const takesSales = listMigrationFiles()
      .filter((file) => file.hasDown && dropsSales(dropsOf(readMigrationSql(file.name, 'down'))))
      .map((file) => file.name);
    expect(takesSales).toEqual(['20251012000200_phase2_tax_reporting']);
    // A column of a sales table is not the table.
    expect(dropsSales(dropsOf('ALTER TABLE "SaleTransaction" DROP COLUMN "note";'))).toBe(false);
    expect(dropsSales(dropsOf('DROP TABLE IF EXISTS "TaxLotAllocation";'))).toBe(true);
  });
});
