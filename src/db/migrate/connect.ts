import pg from 'pg';
import { redactUrl } from '../../config/env.js';
import { MigrationError } from '../migration-error.js';
import { serverVersionProblem } from '../server-version.js';

export interface ConnectOptions {
  /** Create the database when the server does not have it. Default false: a mistyped name is an error, not a new database. */
  createDatabase?: boolean;
}

/** A connection to the database of the URL, with an error that names a missing database and how to create it. */
export async function connectDatabase(databaseUrl: string, options: ConnectOptions = {}): Promise<pg.Client> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new MigrationError(`DATABASE_URL names no database (${redactUrl(databaseUrl)})`);
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'tys migrate' });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    if ((error as { code?: string }).code !== '3D000') throw error;
    if (!options.createDatabase) {
      throw new MigrationError(`database "${name}" does not exist on ${url.hostname}:${url.port || 5432} (use --create-database to create it)`);
    }
    await createDatabase(databaseUrl, name);
    return connectDatabase(databaseUrl);
  }
  try {
    const { rows } = await client.query<{ num: number; version: string }>(
      `SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version`,
    );
    const problem = serverVersionProblem(rows[0]!.num, rows[0]!.version);
    if (problem) throw new MigrationError(problem);
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

async function createDatabase(databaseUrl: string, name: string): Promise<void> {
  const maintenance = new URL(databaseUrl);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({ connectionString: maintenance.toString() });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } catch (error) {
    // Another process created it meanwhile.
    if ((error as { code?: string }).code !== '42P04') throw error;
  } finally {
    await client.end();
  }
}
