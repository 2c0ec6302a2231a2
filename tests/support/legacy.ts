import { readMigrationSql } from '../../src/db/migrate/files.js';
import type { PrismaClient } from '../../src/db/prisma.js';

/** The migrations that add CHECK constraints, in the order they were applied. */
const CHECK_MIGRATIONS = ['20251012000400_phase4_data_constraints', '20251012000700_lot_cost_basis_constraint'];

/**
 * Writes rows as the MVP could, before the CHECK constraints: they are
 * dropped for the duration (their migrations' own down.sql) and added back
 * NOT VALID (their migration.sql), all in one transaction.
 */
export async function writeLegacyRows(prisma: PrismaClient, statements: string[]): Promise<void> {
  await prisma.$transaction(async (tx) => {
    for (const name of [...CHECK_MIGRATIONS].reverse()) await tx.$executeRawUnsafe(readMigrationSql(name, 'down'));
    for (const statement of statements) await tx.$executeRawUnsafe(statement);
    for (const name of CHECK_MIGRATIONS) await tx.$executeRawUnsafe(readMigrationSql(name, 'migration'));
  });
}
