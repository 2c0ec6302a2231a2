import { NICE_MAX, parseNice } from '../../bin/priority.js';
import { DEFAULT_DATABASE_URL } from './database-url.js';
import { ConfigError, duration, integer, readSettings, refine, textSetting, url, type SettingsShape } from './settings.js';

export { ConfigError };

/** Everything the fleet reads from the environment, validated once at start. */
/**
 * Where the fleet's Redis is. `cluster` set: a Redis Cluster reached through
 * its seed nodes (the password and TLS apply to every node); `url` is then
 * unused.
 */
export interface RedisTarget {
  url: string;
  cluster?: { nodes: { host: string; port: number }[]; password?: string; tls?: boolean } | null;
}

export interface FleetConfig {
  /** Postgres connection string. Default: the local server, database `tys`. */
  databaseUrl: string;
  /** Redis connection string. Default: redis://127.0.0.1:6379. Unused when `redisCluster` is set. */
  redisUrl: string;
  /**
   * A Redis Cluster instead (REDIS_CLUSTER_NODES, REDIS_PASSWORD, REDIS_TLS).
   * Default none: the one Redis of `redisUrl`.
   */
  redisCluster?: RedisTarget['cluster'];
  /**
   * Prefix of every key of the fleet. Default `tys`. On a Redis Cluster the
   * fleet adds the hash tags itself (see keyLayout): braces here are dropped.
   */
  queuePrefix: string;
  /**
   * Queues each family's jobs are spread over: TYS_SHARDS for every family,
   * TYS_SHARDS_<FAMILY> (TYS_SHARDS_CORPORATE_ACTIONS) for one. Default: one
   * on a single Redis, one per master on a cluster; the first process to use
   * a family records its count in Redis and the others follow it.
   */
  shards?: { all?: number; byFamily: Record<string, number> };
  /**
   * Niceness of the fleet's processes (TYS_NICE, 0 to 19). Default 0. On a
   * machine the fleet shares with Postgres or the application, a nice fleet
   * leaves them the CPU first: in the rehearsal on two shared cores, 19 halved
   * the application's p99 during a lots run at the same pace. The `tys`
   * launcher runs a niced command in a session of its own, since the kernel's
   * autogroups share the CPU between sessions whatever the niceness
   * (bin/priority.js).
   */
  nice?: number;
  /**
   * How long a run is held for the `tys enqueue` adding its jobs without
   * word from it (TYS_PRODUCER_LEASE, a duration of at least 1s). Default
   * 60s. Should the command die without sealing its run, the workers seal it
   * with the jobs it added once the hold lapses.
   */
  producerLeaseMs?: number;
}

/** The Redis a configuration points at. */
export function redisTarget(config: FleetConfig): RedisTarget {
  return { url: config.redisUrl, cluster: config.redisCluster ?? null };
}

const NODE_PATTERN = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/;

function parseNodes(text: string): { host: string; port: number }[] | undefined {
  const nodes = text.split(',').map((part) => NODE_PATTERN.exec(part.trim()));
  if (nodes.some((match) => !match || Number(match[2]) < 1 || Number(match[2]) > 65_535)) return undefined;
  return nodes.map((match) => ({ host: match![1]!.replace(/^\[|\]$/g, ''), port: Number(match![2]) }));
}

const PREFIX_PATTERN = /^[A-Za-z0-9_{}.-]{1,64}$/;

const FLEET_SETTINGS = {
  // Prisma reads ?schema=NAME as the schema of the application's tables; pg,
  // under the fleet's SQL, ignores it and works on public. Refused rather
  // than let the fleet migrate and change the tables of another schema.
  DATABASE_URL: refine(
    url(['postgres:', 'postgresql:']),
    "must not name a schema other than public (?schema=): the fleet works on the public schema's tables",
    (text) => (new URL(text).searchParams.get('schema') ?? 'public') === 'public',
  ),
  REDIS_URL: refine(url(['redis:', 'rediss:']), 'must name its database as a number (redis://host:port/3)', (text) => /^\/?\d*$/.test(new URL(text).pathname)),
  REDIS_CLUSTER_NODES: textSetting('must be host:port seed nodes separated by commas', parseNodes),
  // Never quoted: it is a secret.
  REDIS_PASSWORD: textSetting('must not be blank', (text) => text || undefined, { quote: false }),
  REDIS_TLS: textSetting('must be 1 or 0', (text) => (text === '1' ? true : text === '0' ? false : undefined)),
  TYS_QUEUE_PREFIX: textSetting('must be 1-64 letters, digits, _ . - { } and no colon', (text) => (PREFIX_PATTERN.test(text) ? text : undefined)),
  TYS_NICE: textSetting(`must be an integer from 0 to ${NICE_MAX}`, parseNice),
  TYS_PRODUCER_LEASE: refine(duration(), 'must be at least 1s', (ms) => ms >= 1_000),
} satisfies SettingsShape;

/** TYS_SHARDS and TYS_SHARDS_<FAMILY>: the family's name in capitals, dashes as underscores. */
function readShards(env: NodeJS.ProcessEnv): FleetConfig['shards'] {
  const names = Object.keys(env).filter((name) => /^TYS_SHARDS(_[A-Z0-9_]+)?$/.test(name) && env[name]?.trim());
  if (names.length === 0) return undefined;
  const counts = readSettings(Object.fromEntries(names.map((name) => [name, integer(1, 64)])), env) as Record<string, number>;
  const byFamily: Record<string, number> = {};
  for (const name of names) if (name !== 'TYS_SHARDS') byFamily[name.slice('TYS_SHARDS_'.length).toLowerCase().replace(/_/g, '-')] = counts[name]!;
  return { ...(counts.TYS_SHARDS ? { all: counts.TYS_SHARDS } : {}), byFamily };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): FleetConfig {
  const settings = readSettings(FLEET_SETTINGS, env);
  const shards = readShards(env);
  const nodes = settings.REDIS_CLUSTER_NODES;
  const db = settings.REDIS_URL ? new URL(settings.REDIS_URL).pathname.slice(1) : '';
  if (nodes && db !== '' && Number(db) !== 0) {
    throw new ConfigError('REDIS_URL names a database, but REDIS_CLUSTER_NODES is set and a Redis Cluster has only db 0');
  }
  if (!nodes && (settings.REDIS_PASSWORD || settings.REDIS_TLS)) {
    throw new ConfigError('REDIS_PASSWORD and REDIS_TLS apply to REDIS_CLUSTER_NODES; for one Redis, put them in REDIS_URL (rediss://:password@host)');
  }
  return {
    databaseUrl: settings.DATABASE_URL ?? DEFAULT_DATABASE_URL,
    redisUrl: settings.REDIS_URL ?? 'redis://127.0.0.1:6379',
    ...(nodes ? { redisCluster: { nodes, password: settings.REDIS_PASSWORD, tls: settings.REDIS_TLS ?? false } } : {}),
    queuePrefix: settings.TYS_QUEUE_PREFIX ?? 'tys',
    ...(shards ? { shards } : {}),
    ...(settings.TYS_NICE ? { nice: settings.TYS_NICE } : {}),
    ...(settings.TYS_PRODUCER_LEASE ? { producerLeaseMs: settings.TYS_PRODUCER_LEASE } : {}),
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
