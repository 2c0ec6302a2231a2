import type pg from 'pg';
import { MigrationError } from '../migration-error.js';
import { createIndexStatement, describeDifference, diffSchemas, snapshotOfSql, snapshotSchema, type SchemaDifference } from '../schema-diff.js';
import { withLockRetries, type LockLimits } from '../lock-retry.js';
import { lockPlan } from '../lock-plan.js';
import { readMigrationSql, type MigrationFile } from './files.js';
import { HISTORY_TABLE_DDL, recordApplied } from './history.js';

/** The database has the MVP tables but not exactly the baseline's schema: nothing was changed. */
export class AdoptionRefused extends MigrationError {
  override name = 'AdoptionRefused';
  constructor(readonly differences: string[]) {
    super(`the database's schema differs from the baseline in ${differences.length} ${differences.length === 1 ? 'place' : 'places'}; nothing was changed`);
  }
}

export interface AdoptOptions extends Partial<LockLimits> {
  /**
   * Adopt a database whose MVP schema differs from the baseline (`--baseline`):
   * create the baseline's missing indexes, record the baseline as applied and
   * go on. Default false: such a database is refused, unchanged.
   */
  adoptAnyway?: boolean;
  /** Told about each step that is not instant: adoption, lock waits. */
  onProgress?: (line: string) => void;
}

/** How a database was adopted: where its schema differed from the baseline, and the indexes created for it. */
export interface Adoption {
  differences: string[];
  createdIndexes: string[];
}

/**
 * Adoption of a database that has the baseline's tables but no history. Its
 * schema is compared with what the baseline migration creates; when they
 * differ, nothing changes unless the operator said to adopt anyway.
 */
export async function adopt(client: pg.Client, databaseUrl: string, baseline: MigrationFile, dir: string, options: AdoptOptions): Promise<Adoption | null> {
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
export async function compareWithBaseline(client: pg.Client, baselineSql: string): Promise<SchemaDifference[] | null> {
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
