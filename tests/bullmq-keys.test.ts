import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { queueKeys } from '../src/redis/bullmq-keys.js';
import { flushPrefix, REDIS_URL, testPrefix } from './support/fleet.js';

/**
 * The fleet reads and writes some of BullMQ's keys itself
 * (src/redis/bullmq-keys.ts). This holds that layout against the installed
 * BullMQ: an upgrade that moves any of it fails here, not in a run.
 */
describe("BullMQ's keys the fleet reads", () => {
  const prefix = testPrefix();
  const redis = new Redis(REDIS_URL);
  const connection = { url: REDIS_URL, maxRetriesPerRequest: null };
  const keys = queueKeys(prefix, 'layout');
  // Made in the test, after the look at an empty prefix: a queue writes its meta key as it connects.
  let queue: Queue | undefined;

  afterAll(async () => {
    await queue?.close();
    redis.disconnect();
    await flushPrefix(prefix);
  });

  it('are where BullMQ keeps a job, its data, the active list and the finished sets', async () => {
    expect(await redis.exists(keys.meta)).toBe(0);
    queue = new Queue('layout', { connection, prefix });
    await queue.add('layout', { runId: 'r1', key: 'ok' }, { jobId: 'job-ok' });
    await queue.add('layout', { runId: 'r1', key: 'bad' }, { jobId: 'job-bad', attempts: 1 });
    expect(await redis.exists(keys.meta)).toBe(1);
    expect(keys.job('job-ok')).toBe(`${keys.jobPrefix}job-ok`);
    expect(JSON.parse((await redis.hget(keys.job('job-ok'), 'data'))!)).toEqual({ runId: 'r1', key: 'ok' });
    expect(await redis.hget(keys.job('job-ok'), 'opts')).toMatch(/^\{/);

    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const started = new Set<string>();
    const worker = new Worker(
      'layout',
      async (job: Job) => {
        started.add(job.id!);
        await held;
        if (job.data.key === 'bad') throw new Error('refused');
        await job.updateProgress(50);
      },
      { connection, prefix, concurrency: 2 },
    );
    const finished = new Promise<void>((resolve) => {
      let count = 0;
      const end = () => ++count === 2 && resolve();
      worker.on('completed', end);
      worker.on('failed', end);
    });
    try {
      await expect.poll(() => started.size, { timeout: 10_000 }).toBe(2);
      expect((await redis.lrange(keys.active, 0, -1)).sort()).toEqual(['job-bad', 'job-ok']);
      release();
      await finished;
    } finally {
      await worker.close();
    }
    expect(await redis.hget(keys.job('job-ok'), 'progress')).toBe('50');
    const ok = await queue.getJob('job-ok');
    const bad = await queue.getJob('job-bad');
    expect(Number(await redis.zscore(keys.completed, 'job-ok'))).toBe(ok!.finishedOn);
    expect(Number(await redis.zscore(keys.failed, 'job-bad'))).toBe(bad!.finishedOn);
    expect(await redis.zscore(keys.completed, 'job-bad')).toBeNull();
    expect(await redis.llen(keys.active)).toBe(0);
  });
});
