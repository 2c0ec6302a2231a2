import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { bookkeepingConnection, workerConnection, type RedisClient } from '../src/redis/connection.js';
import { flushPrefix, REDIS_URL } from './support/redis-keys.js';
import { runTys } from './support/processes.js';
import { countWrites } from './support/socket-writes.js';

async function ready(redis: RedisClient): Promise<void> {
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
}

describe('Redis connections', () => {
  const opened: RedisClient[] = [];
  const prefix = `tys-conn-${randomBytes(3).toString('hex')}`;
  afterEach(async () => {
    for (const redis of opened.splice(0)) redis.disconnect();
    await flushPrefix(prefix);
  });

  it('send the commands of one turn of the event loop in one write, in order, with each reply to its command, after a reconnect too', async () => {
    const redis = workerConnection({ url: REDIS_URL });
    opened.push(redis);
    await ready(redis);
    if (!('stream' in redis)) throw new Error('expected a single-server connection');
    const list = `${prefix}:order`;

    const first = countWrites(redis.stream);
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => redis.rpush(list, String(i))));
    // 50 commands issued together: one write (two if a write was already under way).
    expect(first.count).toBeGreaterThanOrEqual(1);
    expect(first.count).toBeLessThanOrEqual(2);
    expect(replies).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(await redis.lrange(list, 0, -1)).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));

    // Commands in separate turns still go out at once, each in its own write.
    const separate = countWrites(redis.stream);
    for (let i = 0; i < 5; i += 1) expect(await redis.llen(list)).toBe(50);
    expect(separate.count).toBe(5);

    // A reconnect opens a new socket: it coalesces too.
    const before = redis.stream;
    const reconnected = new Promise((resolve) => redis.once('ready', resolve));
    redis.disconnect(true);
    await reconnected;
    expect(redis.stream).not.toBe(before);
    const afterReconnect = countWrites(redis.stream);
    const counts = await Promise.all(Array.from({ length: 20 }, () => redis.incr(`${prefix}:n`)));
    expect(afterReconnect.count).toBeLessThanOrEqual(2);
    expect(counts).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('keep an error reply to its own command among others sent in the same write', async () => {
    const redis = bookkeepingConnection({ url: REDIS_URL });
    opened.push(redis);
    await ready(redis);
    const key = `${prefix}:text`;
    await redis.set(key, 'not a number');
    const results = await Promise.allSettled([redis.incr(`${prefix}:a`), redis.incr(key), redis.incr(`${prefix}:a`)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toMatch(/not an integer/);
    expect((results[2] as PromiseFulfilledResult<number>).value).toBe(2);
  });

  it('a database the server does not have is refused before anything is read or written, by every command and process, exit 2', async () => {
    // REDIS_URL's host, a database past the server's count (16 by default; asked, so a server set otherwise is covered).
    const url = new URL(REDIS_URL);
    const probe = new Redis(REDIS_URL);
    const count = Number(((await probe.config('GET', 'databases')) as string[])[1]);
    probe.disconnect();
    url.pathname = `/${count + 83}`;
    const env = { ...process.env, REDIS_URL: url.toString(), TYS_QUEUE_PREFIX: prefix, TYS_LOG_LEVEL: 'warn' };
    for (const args of [['status'], ['schedule', 'apply'], ['verify', 'lots'], ['worker', '--families', 'lots']]) {
      const result = await runTys(args, env);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.trim(), args.join(' ')).toBe(
        `error: REDIS_URL: redis db ${count + 83} does not exist on ${url.hostname}:${url.port || 6379} (it has ${count})`,
      );
    }
    // Nothing went to db 0 instead (schedule apply used to install its schedulers there).
    const db0 = new Redis(REDIS_URL);
    expect(await db0.keys(`${prefix}*`)).toEqual([]);
    db0.disconnect();
    // A cluster has only db 0.
    const cluster = await runTys(['status'], { ...env, REDIS_URL: 'redis://127.0.0.1:6379/3', REDIS_CLUSTER_NODES: '127.0.0.1:7000' });
    expect(cluster.code).toBe(2);
    expect(cluster.stderr.trim()).toBe('error: REDIS_URL names a database, but REDIS_CLUSTER_NODES is set and a Redis Cluster has only db 0');
  });
});
