import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import pino, { type Logger } from 'pino';
import type { FleetConfig } from '../config/env.js';
import { createPrisma, type PrismaClient } from '../db/prisma.js';
import { connectProducer, producerConnection, workerConnection } from '../redis/connection.js';
import type { JobData, JobFamily } from './family.js';
import { enqueue, type EnqueueOptions, type EnqueueResult } from './producer.js';
import { openQueue } from './queues.js';
import { RunStore } from './runs.js';
import type { Scope } from './scope.js';
import { startWorkers, type FleetWorkerOptions, type FleetWorkers } from './worker.js';

/**
 * The connections a command, a producer or an in-process fleet needs,
 * opened once, handed out through what it does (enqueue, start workers),
 * and closed together in order: workers first, then queues, Postgres and
 * Redis.
 */
export interface FleetContext {
  config: FleetConfig;
  prisma: PrismaClient;
  redis: Redis;
  runs: RunStore;
  queue(family: JobFamily): Queue<JobData>;
  /** One run of the family over the scope (see producer.enqueue). */
  enqueue(family: JobFamily, scope?: Scope, options?: EnqueueOptions): Promise<EnqueueResult>;
  /** Workers for these families in this process, on a blocking connection of their own; close() stops them. */
  startWorkers(families: readonly JobFamily[], options?: FleetWorkerOptions & { log?: Logger }): FleetWorkers;
  close(): Promise<void>;
}

export interface OpenFleetOptions {
  /** For commands that only look (status): queues are opened without writing to Redis. Default false. */
  readOnly?: boolean;
}

export async function openFleet(config: FleetConfig, options: OpenFleetOptions = {}): Promise<FleetContext> {
  const redis = await connectProducer(producerConnection(config.redisUrl), config.redisUrl);
  const prisma = createPrisma(config.databaseUrl);
  const queues = new Map<string, Queue<JobData>>();
  const running: { workers: FleetWorkers; connection: Redis }[] = [];
  const runs = new RunStore(prisma, redis, config.queuePrefix);
  const queue = (family: JobFamily) => {
    let opened = queues.get(family.name);
    if (!opened) {
      opened = openQueue(family, redis, config.queuePrefix, { readOnly: options.readOnly });
      queues.set(family.name, opened);
    }
    return opened;
  };
  return {
    config,
    prisma,
    redis,
    runs,
    queue,
    enqueue: (family, scope = { kind: 'all' }, enqueueOptions) =>
      enqueue({ prisma, redis, queue: queue(family), runs, prefix: config.queuePrefix }, family, scope, enqueueOptions),
    startWorkers(families, workerOptions = {}) {
      const { log = pino({ level: 'silent' }), ...rest } = workerOptions;
      const connection = workerConnection(config.redisUrl);
      const workers = startWorkers({ prisma, connection, runs, prefix: config.queuePrefix, log }, [...families], rest);
      running.push({ workers, connection });
      return workers;
    },
    async close() {
      for (const { workers, connection } of running.splice(0)) {
        await workers.close();
        connection.disconnect();
      }
      await Promise.all([...queues.values()].map((opened) => opened.close()));
      await prisma.$disconnect();
      redis.disconnect();
    },
  };
}
