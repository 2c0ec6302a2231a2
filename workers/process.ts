import pg from 'pg';
import { redisTarget, type FleetConfig } from '../src/config/env.js';
import type { MarketConfig } from '../src/config/market.js';
import { createLogger } from '../src/log.js';
import { applyNiceness } from '../src/process-priority.js';
import { untilStopRequested } from '../src/process-stop.js';
import { openConnections, requireDatabase } from '../src/db/sql.js';
import { redisAddress } from '../src/redis/connection.js';
import { openFleet } from '../src/fleet/context.js';
import type { JobFamily } from '../src/fleet/family.js';
import { DbHealth, type ThrottleThresholds } from '../src/fleet/db-health.js';
import { RunProgress } from '../src/fleet/runs/progress.js';
import { startRunReconciler } from '../src/fleet/runs/reconciler.js';
import { startTableStatsKeeper } from '../src/fleet/table-stats.js';

export interface WorkerProcessOptions {
  families: JobFamily[];
  /** Every family the fleet knows: scheduled enqueues may name any of them. Default: `families`. */
  knownFamilies?: readonly JobFamily[];
  /** Overrides each family's concurrency. */
  concurrency?: number;
  /** Overrides each family's queue limiter (jobs per duration, for the whole queue). */
  limiter?: { max: number; duration: number };
  /** Lock duration and stalled-job check interval in ms (see FleetWorkerOptions). */
  lockDuration?: number;
  stalledInterval?: number;
  /** How long, in ms, active jobs may take to finish after SIGTERM before the process exits anyway. Default 60,000. */
  shutdownTimeoutMs?: number;
  /**
   * Postgres connections the process may open. Default 20: with batching, few
   * connections carry many jobs. As many as one family's jobs can use at
   * once (its concurrency over its batch size, the largest of the families,
   * up to this size) are opened before the first job (see openConnections).
   */
  poolSize?: number;
  /** Throttling on the database's health (see DbHealth); null turns it off. Default: on, with the default thresholds. */
  throttle?: Partial<ThrottleThresholds> | null;
  /** A replica of the database whose replay lag throttles the fleet too (with throttling on). Default none. */
  replicaUrl?: string;
  /** Market-data settings for the handlers. Default: read from the environment when the workers start. */
  market?: MarketConfig;
}

/**
 * Runs workers for the given families, and the runner of scheduled
 * enqueues, until SIGTERM or SIGINT, then stops
 * taking jobs, lets active ones finish (BullMQ hands back to the queue any
 * that a killed process leaves behind, as stalled), closes every connection
 * and resolves.
 */
export async function runWorkerProcess(config: FleetConfig, options: WorkerProcessOptions): Promise<void> {
  const log = createLogger('tys-worker');
  applyNiceness(config);
  const stopRequested = untilStopRequested().then((signal) => log.info({ signal }, 'shutting down: finishing active jobs'));
  const poolSize = options.poolSize ?? 20;
  const fleet = await openFleet(config, { role: 'worker', poolSize });
  const ready = fleet.ready(() => log.warn({ redis: redisAddress(redisTarget(config)) }, 'waiting for Redis'));
  if ((await Promise.race([ready.then(() => 'ready'), stopRequested.then(() => 'stop')])) === 'stop') {
    await fleet.close();
    log.info('workers stopped before Redis could be reached');
    return;
  }
  // One connection is plenty for a look a second; a replica that is down must not hold the process up.
  const replica =
    options.throttle === null || !options.replicaUrl
      ? undefined
      : new pg.Pool({ connectionString: options.replicaUrl, max: 1, connectionTimeoutMillis: 2_000, application_name: 'tys-throttle' });
  replica?.on('error', (error) => log.warn({ err: error.message }, 'replica connection error'));
  const health =
    options.throttle === null
      ? undefined
      : new DbHealth(
          { prisma: fleet.prisma, redis: fleet.redis, prefix: fleet.layout.shared, log: log.child({ task: 'throttle' }), replica },
          options.families.map((f) => f.name),
          options.throttle,
        );
  health?.start();
  // One family's run at a time is the usual course (the documented order);
  // runs side by side open more as they need them.
  const atOnce = Math.max(...options.families.map((family) => Math.ceil((options.concurrency ?? family.options.concurrency) / family.options.batch.maxSize)));
  await requireDatabase(fleet.prisma, config.databaseUrl);
  // A database that does not answer yet is the jobs' concern: they retry. A stop meanwhile does not wait for it.
  await Promise.race([
    openConnections(fleet.prisma, Math.min(poolSize, atOnce)).catch((error: Error) =>
      log.warn({ err: error.message }, 'could not open the database connections ahead of the first jobs'),
    ),
    stopRequested,
  ]);
  const workers = fleet.startWorkers(options.families, {
    concurrency: options.concurrency,
    limiter: options.limiter,
    lockDuration: options.lockDuration,
    stalledInterval: options.stalledInterval,
    health,
    market: options.market,
    log,
  });
  const scheduleRunner = fleet.startSchedules(options.knownFamilies ?? options.families, log.child({ queue: 'schedules' }));
  const tableStats = startTableStatsKeeper(fleet.prisma, [...new Set(options.families.flatMap((f) => f.grows ?? []))], log.child({ task: 'table-stats' }));
  const reconciler = startRunReconciler(fleet.runs, log.child({ task: 'runs' }), { progress: new RunProgress(fleet.redis, fleet.layout.shared) });
  await Promise.all([...workers.workers, scheduleRunner].map((worker) => worker.waitUntilReady()));
  // Shard counts other processes recorded for these families: taking jobs
  // from other queues than the producers fill would leave runs waiting.
  const refused = await workers.agreed.then(
    () => null,
    (error: Error) => error,
  );
  if (refused) log.error({ err: refused.message }, 'stopping: this process does not agree with Redis on the shards');
  else {
    log.info({ families: options.families.map((f) => f.name), concurrency: options.concurrency, pid: process.pid }, 'workers started');
    await stopRequested;
  }
  // Closing can wait forever on a Redis connection stuck reconnecting (a
  // BullMQ limitation); past the deadline the process exits 1, and the jobs
  // it still holds go back to the queue as stalled, to another worker.
  const pending = new Set<string>();
  const step = async (name: string, work: () => Promise<unknown>) => {
    pending.add(name);
    await work();
    pending.delete(name);
  };
  const timeoutMs = options.shutdownTimeoutMs ?? 60_000;
  const deadline = setTimeout(() => {
    log.error({ pending: [...pending], timeoutMs }, 'shutdown did not finish in time: exiting');
    process.exit(1);
  }, timeoutMs);
  deadline.unref();
  await Promise.all([
    step('workers', () => workers.close()),
    step('schedules', () => scheduleRunner.close()),
    step('run records', () => reconciler.stop()),
    step('table statistics', () => tableStats.stop()),
    step('throttle', async () => {
      await health?.stop();
      await replica?.end();
    }),
  ]);
  await step('connections', () => fleet.close());
  clearTimeout(deadline);
  log.info('workers stopped');
  if (refused) throw refused;
}
