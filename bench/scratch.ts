import type { Redis } from 'ioredis';
import pg from 'pg';
import { deployMigrations } from '../src/db/migrate/deploy.js';
import { createPrisma } from '../src/db/prisma.js';
import { seedMvp } from '../src/demo/seed.js';

/**
 * Where a benchmark works: a scratch database of its own on the server of
 * BENCH_DATABASE_URL (or DATABASE_URL), and a key prefix of its own in the
 * Redis of REDIS_URL. The server and the Redis are shared: a benchmark
 * removes both once measured, and nothing else.
 */
export function scratchTarget(database: string, prefix: string) {
  const server = new URL(process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres');
  const dbUrl = new URL(server.toString());
  dbUrl.pathname = `/${database}`;
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  return {
    server,
    dbUrl,
    redisUrl,
    prefix,
    /** The environment of a `tys` process (or the fleet's scripts) working there. */
    env: { ...process.env, DATABASE_URL: dbUrl.toString(), REDIS_URL: redisUrl, TYS_QUEUE_PREFIX: prefix, TYS_LOG_LEVEL: 'warn' },
    /** Drops the scratch database, whoever is connected to it. */
    async dropDatabase(): Promise<void> {
      const admin = new pg.Client({ connectionString: server.toString() });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
    /** A fresh scratch database, migrated, with `investments` MVP investments seeded (no lots). */
    async seed(investments: number): Promise<void> {
      await this.dropDatabase();
      await deployMigrations(dbUrl.toString(), { createDatabase: true });
      const prisma = createPrisma(dbUrl.toString());
      try {
        await seedMvp(prisma, { investments });
      } finally {
        await prisma.$disconnect();
      }
    },
    /** Deletes every key under the prefix. */
    async clearRedis(redis: Redis): Promise<void> {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
    },
  };
}
