import { databaseUrl } from './database-url.js';

/** Everything the fleet reads from the environment, validated once at start. */
export interface FleetConfig {
  /** Postgres connection string. Default: the local server, database `tys`. */
  databaseUrl: string;
  /** Redis connection string. Default: redis://127.0.0.1:6379. */
  redisUrl: string;
  /**
   * Prefix of every BullMQ key. Default `tys`. Wrap it in braces, such as
   * `{tys}`, on Redis Cluster so that all keys of a queue share a slot.
   */
  queuePrefix: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const PREFIX_PATTERN = /^[A-Za-z0-9_{}.-]{1,64}$/;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): FleetConfig {
  const config: FleetConfig = {
    databaseUrl: databaseUrl(env),
    redisUrl: env.REDIS_URL && env.REDIS_URL.length > 0 ? env.REDIS_URL : 'redis://127.0.0.1:6379',
    queuePrefix: env.TYS_QUEUE_PREFIX && env.TYS_QUEUE_PREFIX.length > 0 ? env.TYS_QUEUE_PREFIX : 'tys',
  };
  checkUrl('DATABASE_URL', config.databaseUrl, ['postgres:', 'postgresql:']);
  checkUrl('REDIS_URL', config.redisUrl, ['redis:', 'rediss:']);
  if (!/^\/?\d*$/.test(new URL(config.redisUrl).pathname)) {
    throw new ConfigError(`REDIS_URL must name its database as a number (redis://host:port/3), got ${redactUrl(config.redisUrl)}`);
  }
  if (!PREFIX_PATTERN.test(config.queuePrefix)) {
    throw new ConfigError(`TYS_QUEUE_PREFIX "${config.queuePrefix}" is invalid: use 1-64 letters, digits, _ . - { } and no colon`);
  }
  return config;
}

function checkUrl(name: string, value: string, protocols: string[]): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} is not a valid URL (${redactUrl(value)})`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}, got ${url.protocol}//`);
  }
}

/** A connection string fit for logs and error messages: the password is replaced. */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '<unparseable URL>';
  }
}
