import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { FleetConfig } from '../../src/config/env.js';
import { deployMigrations } from '../../src/db/migrate/deploy.js';
import { PROJECT_ROOT } from '../../src/project-root.js';
import { createPrisma, type PrismaClient } from '../../src/db/prisma.js';
import type { RedisClient } from '../../src/redis/connection.js';
import { openFleet, type FleetContext } from '../../src/fleet/context.js';
import { findFamily } from '../../src/families/index.js';
import { jobIdFor } from '../../src/fleet/family.js';
import type { RunView } from '../../src/fleet/runs/store.js';
import { seededRandom } from '../../bench/seeded-random.js';
import { AlphaVantageStandIn } from '../support/alpha-vantage-server.js';
import { fleetEnv, killOnExit, runTys, spawnTys, until } from '../support/processes.js';
import { freePort, PrivateRedis } from '../support/redis-server.js';
import { adminUrl, serverUrl, withClient } from '../support/server.js';
import { checkState, type StateCheck } from './check.js';
import { FaultInjector, WorkerPool, type FaultKind } from './faults.js';
import { findSecrets } from './secrets.js';
import { seedChaos } from './seed.js';

export interface ChaosOptions {
  /** Investments seeded. Default 20,000. */
  investments?: number;
  /** Worker processes, each running every family. Default 3. */
  workers?: number;
  /** Seed of the random choices (fault order, provider faults, alerts, prices); printed with the figures. */
  seed?: number;
  /** Pause between two injected faults, in ms. Default [500, 1500]. */
  faultEveryMs?: [number, number];
  /** How long the database stays unreachable in an outage. Default 2,000 ms. */
  outageMs?: number;
  /** Share of provider calls answered with a fault. Default 0.15. */
  providerFaultRate?: number;
  /** Rounds of each phase during which faults are injected; later rounds run quiet. Default 2. */
  faultRounds?: number;
  /** Rounds after which a phase that has not converged fails the scenario. Default 8. */
  maxRounds?: number;
  log?: (line: string) => void;
  /** A directory for every worker's whole output. Default none. */
  logDir?: string;
  /**
   * Time the whole scenario may take, in ms. Past it the scenario fails naming
   * what it was waiting for, and still cleans up. Default 20 minutes.
   */
  timeoutMs?: number;
  /**
   * Stops the scenario as its deadline would: every wait ends at its next
   * look, and the database, Redis, workers and stand-ins are still removed.
   */
  signal?: AbortSignal;
}

export interface PhaseFigures {
  families: string[];
  rounds: number;
  seconds: number;
}

export interface ChaosReport extends StateCheck {
  ok: boolean;
  seed: number;
  data: { investments: number; tickers: number; violations: number; alerts: number; actions: number };
  jobsProcessed: number;
  retries: number;
  finalFailures: number;
  runs: Record<'COMPLETED' | 'FAILED' | 'INTERRUPTED', number>;
  faults: Record<FaultKind, number>;
  providerFaults: Record<string, number>;
  producerRetries: number;
  /** `tys enqueue` processes killed with SIGKILL while they added a run's jobs, one per phase when it can be caught adding. */
  producersKilled: number;
  /** Runs left without an end once the scenario converged: a killed producer's run must end too. */
  openRuns: string[];
  uncleanShutdowns: string[];
  crashes: string[];
  secretsFound: string[];
  /** Jobs written by hand into a run's queue, naming it with a forged seal, that ended any other way than refused (must be none). */
  hostileJobsBelieved: string[];
  /** Those found refused (a Redis that lost its data takes the others with it). */
  hostileJobsRefused: number;
  phases: PhaseFigures[];
  convergeSeconds: number;
}

const PHASES: { families: string[]; redisRestart?: boolean }[] = [
  { families: ['constraints'] },
  // Lots need the fixed quantities; alerts judge positions after the fix.
  { families: ['lots', 'metadata', 'alerts'], redisRestart: true },
  // Splits apply to the lots.
  { families: ['corporate-actions'] },
];

/**
 * Seeds a database of its own, starts worker processes, a dashboard and a
 * market-data stand-in, runs every family through crashes, outages and
 * provider faults until it converges, and checks the result against the
 * independently computed expectation.
 */
