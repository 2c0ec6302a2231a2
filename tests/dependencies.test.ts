import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../src/project-root.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';

const installed = (name: string) =>
  (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
const line = (version: string) => version.split('.').slice(0, 2).join('.');

describe('dependencies of one family', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('keeps the Prisma CLI on the version line of @prisma/client', () => {
    expect(line(installed('prisma'))).toBe(line(installed('@prisma/client')));
  });

  // The one family member off its client's line, on purpose: @prisma/adapter-pg 6.19 cannot read a column of
  // Postgres's `name` type ("Failed to deserialize column of type 'name'"), which the fleet's catalog queries
  // return (pg_constraint.conname, pg_stat_user_tables.relname: constraint validation, table statistics). The
  // 7 line reads it and speaks the driver-adapter protocol the 6.19 client uses. Should either move, this says so.
  it("runs @prisma/adapter-pg a major ahead of @prisma/client, for the catalog's name columns, which it reads", async () => {
    expect(Number(installed('@prisma/adapter-pg').split('.')[0])).toBe(Number(installed('@prisma/client').split('.')[0]) + 1);
    const rows = await db.prisma.$queryRaw<{ conname: string; relname: string }[]>`
      SELECT c.conname, s.relname FROM pg_constraint c JOIN pg_stat_user_tables s ON s.relid = c.conrelid LIMIT 1`;
    expect(rows).toHaveLength(1);
    expect(typeof rows[0]!.conname).toBe('string');
    expect(typeof rows[0]!.relname).toBe('string');
  });
});
