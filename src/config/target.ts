import type { FleetConfig } from './env.js';

/** What a command works on, fit for output: addresses and names, never a password. */
export interface Target {
  postgres: { host: string; port: number; database: string };
  /** One Redis, or the seed nodes (host:port) of a Redis Cluster. */
  redis: { host: string; port: number; db: number } | { cluster: string[] };
  queuePrefix: string;
}

export function describeTarget(config: FleetConfig): Target {
  const pg = new URL(config.databaseUrl);
  const redis = new URL(config.redisUrl);
  const cluster = config.redisCluster?.nodes.map(({ host, port }) => `${host}:${port}`);
  return {
    postgres: {
      host: pg.hostname || '127.0.0.1',
      port: Number(pg.port || 5432),
      database: decodeURIComponent(pg.pathname.replace(/^\//, '')),
    },
    redis: cluster
      ? { cluster }
      : { host: redis.hostname || '127.0.0.1', port: Number(redis.port || 6379), db: Number(redis.pathname.replace(/^\//, '') || 0) },
    queuePrefix: config.queuePrefix,
  };
}

export function postgresAddress(target: Target): string {
  return `${target.postgres.host}:${target.postgres.port}`;
}

/** The Redis of a target, for messages: `127.0.0.1:6379 db 0` or `cluster a:1,b:2`. */
export function redisLine(target: Target): string {
  const { redis } = target;
  return 'cluster' in redis ? `cluster ${redis.cluster.join(',')}` : `${redis.host}:${redis.port} db ${redis.db}`;
}

export function targetLine(target: Target): string {
  return `target: postgres ${postgresAddress(target)} database "${target.postgres.database}", redis ${redisLine(target)}, queue prefix "${target.queuePrefix}"`;
}
