import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { deployMigrations } from '../../src/db/migrate/deploy.js';
import { flushPrefix } from './redis-keys.js';
import { serverUrl, withClient } from './server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
    /** Every queue prefix of this run starts with it; the teardown deletes what is left under it. */
    prefixStem: string;
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
  const prefixStem = `tys-test-${randomBytes(4).toString('hex')}`;
  project.provide('prefixStem', prefixStem);
  const dropTemplate = () => withClient((client) => client.query(`DROP DATABASE IF EXISTS "${TEMPLATE_DATABASE}" WITH (FORCE)`));
  await dropTemplate();
  await deployMigrations(serverUrl(TEMPLATE_DATABASE), { createDatabase: true });
  return async () => {
    await dropTemplate();
    // A process a test stopped can still write a key after its file flushed
    // its prefix: nothing of the run stays in the shared Redis.
    await flushPrefix(prefixStem, '-*');
  };
}
