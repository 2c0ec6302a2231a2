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
  return new Redis(redisUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => (attempt > 3 ? null : 200 * attempt),
    connectionName: 'tys-producer',
    lazyConnect: true,
    ...options,
  });
}

/**
 * The run bookkeeping of a long-running process (outcomes, counters,
 * schedules): fails fast when Redis is absent at start, like a producer, but
 * once connected rides out any later outage, so a Redis restart does not
 * leave a worker that can no longer record what it does.
 */
export function bookkeepingConnection(redisUrl: string): Redis {
  let connectedOnce = false;
  const redis = producerConnection(redisUrl, {
    enableOfflineQueue: true,
    maxRetriesPerRequest: 20,
    connectionName: 'tys-bookkeeping',
    retryStrategy: (attempt) => (connectedOnce ? Math.min(200 * attempt, 2_000) : attempt > 3 ? null : 200 * attempt),
  });
  redis.once('ready', () => (connectedOnce = true));
  // Outages surface as failed commands, with their own handling; the
  // connection's error events only repeat them.
  redis.on('error', () => undefined);
  return redis;
}

/** Connects a lazy producer connection, naming Redis in the error when it is unreachable. */
export async function connectProducer(redis: Redis, redisUrl: string): Promise<Redis> {
  if (redis.status === 'wait') {
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      const host = new URL(redisUrl);
      throw new Error(`cannot reach Redis at ${host.hostname}:${host.port || 6379}: ${(error as Error).message}`);
    }
  }
  return redis;
}
