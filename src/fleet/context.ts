import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connection.js';
import pino, { type Logger } from 'pino';
import { redisTarget, type FleetConfig } from '../config/env.js';
import { createPrisma, type PrismaClient } from '../db/prisma.js';
import { keyLayout, type KeyLayout } from '../redis/key-layout.js';
import { bookkeepingConnection, connectProducer, producerConnection, untilReady, workerConnection } from '../redis/connection.js';
import type { JobData, JobFamily } from './family.js';
import { enqueue, type EnqueueOptions, type EnqueueResult } from './producer.js';
import { openQueue } from './queues.js';
import { RunStore } from './runs.js';
import { startScheduleRunner } from './schedules.js';
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
  redis: RedisClient;
  /** Which prefix each key goes under (see keyLayout). */
  layout: KeyLayout;
  runs: RunStore;
  queue(family: JobFamily): Queue<JobData>;
  /** One run of the family over the scope (see producer.enqueue). */
  enqueue(family: JobFamily, scope?: Scope, options?: EnqueueOptions): Promise<EnqueueResult>;
  /** Workers for these families in this process, on a blocking connection of their own; close() stops them. */
  startWorkers(families: readonly JobFamily[], options?: FleetWorkerOptions & { log?: Logger }): FleetWorkers;
  /** The runner of scheduled enqueues, for runs of any of `families`; close() stops it. */
  startSchedules(families: readonly JobFamily[], log: Logger): { close(): Promise<void>; waitUntilReady(): Promise<unknown> };
  /** Resolves once Redis answers; `onWait` is told once if that takes more than a second (role `worker` only waits). */
  ready(onWait: () => void): Promise<void>;
  close(): Promise<void>;
}

/**
 * How the fleet's Redis connection meets Redis being away:
 * - `command`: fails fast, with Redis named, and gives up after a few tries (the CLI, producers);
 * - `server`: fails each call fast but reconnects forever (the dashboard);
 * - `worker`: queues calls and waits Redis out, at start as later, so that nothing a worker records is lost to a restart.
 */
export type FleetRole = 'command' | 'server' | 'worker';

export interface OpenFleetOptions {
  /** For commands that only look (status): queues are opened without writing to Redis. Default false. */
  readOnly?: boolean;
  /** Default `command`. */
  role?: FleetRole;
  /** Postgres connections the process may open. Default 10 (createPrisma's). */
  poolSize?: number;
}

async function openRedis(config: FleetConfig, role: FleetRole): Promise<RedisClient> {
  const target = redisTarget(config);
  if (role === 'worker') return bookkeepingConnection(target);
  const connection =
    role === 'server' ? producerConnection(target, { retryStrategy: (attempt) => Math.min(attempt * 200, 2_000) }) : producerConnection(target);
  return connectProducer(connection, target);
}

export async function openFleet(config: FleetConfig, options: OpenFleetOptions = {}): Promise<FleetContext> {
  const redis = await openRedis(config, options.role ?? 'command');
  const prisma = createPrisma(config.databaseUrl, options.poolSize ? { maxConnections: options.poolSize } : {});
  const queues = new Map<string, Queue<JobData>>();
  const running: { workers: { close(): Promise<unknown> }; connection: RedisClient }[] = [];
  const layout = keyLayout(config);
  const runs = new RunStore(prisma, redis, layout);
  const queue = (family: JobFamily) => {
    let opened = queues.get(family.name);
    if (!opened) {
      opened = openQueue(family, redis, layout.family(family.name), { readOnly: options.readOnly });
      queues.set(family.name, opened);
    }
    return opened;
  };
  const fleetEnqueue: FleetContext['enqueue'] = (family, scope = { kind: 'all' }, enqueueOptions) =>
    enqueue({ prisma, redis, queue: queue(family), runs }, family, scope, enqueueOptions);
  return {
    config,
    prisma,
    redis,
    layout,
    runs,
    queue,
    enqueue: fleetEnqueue,
    startWorkers(families, workerOptions = {}) {
      const { log = pino({ level: 'silent' }), ...rest } = workerOptions;
      const connection = workerConnection(redisTarget(config));
      const workers = startWorkers({ prisma, connection, runs, layout, log }, [...families], rest);
      running.push({ workers, connection });
      return workers;
    },
    startSchedules(families, log) {
      const connection = workerConnection(redisTarget(config));
      const runner = startScheduleRunner({ connection, producer: redis, prefix: layout.shared, log, enqueue: fleetEnqueue }, families);
      running.push({ workers: runner, connection });
      return runner;
    },
    ready: (onWait) => untilReady(redis, onWait),
    async close() {
      await Promise.all(
        running.splice(0).map(async ({ workers, connection }) => {
          await workers.close();
          connection.disconnect();
        }),
      );
      await Promise.all([...queues.values()].map((opened) => opened.close()));
      await prisma.$disconnect();
      redis.disconnect();
    },
  };
}
