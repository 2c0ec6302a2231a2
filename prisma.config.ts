import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { PrismaPg } from '@prisma/adapter-pg';
import { databaseUrl } from './src/config/database-url.js';

// The schema's datasource reads DATABASE_URL; without it the CLI falls back
// to downloading a native engine, so the default is filled in here.
process.env.DATABASE_URL = databaseUrl();

// The driver adapter lets the CLI run its bundled WebAssembly schema engine:
// no native engine download, so migrate works on machines without network.
export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', 'schema.prisma'),
  migrations: { path: path.join('prisma', 'migrations') },
  // A short idle timeout lets the CLI exit as soon as it is done instead of
  // waiting for the pool's default 10 s.
  adapter: () => Promise.resolve(new PrismaPg({ connectionString: databaseUrl(), idleTimeoutMillis: 50 })),
});
