import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pino from 'pino';
import { inject } from 'vitest';
import type { FleetConfig } from '../../src/config/env.js';
import { loadMarketConfig } from '../../src/config/market.js';
import { findFamily } from '../../src/families/index.js';
import { openFleet, type FleetContext } from '../../src/fleet/context.js';
import type { HandlerContext, JobFamily } from '../../src/fleet/family.js';
import type { PrismaClient } from '../../src/db/prisma.js';
import type { RedisClient } from '../../src/redis/connection.js';
import type { EnqueueOptions } from '../../src/fleet/producer.js';
import type { Scope } from '../../src/fleet/scope.js';
import type { FleetWorkerOptions } from '../../src/fleet/worker.js';
import type { TestDatabase } from './databases.js';
import { flushPrefix, REDIS_URL } from './redis-keys.js';

export { flushPrefix, REDIS_URL };

/** A queue prefix of the test file's own, so parallel files never see each other's jobs. */
export function testPrefix(): string {
  return `${inject('prefixStem')}-${randomBytes(4).toString('hex')}`;
}

export function testConfig(db: TestDatabase, prefix: string): FleetConfig {
  return { databaseUrl: db.url, redisUrl: REDIS_URL, queuePrefix: prefix };
}

/**
 * In-process fleet for tests, under a prefix of its own: the fleet's
 * context, and a wait for runs; close() removes its keys (a sharded family's
 * too). `settings` adds to the configuration (shards, say).
 */
export async function testFleet(db: TestDatabase, prefix = testPrefix(), settings: Partial<FleetConfig> = {}) {
  const config = { ...testConfig(db, prefix), ...settings };
  const context: FleetContext = await openFleet(config);
  return {
    prefix,
    config,
    context,
    enqueue: (family: JobFamily, scope: Scope = { kind: 'all' }, options?: EnqueueOptions) => context.enqueue(family, scope, options),
    startWorkers: (families: JobFamily[], options?: FleetWorkerOptions) => context.startWorkers(families, options),
    /**
     * Polls the run's durable record until it has finished, then until BullMQ
     * has filed its last jobs (a run ends as its last outcome is counted, just
     * before BullMQ moves that job out of the active list); fails after the
     * deadline.
     */
    async waitForRun(runId: string, deadlineMs = 60_000) {
      const until = Date.now() + deadlineMs;
      for (;;) {
        const run = await context.runs.get(runId);
        const family = run?.finishedAt ? findFamily(run.family) : undefined;
        const filing = family
          ? (await Promise.all(context.shardQueues(family).map((queue) => queue.getActive()))).flat().some((job) => job.data?.runId === runId)
          : false;
        if (run?.finishedAt && !filing) return run;
        if (Date.now() > until) throw new Error(`run ${runId} did not finish within ${deadlineMs} ms: ${JSON.stringify(run)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async close() {
      await context.close();
      await flushPrefix(prefix, '[:.]*');
    },
  };
}

/** The context a worker gives handlers, for tests that call a family's handler directly. */
export function handlerContext(prisma: PrismaClient, redis: RedisClient = new Redis(REDIS_URL), prefix = testPrefix()): HandlerContext {
  return { prisma, redis, prefix, log: pino({ level: 'silent' }), count: () => undefined, market: loadMarketConfig() };
}
