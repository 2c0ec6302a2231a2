import pg from 'pg';
import { deployMigrations } from '../../src/db/migrations.js';
import { TEMPLATE_DATABASE, adminUrl, serverUrl } from './databases.js';

/**
 * Migrates one template database per test run; each test file then clones
 * it (CREATE DATABASE ... TEMPLATE), which takes milliseconds.
 */
export default async function setup(): Promise<() => Promise<void>> {
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