export async function runChaos(options: ChaosOptions = {}): Promise<ChaosReport> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = seededRandom(seed);
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const deadline = started + (options.timeoutMs ?? 20 * 60_000);
  const timeLeft = () => (options.signal?.aborted ? 0 : Math.max(0, deadline - Date.now()));
  const say = (line: string) => log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
  const secrets = { apiKey: `av-${randomBytes(12).toString('hex')}`, password: `dash-${randomBytes(12).toString('hex')}` };
  const database = `tys_chaos_${randomBytes(5).toString('hex')}`;
  const cleanups: (() => Promise<unknown>)[] = [];

  const admin = (sql: string) => withClient((client) => client.query(sql));
  try {
    await admin(`CREATE DATABASE "${database}"`);
    cleanups.push(() => admin(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
    const databaseUrl = serverUrl(database);
    await deployMigrations(databaseUrl);
    const redis = await PrivateRedis.start();
    cleanups.push(() => redis.stop());
    const market = await new AlphaVantageStandIn().start();
    cleanups.push(() => market.stop());
    market.validKey = secrets.apiKey;
    market.random = random;
    const prisma = createPrisma(databaseUrl);
    cleanups.push(() => prisma.$disconnect());

    const data = await seedChaos(prisma, { investments: options.investments ?? 20_000, random }, market);
    say(
      `seeded ${data.investments} investments over ${data.tickers} tickers: ${data.violations} constraint violations, ${data.alerts} alerts, ${data.actions} splits`,
    );
    market.faultRate = options.providerFaultRate ?? 0.15;
    options.signal?.throwIfAborted();

    const config: FleetConfig = { databaseUrl, redisUrl: redis.url, queuePrefix: `chaos-${randomBytes(3).toString('hex')}` };
    const dashboardPort = await freePort();
    const env = fleetEnv(config, {
      ALPHA_VANTAGE_BASE_URL: market.url,
      ALPHA_VANTAGE_API_KEY: secrets.apiKey,
      ALPHA_VANTAGE_TIMEOUT_MS: '1000',
      MARKET_DATA_RATE_LIMIT: '200/1s',
      TYS_LOCK_DURATION_MS: '3000',
      TYS_STALLED_INTERVAL_MS: '1500',
      TYS_LOG_LEVEL: 'info',
      TYS_DB_POOL_SIZE: '10',
      // The runs of producers killed outright are sealed by the workers this long after their last word.
      TYS_PRODUCER_LEASE: '2s',
      DASHBOARD_USER: 'operator',
      DASHBOARD_PASSWORD: secrets.password,
    });
    const pool = new WorkerPool(options.workers ?? 3, env, options.logDir);
    pool.start();
    cleanups.push(() => pool.stopAll(60_000));
    const dashboard = startDashboardProcess(env, dashboardPort);
    cleanups.push(() => dashboard.stop());

    // Reads runs as a worker would: through Redis restarts.
    const watcher = await openFleet(config, { role: 'worker', poolSize: 2 });
    cleanups.push(() => watcher.close());
    await watcher.ready(() => say('waiting for Redis'));
    const runs = watcher.runs;
    const injector = new FaultInjector({
      pool,
      redis,
      adminUrl: adminUrl(),
      database,
      random,
      everyMs: options.faultEveryMs ?? [500, 1_500],
      outageMs: options.outageMs ?? 2_000,
      log: say,
    });
    cleanups.push(() => injector.stop());

    let producerRetries = 0;
    const producerOutput: string[] = [];
    // A job anyone could write into Redis, naming a live run with a seal of its own making: it must be refused.
    const hostile: { family: string; jobId: string; runId: string }[] = [];
    const queueOf = (family: string, jobId: string) => watcher.shardQueues(findFamily(family)!)[watcher.layout.shardOf(family, jobId).index]!;
    const addHostileJob = async (name: string, runId: string) => {
      const family = findFamily(name)!;
      const jobId = jobIdFor(family, family.exampleKey);
      await queueOf(name, jobId).add(name, { runId, key: family.exampleKey, seal: 'A'.repeat(22) }, { jobId, attempts: 5 });
      hostile.push({ family: name, jobId, runId });
    };
    const enqueue = async (family: string): Promise<string> => {
      for (const giveUp = Date.now() + Math.min(120_000, timeLeft()); ;) {
        const result = await runTys(['enqueue', family, '--all'], env);
        producerOutput.push(result.stdout, result.stderr);
        const runId = /^run (\S+):/m.exec(result.stdout)?.[1];
        if (result.code === 0 && runId) return runId;
        producerRetries += 1;
        if (Date.now() > giveUp) throw new Error(`tys enqueue ${family} kept failing: ${result.stderr.trim()}`);
        say(`enqueue ${family} failed (${result.stderr.trim().split('\n')[0]}); again`);
      }
    };
    // A producer killed outright while it adds jobs, in small pages so that it is caught adding. Its run
    // must end on its own: the workers seal it once its lease lapses, and its jobs run. The round then
    // starts once it has, so that it follows none of those jobs.
    let producersKilled = 0;
    const killWhileAdding = async (family: string): Promise<void> => {
      const producer = spawnTys(['enqueue', family, '--all', '--page-size', '10'], env);
      let killedRun: string | null = null;
      while (producer.exitCode === null && producer.signalCode === null && !killedRun) {
        const run = await prisma.fleetRun.findFirst({ where: { family, status: 'ENQUEUEING' }, orderBy: { startedAt: 'desc' } }).catch(() => null);
        const noted = run ? ((await runs.counters(family, run.id).catch(() => null))?.total ?? 0) : 0;
        if (run && noted >= 10 && producer.kill('SIGKILL')) killedRun = run.id;
        else await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const result = await producer.exited;
      producerOutput.push(result.stdout, result.stderr);
      if (!killedRun) return;
      producersKilled += 1;
      say(`fault: SIGKILL to tys enqueue ${family} while it added jobs (run ${killedRun})`);
      const ended = async () => Boolean((await prisma.fleetRun.findUnique({ where: { id: killedRun } }).catch(() => null))?.finishedAt);
      // Left open, it is reported with the runs that never ended.
      await until(`run ${killedRun} of the killed producer to end`, ended, Math.min(60_000, timeLeft()), 200).catch(() => undefined);
    };
    const finished: RunView[] = [];
    const waitForEnd = async (runId: string): Promise<RunView> => {
      let view: RunView | null = null;
      await until(
        `run ${runId} to end`,
        async () => {
          // The harness rides out the same outages as the fleet.
          view = await runs.get(runId).catch(() => null);
          return Boolean(view?.finishedAt);
        },
        timeLeft(),
        200,
      ).catch(async (error: Error) => {
        // Where a run that never ends stands: its counters, and its family's jobs by state.
        const told = pool
          .output()
          .split('\n')
          .filter((line) => line.includes(runId))
          // Worker by worker as kept; in time order across them.
          .sort((a, b) => Number(/"time":(\d+)/.exec(a)?.[1] ?? 0) - Number(/"time":(\d+)/.exec(b)?.[1] ?? 0))
          .slice(-8)
          .map((line) => line.slice(0, 400));
        throw new Error(`${error.message}; ${await whereRunStands(watcher, view)}; the workers' last lines on it:\n${told.join('\n') || '(none)'}`, {
          cause: error,
        });
      });
      finished.push(view!);
      return view!;
    };

    const phases: PhaseFigures[] = [];
    const maxRounds = options.maxRounds ?? 8;
    const faultRounds = options.faultRounds ?? 2;
    for (const phase of PHASES) {
      const phaseStarted = Date.now();
      let rounds = 0;
      for (;;) {
        options.signal?.throwIfAborted();
        rounds += 1;
        if (rounds > maxRounds) throw new Error(`${phase.families.join(', ')} did not converge in ${maxRounds} rounds`);
        if (rounds <= faultRounds) injector.start();
        if (rounds === 1) await killWhileAdding(phase.families[0]!);
        const runIds = await Promise.all(phase.families.map(enqueue));
        say(`${phase.families.join(', ')}: round ${rounds}, runs ${runIds.join(' ')}`);
        if (rounds === 1) for (const [i, family] of phase.families.entries()) await addHostileJob(family, runIds[i]!);
        const restart = phase.redisRestart && rounds === 1 ? restartRedisMidRun(prisma, injector, data.investments, timeLeft()) : null;
        // Awaited once the runs have ended; should the runs' wait fail first, its failure must not go unhandled meanwhile.
        restart?.catch(() => undefined);
        const views = await Promise.all(runIds.map(waitForEnd));
        await restart;
        await injector.stop();
        say(
          `${phase.families.join(', ')}: ${views.map((v) => `${v.family} ${v.status} (${v.completed} completed, ${v.skipped} skipped, ${v.failed} failed)`).join('; ')}`,
        );
        // Converged when every run completed and covered all the work itself:
        // jobs it found queued by an earlier run may still be in flight.
        if (views.every((v) => v.status === 'COMPLETED' && v.alreadyQueued === 0)) break;
      }
      phases.push({ families: phase.families, rounds, seconds: (Date.now() - phaseStarted) / 1000 });
    }
    const convergeSeconds = phases.reduce((sum, p) => sum + p.seconds, 0);
    say(`converged in ${convergeSeconds.toFixed(1)} s`);
    // Every run ends, the killed producers' too, once their leases lapse and the workers look (every 5 s).
    const openRuns = async () => (await prisma.fleetRun.findMany({ where: { finishedAt: null }, select: { id: true } })).map((run) => run.id);
    await until('every run to end', async () => (await openRuns()).length === 0, Math.min(30_000, timeLeft()), 200).catch(() => undefined);
    const leftOpen = await openRuns();

    // Refused, or gone with a Redis that lost its data; never run. A run ends
    // without waiting for them (they are none of its jobs): the workers are
    // given a moment to take the ones still queued.
    const hostileJob = ({ family, jobId }: (typeof hostile)[number]) =>
      queueOf(family, jobId)
        .getJob(jobId)
        .catch(() => undefined);
    await until(
      'the hand-written jobs to be taken',
      async () => (await Promise.all(hostile.map(hostileJob))).every((job) => !job || job.finishedOn),
      Math.min(30_000, timeLeft()),
      200,
    ).catch(() => undefined);
    const hostileJobsBelieved: string[] = [];
    let hostileJobsRefused = 0;
    for (const { family, jobId, runId } of hostile) {
      const job = await hostileJob({ family, jobId, runId });
      if (!job?.finishedOn) continue;
      if (/did not add this job/.test(job.failedReason ?? '')) hostileJobsRefused += 1;
      else hostileJobsBelieved.push(`${family} ${jobId} naming ${runId}: ${job.failedReason ?? 'completed'}`);
    }
    const dashboardBodies = await dashboard.fetchAll();
    const redisValues = await dumpRedis(watcher.redis, config.queuePrefix);
    await pool.stopAll(60_000);
    const state = await checkState(prisma, data.expected);
    const workerOutput = pool.output();
    const secretsFound = findSecrets(Object.values(secrets), {
      'worker logs': workerOutput,
      'producer output': producerOutput.join('\n'),
      'dashboard logs': dashboard.output(),
      'dashboard responses': dashboardBodies,
      'Redis (job data, runs, budgets)': redisValues,
      'Postgres (audit log, runs)': await databaseText(prisma),
    });
    if (!market.calls.some((call) => call.apikey === secrets.apiKey)) secretsFound.push('the API key never reached the provider: the check proves nothing');

    const count = (status: RunView['status']) => finished.filter((v) => v.status === status).length;
    const report: ChaosReport = {
      ok: false,
      seed,
      data: { investments: data.investments, tickers: data.tickers, violations: data.violations, alerts: data.alerts, actions: data.actions },
      jobsProcessed: finished.reduce((sum, v) => sum + v.completed + v.skipped + v.failed, 0),
      retries: countLogLines(workerOutput, (entry) => entry.msg === 'job failed' && entry.final === false),
      finalFailures: countLogLines(workerOutput, (entry) => entry.msg === 'job failed' && entry.final === true),
      runs: { COMPLETED: count('COMPLETED'), FAILED: count('FAILED'), INTERRUPTED: count('INTERRUPTED') },
      faults: { ...injector.counts },
      providerFaults: { ...market.faults },
      producerRetries,
      producersKilled,
      openRuns: leftOpen,
      uncleanShutdowns: [...pool.unclean],
      crashes: [...pool.crashes],
      secretsFound,
      hostileJobsBelieved,
      hostileJobsRefused,
      phases,
      convergeSeconds,
      ...state,
    };
    report.ok =
      report.duplicates === 0 &&
      report.lost === 0 &&
      report.wrong === 0 &&
      secretsFound.length === 0 &&
      hostileJobsBelieved.length === 0 &&
      leftOpen.length === 0 &&
      report.uncleanShutdowns.length === 0 &&
      report.crashes.length === 0;
    return report;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => log(`cleanup: ${(error as Error).message}`));
  }
}

/** A run's counters and its family's jobs by state, in a line, for a run that does not end. */
async function whereRunStands(fleet: FleetContext, view: RunView | null): Promise<string> {
  if (!view) return 'the run was never read';
  const family = findFamily(view.family);
  const counts = family
    ? await Promise.all(
        fleet.shardQueues(family).map((queue) => queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed', 'completed')),
      )
        .then((shards) => JSON.stringify(shards))
        .catch((error: Error) => `unread (${error.message})`)
    : 'unknown family';
  const { status, total, completed, skipped, failed, live } = view;
  return `run ${JSON.stringify({ status, total, completed, skipped, failed, live })}, ${view.family} jobs by shard ${counts}`;
}

/** Restarts Redis once about a third of the lots exist: every queued job and run counter is lost mid-run. */
async function restartRedisMidRun(prisma: PrismaClient, injector: FaultInjector, investments: number, timeoutMs: number): Promise<void> {
  await until('a third of the lots', async () => (await prisma.taxLot.count().catch(() => 0)) >= investments / 3, timeoutMs, 100);
  await injector.inject('redis-restart');
}

function countLogLines(output: string, match: (entry: Record<string, unknown>) => boolean): number {
  let n = 0;
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      if (match(JSON.parse(line) as Record<string, unknown>)) n += 1;
    } catch {
      // a line cut short by SIGKILL
    }
  }
  return n;
}

