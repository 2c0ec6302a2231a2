import type { Queue, Worker } from 'bullmq';
import { ioredis } from '../deps/ioredis.js';
import pino, { type Logger } from 'pino';
import { redisTarget, type FleetConfig } from '../config/env.js';
import { createPrisma, type PrismaClient } from '../db/prisma.js';
import {
  bookkeepingConnection,
  checkDatabase,
  connectProducer,
  producerConnection,
  untilReady,
  workerConnection,
  type RedisClient,
} from '../redis/connection.js';
import { keyLayout, type KeyLayout } from '../redis/key-layout.js';
import { resolveShardCounts, type ShardCounts } from '../redis/shard-counts.js';
import type { JobData, JobFamily } from './family.js';
import { enqueue, type EnqueueOptions, type EnqueueResult, type FamilyQueues } from './producer.js';
import { openQueue } from './queues.js';
import { RunStore } from './runs/store.js';
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
  /** Which prefix each key goes under and the families' shards (see keyLayout); for role `worker`, known once ready() resolves. */
  readonly layout: KeyLayout;
  /** For role `worker`, usable once ready() resolves. */
  readonly runs: RunStore;
  /** The queues of the family's shards, in shard order. */
  shardQueues(family: JobFamily): Queue<JobData>[];
  /** The family's queue, for a family of one shard (tests, tools); a sharded family has shardQueues. */
  queue(family: JobFamily): Queue<JobData>;
  /** One run of the family over the scope (see producer.enqueue). */
  enqueue(family: JobFamily, scope?: Scope, options?: EnqueueOptions): Promise<EnqueueResult>;
  /**
   * Workers for these families in this process, on a blocking connection of
   * their own; close() stops them. `agreed` rejects, naming both counts, when
   * Redis records other shard counts for the families than this process uses.
   */
  startWorkers(families: readonly JobFamily[], options?: FleetWorkerOptions & { log?: Logger }): FleetWorkers & { agreed: Promise<void> };
  /** The runner of scheduled enqueues, for runs of any of `families`; close() stops it. */
  startSchedules(families: readonly JobFamily[], log: Logger): { close(): Promise<void>; waitUntilReady(): Promise<unknown> };
  /**
   * Resolves once Redis answers and the key layout is read from it; `onWait`
   * is told once if that takes more than a second (role `worker` only waits).
   */
  ready(onWait?: () => void): Promise<void>;
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

/** How long stopping workers waits for their Redis connection to be back before closing it anyway. */
const RECONNECT_WAIT_MS = 15_000;

/**
 * Closes BullMQ workers once their connections (the shared one and each
 * worker's blocking one) are back, or after RECONNECT_WAIT_MS: BullMQ's
 * close waits for an 'end' event that a connection in the middle of
 * reconnecting never emits (taskforcesh/bullmq#2430, #4656), so a stop right
 * after a Redis restart would hang until the process's shutdown deadline.
 */
async function closeOnceReconnected(connection: RedisClient, bullWorkers: Worker[], close: () => Promise<unknown>): Promise<void> {
  const reconnected = (async () => {
    const blocking = await Promise.all(bullWorkers.map((worker) => worker.backend.blockingClient ?? Promise.resolve(null)));
    // The fleet hands BullMQ ioredis connections; its blocking ones are their duplicates.
    // A client already closed (workers stopped before) has nothing to wait for.
    for (const client of [connection, ...blocking]) {
      if ((client instanceof ioredis.Redis || client instanceof ioredis.Cluster) && client.status !== 'end') await untilReady(client, () => undefined);
    }
  })();
  await Promise.race([reconnected, new Promise((resolve) => setTimeout(resolve, RECONNECT_WAIT_MS).unref())]);
  await close();
}

async function openRedis(config: FleetConfig, role: FleetRole): Promise<RedisClient> {
  const target = redisTarget(config);
  if (role === 'worker') return bookkeepingConnection(target);
  const connection =
    role === 'server' ? producerConnection(target, { retryStrategy: (attempt) => Math.min(attempt * 200, 2_000) }) : producerConnection(target);
  await connectProducer(connection, target);
  await checkDatabase(connection, target);
  return connection;
}

