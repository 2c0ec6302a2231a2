/** Default: the local Postgres on 127.0.0.1 (trust auth), database `tys`. */
export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/tys';

export function databaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.DATABASE_URL && env.DATABASE_URL.length > 0 ? env.DATABASE_URL : DEFAULT_DATABASE_URL;
}