/** Every value under the fleet's prefix, whatever its type. */
async function dumpRedis(redis: RedisClient, prefix: string): Promise<string> {
  const parts: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      parts.push(key);
      if (type === 'string') parts.push((await redis.get(key)) ?? '');
      else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'list') parts.push(...(await redis.lrange(key, 0, -1)));
      else if (type === 'set') parts.push(...(await redis.smembers(key)));
      else if (type === 'zset') parts.push(...(await redis.zrange(key, 0, -1)));
      else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
    }
  } while (cursor !== '0');
  return parts.join('\n');
}

/** The fleet's own records in Postgres, as text. */
async function databaseText(prisma: PrismaClient): Promise<string> {
  const rows = await prisma.$queryRaw<{ text: string }[]>`
    SELECT a::text AS text FROM "AuditLog" a UNION ALL SELECT r::text FROM "FleetRun" r`;
  return rows.map((row) => row.text).join('\n');
}

/** `tys dashboard` as a child process, and what an operator's browser would fetch from it. */
function startDashboardProcess(env: NodeJS.ProcessEnv, port: number) {
  const child = killOnExit(
    spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'tys.js'), 'dashboard', '--port', String(port), '--host', '127.0.0.1'], {
      env,
      cwd: PROJECT_ROOT,
    }),
  );
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.on('close', resolve));
  const url = `http://127.0.0.1:${port}`;
  const auth = { authorization: `Basic ${Buffer.from(`operator:${env.DASHBOARD_PASSWORD}`).toString('base64')}` };
  return {
    output: () => output,
    async fetchAll(): Promise<string> {
      await until('the dashboard to answer', async () => (await fetch(`${url}/healthz`).catch(() => null)) !== null, 30_000);
      const bodies: string[] = [];
      const get = async (route: string, headers: Record<string, string> = auth) => {
        const response = await fetch(`${url}${route}`, { headers });
        bodies.push(`${route} ${response.status} ${JSON.stringify([...response.headers])}\n${await response.text()}`);
      };
      await get('/board/api/queues?activeQueue=lots&status=failed&page=1');
      for (const queue of ['constraints', 'metadata', 'alerts', 'corporate-actions']) {
        await get(`/board/api/queues?activeQueue=${queue}&status=completed&page=1`);
      }
      for (const route of ['/board', '/runs', '/metrics', '/healthz']) await get(route);
      await get('/board', {});
      return bodies.join('\n');
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