export async function openFleet(config: FleetConfig, options: OpenFleetOptions = {}): Promise<FleetContext> {
  const role = options.role ?? 'command';
  const redis = await openRedis(config, role);
  const prisma = createPrisma(config.databaseUrl, {
    applicationName: `tys ${role}`,
    ...(options.poolSize ? { maxConnections: options.poolSize } : {}),
  });
  const queues = new Map<string, Queue<JobData>>();
  const running: { workers: { close(): Promise<unknown> }; connection: RedisClient }[] = [];
  let resolved: { counts: ShardCounts; layout: KeyLayout; runs: RunStore } | null = null;
  const resolve = async () => {
    if (resolved) return resolved;
    const counts = await resolveShardCounts(redis, config);
    const layout = keyLayout(config, counts);
    resolved ??= { counts, layout, runs: new RunStore(prisma, redis, layout) };
    return resolved;
  };
  // A worker's connection waits for Redis: its layout is read in ready().
  if (role !== 'worker') await resolve();
  const known = () => {
    if (!resolved) throw new Error('the fleet reads its key layout from Redis: await ready() before using it');
    return resolved;
  };
  const shardQueues = (family: JobFamily) =>
    known()
      .layout.shards(family.name)
      .map((shard) => {
        let opened = queues.get(shard.prefix + shard.queueName);
        if (!opened) {
          opened = openQueue(family, shard, redis, { readOnly: options.readOnly });
          queues.set(shard.prefix + shard.queueName, opened);
        }
        return opened;
      });
  const familyQueues = (family: JobFamily): FamilyQueues => {
    const { layout } = known();
    return { queues: shardQueues(family), shardOf: (jobId) => layout.shardOf(family.name, jobId).index };
  };
  const fleetEnqueue: FleetContext['enqueue'] = async (family, scope = { kind: 'all' }, enqueueOptions) => {
    const { counts, runs } = known();
    if (!enqueueOptions?.dryRun) await counts.pin(family.name);
    const leased = config.producerLeaseMs ? { leaseMs: config.producerLeaseMs } : {};
    return enqueue({ prisma, redis, queues: familyQueues(family), runs }, family, scope, { ...leased, ...enqueueOptions });
  };
  return {
    config,
    prisma,
    redis,
    get layout() {
      return known().layout;
    },
    get runs() {
      return known().runs;
    },
    shardQueues,
    queue(family) {
      const [only, ...more] = shardQueues(family);
      if (more.length > 0) throw new Error(`${family.name} has ${more.length + 1} shards: use shardQueues`);
      return only!;
    },
    enqueue: fleetEnqueue,
    startWorkers(families, workerOptions = {}) {
      const { log = pino({ level: 'silent' }), ...rest } = workerOptions;
      const { counts, layout, runs } = known();
      const connection = workerConnection(redisTarget(config));
      const workers = startWorkers({ prisma, connection, runs, layout, log }, [...families], rest);
      const agreed = Promise.all(families.map((family) => counts.pin(family.name))).then(() => undefined);
      agreed.catch(() => undefined);
      const started = { ...workers, agreed, close: () => closeOnceReconnected(connection, workers.workers, () => workers.close()) };
      // close() of the context stops them the same way.
      running.push({ workers: started, connection });
      return started;
    },
    startSchedules(families, log) {
      const connection = workerConnection(redisTarget(config));
      const runner = startScheduleRunner({ connection, producer: redis, prefix: known().layout.shared, log, enqueue: fleetEnqueue }, families);
      const started = { waitUntilReady: () => runner.waitUntilReady(), close: () => closeOnceReconnected(connection, [runner], () => runner.close()) };
      running.push({ workers: started, connection });
      return started;
    },
    async ready(onWait = () => undefined) {
      await untilReady(redis, onWait);
      await checkDatabase(redis, redisTarget(config));
      await resolve();
    },
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
