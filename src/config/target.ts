import type { FleetConfig } from './env.js';

/** What a command works on, fit for output: addresses and names, never a password. */
export interface Target {
  postgres: { host: string; port: number; database: string };
  redis: { host: string; port: number; db: number };
  queuePrefix: string;
}

export function describeTarget(config: FleetConfig): Target {
  const pg = new URL(config.databaseUrl);
  const redis = new URL(config.redisUrl);
  return {
    postgres: {
      host: pg.hostname || '127.0.0.1',
      port: Number(pg.port || 5432),
      database: decodeURIComponent(pg.pathname.replace(/^\//, '')),
    },
    redis: { host: redis.hostname || '127.0.0.1', port: Number(redis.port || 6379), db: Number(redis.pathname.replace(/^\//, '') || 0) },
    queuePrefix: config.queuePrefix,
  };
}

export function postgresAddress(target: Target): string {
  return `${target.postgres.host}:${target.postgres.port}`;
}

export function targetLine(target: Target): string {
  const { postgres, redis } = target;
  return (
    `target: postgres ${postgresAddress(target)} database "${postgres.database}", ` +
    `redis ${redis.host}:${redis.port} db ${redis.db}, queue prefix "${target.queuePrefix}"`
  );
}
