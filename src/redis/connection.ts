import type { Writable } from 'node:stream';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { RedisTarget } from '../config/env.js';
import { ConfigError } from '../config/settings.js';
import { ioredis } from '../deps/ioredis.js';

/** A connection to the fleet's Redis: one server, or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * Holds a socket's writes until the current turn of the event loop ends,
 * then sends them in one system call. ioredis writes each command as it is
 * issued: a worker finishing a batch of 40 jobs made 40 writes to Redis,
 * each a system call (and on a local connection the kernel does much of the
 * receiving side's work in the sender's call). Coalesced, both the worker
 * and Redis spend less CPU per job (figures: docs/journal). Order and
 * replies are untouched: the commands go out in the order given, within the
 * same tick.
 */
function coalesceWrites(stream: Writable): void {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork();
  };
  stream.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as Writable['write'];
}

/** Every socket the connection opens, its reconnects' included, coalesces its writes. */
function coalesceEachSocket(redis: Redis): Redis {
  redis.on('connect', () => coalesceWrites(redis.stream));
  return redis;
}

function connect(target: RedisTarget, options: RedisOptions): RedisClient {
  const { cluster } = target;
  if (!cluster) return coalesceEachSocket(new ioredis.Redis(target.url, options));
  const { enableOfflineQueue, lazyConnect, retryStrategy, ...perNode } = options;
  const clusterOptions: ClusterOptions = {
    enableOfflineQueue,
    lazyConnect,
    clusterRetryStrategy: retryStrategy ? (attempt) => retryStrategy(attempt) : undefined,
    // A failover takes a node timeout or two: commands wait for the new
    // master instead of failing at the first refused connection.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    redisOptions: { ...perNode, password: cluster.password, tls: cluster.tls ? {} : undefined },
  };
  const client = new ioredis.Cluster(cluster.nodes, clusterOptions);
  client.on('+node', coalesceEachSocket);
  return client;
}

/**
 * Workers block on Redis and must ride out reconnects: BullMQ requires
 * `maxRetriesPerRequest: null` on their connections.
 */
export function workerConnection(target: RedisTarget): RedisClient {
  return connect(target, { maxRetriesPerRequest: null, connectionName: 'tys-worker' });
}

/**
 * Producers and the CLI must fail fast when Redis is down instead of waiting
 * for it: the first connect is made, and fails, in connectProducer, and a
 * dropped connection is tried again three times over about a second. The
 * commands issued during those tries wait for them (offline queue on), so a
 * blip of the connection does not abort an enqueue of a million rows; once
 * the tries are spent they fail.
 */
export function producerConnection(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  const redis = connect(target, {
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => (attempt > 3 ? null : 200 * attempt),
    connectionName: 'tys-producer',
    lazyConnect: true,
    ...options,
  });
  // Without a listener ioredis prints each failed connect with a stack; the
  // command that needs Redis reports the failure in one line instead.
  redis.on('error', (error: Error) => lastErrors.set(redis, error));
  return redis;
}

const lastErrors = new WeakMap<RedisClient, Error>();

/**
 * The run bookkeeping of a long-running process (outcomes, counters,
 * schedules). Unlike a producer's, it waits out Redis being away, at start
 * as later: a worker started while Redis restarts, or that lives through a
 * restart, goes on recording what it does once Redis is back.
 */
export function bookkeepingConnection(target: RedisTarget): RedisClient {
  const redis = connect(target, {
    enableOfflineQueue: true,
    maxRetriesPerRequest: 20,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => Math.min(200 * attempt, 2_000),
    connectionName: 'tys-bookkeeping',
  });
  // Outages surface as failed commands, with their own handling; the
  // connection's error events only repeat them.
  redis.on('error', () => undefined);
  return redis;
}

/** Resolves once the connection is ready; `onWait` is told once if that takes more than a second. */
export async function untilReady(redis: RedisClient, onWait: () => void): Promise<void> {
  if (redis.status === 'ready') return;
  const slow = setTimeout(onWait, 1_000).unref();
  await new Promise((resolve) => redis.once('ready', resolve));
  clearTimeout(slow);
}

/** Where the Redis is, for messages: host and port, or the cluster's seed nodes; never a password. */
export function redisAddress(target: RedisTarget): string {
  if (target.cluster) return `cluster ${target.cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',')}`;
  const url = new URL(target.url);
  return `${url.hostname}:${url.port || 6379}`;
}

/** The database number a single Redis's URL names (redis://host:port/3); 0 when it names none. */
export function redisDatabase(target: RedisTarget): number {
  return Number(new URL(target.url).pathname.slice(1) || 0);
}

/**
 * Makes sure the connection works on the database its URL names. ioredis
 * answers a SELECT the server refuses (a number past its `databases`) with
 * an error event and goes on in db 0, where another fleet's keys may be:
 * the database is selected again here, and a refusal is a setting's error.
 */
export async function checkDatabase(redis: RedisClient, target: RedisTarget): Promise<void> {
  const db = target.cluster ? 0 : redisDatabase(target);
  if (db === 0 || !(redis instanceof ioredis.Redis)) return;
  try {
    await redis.select(db);
  } catch (error) {
    if (!/DB index is out of range/i.test((error as Error).message)) throw error;
    // CONFIG may be refused (managed services): the count is a courtesy.
    const count = await redis.config('GET', 'databases').then(
      (reply) => (reply as string[])[1],
      () => undefined,
    );
    throw new ConfigError(`REDIS_URL: redis db ${db} does not exist on ${redisAddress(target)}${count ? ` (it has ${count})` : ''}`);
  }
}

/** Connects a lazy producer connection, naming Redis in the error when it is unreachable. */
export async function connectProducer(redis: RedisClient, target: RedisTarget): Promise<RedisClient> {
  if (redis.status === 'wait') {
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      const cause = lastErrors.get(redis) ?? (error as Error);
      throw new Error(`cannot reach Redis at ${redisAddress(target)}: ${cause.message}`, { cause: error });
    }
  }
  return redis;
}
