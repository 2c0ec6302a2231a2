import { z } from 'zod';
import { DEFAULT_DATABASE_URL } from './database-url.js';
import { ConfigError, optional, readSettings, textSetting, url } from './settings.js';

export { ConfigError };

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

const PREFIX_PATTERN = /^[A-Za-z0-9_{}.-]{1,64}$/;

const FLEET_SETTINGS = {
  DATABASE_URL: optional(url(['postgres:', 'postgresql:'])),
  REDIS_URL: optional(
    url(['redis:', 'rediss:']).refine((text) => /^\/?\d*$/.test(new URL(text).pathname), {
      message: 'must name its database as a number (redis://host:port/3)',
    }),
  ),
  TYS_QUEUE_PREFIX: optional(textSetting('must be 1-64 letters, digits, _ . - { } and no colon', (text) => (PREFIX_PATTERN.test(text) ? text : undefined))),
} satisfies z.ZodRawShape;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): FleetConfig {
  const settings = readSettings(FLEET_SETTINGS, env);
  return {
    databaseUrl: settings.DATABASE_URL ?? DEFAULT_DATABASE_URL,
    redisUrl: settings.REDIS_URL ?? 'redis://127.0.0.1:6379',
    queuePrefix: settings.TYS_QUEUE_PREFIX ?? 'tys',
  };
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
