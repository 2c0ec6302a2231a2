import pg from 'pg';

/** Tests use the server of TEST_DATABASE_URL (default the local one) and make their own databases on it. */
const BASE_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export function serverUrl(database: string): string {
  const url = new URL(BASE_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

export function adminUrl(): string {
  return serverUrl('postgres');
}

/** Runs `work` on a connection of its own to `url` (default the maintenance database), closed afterwards. */
export async function withClient<T>(work: (client: pg.Client) => Promise<T>, url = adminUrl()): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
