import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MIGRATIONS_DIR } from '../../src/db/migrations.js';
import type { PrismaClient } from '../../src/db/prisma.js';

const PHASE4 = path.join(MIGRATIONS_DIR, '20251012000400_phase4_data_constraints');

/**
 * Writes rows as the MVP could, before phase 4: the constraints are dropped
 * for the duration (phase 4's own down.sql) and added back NOT VALID (its
 * migration.sql), all in one transaction.
 */
export async function writeLegacyRows(prisma: PrismaClient, statements: string[]): Promise<void> {
  const down = readFileSync(path.join(PHASE4, 'down.sql'), 'utf8');
  const up = readFileSync(path.join(PHASE4, 'migration.sql'), 'utf8');
  await prisma.$transaction(async (tx) => {
    await tx.$executeRawUnsafe(down);
    for (const statement of statements) await tx.$executeRawUnsafe(statement);
    await tx.$executeRawUnsafe(up);
  });
}
