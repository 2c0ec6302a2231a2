import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { deployMigrations } from '../../src/db/migrations.js';
import { adminUrl, serverUrl } from './server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
  }
}

/**
 * Migrates one template database per test run; each test file then clones
 * it (CREATE DATABASE ... TEMPLATE), which takes milliseconds. The name is
 * the run's own, so two runs against one server do not disturb each other.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const TEMPLATE_DATABASE = `tys_test_template_${randomBytes(4).toString('hex')}`;
  project.provide('templateDatabase', TEMPLATE_DATABASE);
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${TEMPLATE_DATABASE}" WITH (FORCE)`);
  await admin.end();
  await deployMigrations(serverUrl(TEMPLATE_DATABASE));
  return async () => {
    const client = new pg.Client({ connectionString: adminUrl() });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${TEMPLATE_DATABASE}" WITH (FORCE)`);
    await client.end();
  };
}
