import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { FleetConfig } from '../config/env.js';
import { createPrisma, type PrismaClient } from '../db/prisma.js';
import { connectProducer, producerConnection } from '../redis/connection.js';
import type { JobData, JobFamily } from './family.js';
import { openQueue } from './queues.js';
import { RunStore } from './runs.js';

/** The connections a CLI command or producer needs, opened once and closed together. */
export interface FleetContext {
  config: FleetConfig;
  prisma: PrismaClient;
  redis: Redis;
  runs: RunStore;
  queue(family: JobFamily): Queue<JobData>;
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
  return {
    config,
    prisma,
    redis,
    runs: new RunStore(prisma, redis, config.queuePrefix),
    queue(family) {
      let queue = queues.get(family.name);
      if (!queue) {
        queue = openQueue(family, redis, config.queuePrefix, { readOnly: options.readOnly });
        queues.set(family.name, queue);
      }
      return queue;
    },
    async close() {
      await Promise.all([...queues.values()].map((queue) => queue.close()));
      await prisma.$disconnect();
      redis.disconnect();
    },
  };
}
