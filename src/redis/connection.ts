import { Redis, type RedisOptions } from 'ioredis';

/**
 * Workers block on Redis and must ride out reconnects: BullMQ requires
 * `maxRetriesPerRequest: null` on their connections.
 */
export function workerConnection(redisUrl: string): Redis {
  return new Redis(redisUrl, { maxRetriesPerRequest: null, connectionName: 'tys-worker' });
}

/**
 * Producers and the CLI must fail fast when Redis is down instead of queueing
 * commands in memory: offline queue off, few retries.
 */
export function producerConnection(redisUrl: string, options: RedisOptions = {}): Redis {
  const redis = new Redis(redisUrl, {
    enableOfflineQueue: false,
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

const lastErrors = new WeakMap<Redis, Error>();

/**
 * The run bookkeeping of a long-running process (outcomes, counters,
 * schedules). Unlike a producer's, it waits out Redis being away, at start
 * as later: a worker started while Redis restarts, or that lives through a
 * restart, goes on recording what it does once Redis is back.
 */
export function bookkeepingConnection(redisUrl: string): Redis {
  const redis = new Redis(redisUrl, {
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
export async function untilReady(redis: Redis, onWait: () => void): Promise<void> {
  if (redis.status === 'ready') return;
  const slow = setTimeout(onWait, 1_000).unref();
  await new Promise((resolve) => redis.once('ready', resolve));
  clearTimeout(slow);
}

/** Host and port of a Redis URL, for messages: never its password. */
export function redisAddress(redisUrl: string): string {
  const url = new URL(redisUrl);
  return `${url.hostname}:${url.port || 6379}`;
}

/** Connects a lazy producer connection, naming Redis in the error when it is unreachable. */
export async function connectProducer(redis: Redis, redisUrl: string): Promise<Redis> {
  if (redis.status === 'wait') {
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      const cause = lastErrors.get(redis) ?? (error as Error);
      throw new Error(`cannot reach Redis at ${redisAddress(redisUrl)}: ${cause.message}`, { cause: error });
    }
  }
  return redis;
}
