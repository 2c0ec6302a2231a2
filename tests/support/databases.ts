import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { createPrisma, type PrismaClient } from '../../src/db/prisma.js';
import { serverUrl, withClient } from './server.js';

export interface TestDatabase {
  name: string;
  url: string;
  prisma: PrismaClient;
  drop(): Promise<void>;
}

/** A fresh database for one test file: a clone of the migrated template, or empty. */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const name = `tys_test_${randomBytes(6).toString('hex')}`;
  await withClient((client) =>
    client.query(options.empty ? `CREATE DATABASE "${name}"` : `CREATE DATABASE "${name}" TEMPLATE "${inject('templateDatabase')}"`),
  );
  const url = serverUrl(name);
  const prisma = createPrisma(url, { maxConnections: 20 });
  return {
    name,
    url,
    prisma,
    async drop() {
      await prisma.$disconnect();
      await withClient((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}
