// npm run bench -- [--n 100000] [--workers 1] [--sample 5000] [--cluster] [--paced 400/1s] [--paced-n 20000]
//
// Seeds N MVP investments into a scratch database and measures, in one run on
// the same data: the document's per-row script (on a sample), the set-based
// SQL bound, the BullMQ no-op ceiling (adding in the same process, and from a
// process of its own), and the fleet end to end (producer and worker
// processes until every job is done and `verify lots` passes), with what each
// part of the fleet spends in CPU per investment. With --cluster, also the
// fleet on a local Redis Cluster of 3 masters and 3 replicas (one lots shard
// per master), with the CPU each Redis node spends per investment. With
// --paced RATE, also a run paced at RATE (`tys enqueue --rate`) over the first
// --paced-n investments, next to the same jobs held to RATE by BullMQ's queue
// limiter (`tys worker --rate`), with the CPU and Redis calls each job costs.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { heapLimitFlags } from '../bin/heap-limit.js';
import { parseRate } from '../src/config/rate.js';
import { PROJECT_ROOT } from '../src/project-root.js';
import { createPrisma, type PrismaClient } from '../src/db/prisma.js';
import { lotsFamily } from '../src/families/lots.js';
import { openFleet } from '../src/fleet/context.js';
import { LocalRedisCluster } from '../tests/support/redis-cluster.js';
import { scratchTarget } from './scratch.js';
import { integerOption, refuse, scriptOptions } from './script-options.js';

const usage = `Usage: npm run bench -- [options]

Seeds N MVP investments into a scratch database (tys_bench, removed at the
end) and measures, in one run on the same data: the document's per-row script
on a sample, the set-based SQL bound, BullMQ's no-op ceiling, and the fleet
end to end, with the CPU each part spends per investment.

Options:
  --n N             investments to seed (default 100000)
  --workers K       worker processes for the fleet (default 1)
  --sample N        investments the per-row script runs over (default 5000)
  --concurrency N   overrides the lots family's concurrency
  --cluster         also the fleet on a local Redis Cluster of 3 masters
  --paced RATE      also a run paced at RATE, like 400/1s, next to BullMQ's limiter
  --paced-n N       investments of the paced runs (default 20000)
  --profile DIR     write V8 CPU profiles of the workers and the producer there
  -h, --help        this help`;

const values = scriptOptions('bench', usage, {
  n: { type: 'string', default: '100000' },
  workers: { type: 'string', default: '1' },
  sample: { type: 'string', default: '5000' },
  concurrency: { type: 'string' },
  cluster: { type: 'boolean', default: false },
  paced: { type: 'string' },
  'paced-n': { type: 'string', default: '20000' },
  profile: { type: 'string' },
});
const profileFlags = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(values.profile)}`] : [];
const N = integerOption('bench', 'n', values.n, 1);
const WORKERS = integerOption('bench', 'workers', values.workers, 1, 64);
const SAMPLE = Math.min(N, integerOption('bench', 'sample', values.sample, 1));
const PACED_N = Math.min(N, integerOption('bench', 'paced-n', values['paced-n'], 1));
const CONCURRENCY = values.concurrency === undefined ? undefined : integerOption('bench', 'concurrency', values.concurrency, 1, 10_000);
let pacedRate: { max: number; windowMs: number } | null = null;
try {
  pacedRate = values.paced === undefined ? null : parseRate(values.paced);
} catch (error) {
  refuse('bench', `--paced: ${(error as Error).message}`);
}

const scratch = scratchTarget('tys_bench', 'tys-bench');
const { server, dbUrl, redisUrl: REDIS_URL, prefix: PREFIX, env } = scratch;

const redis = new Redis(REDIS_URL);
const rate = (count: number, seconds: number) => Math.round(count / seconds);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const log = (line: string) => process.stderr.write(`${line}\n`);

const clearRedis = () => scratch.clearRedis(redis);

async function redisUsedMemory(): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
}

/**
 * The highest used_memory seen while it runs, sampled every 100 ms: Redis's
 * own used_memory_peak covers its whole life, earlier phases included.
 */
function sampleRedisPeak(): { stop(): Promise<number> } {
  let peak = 0;
  let sampling = Promise.resolve();
  const timer = setInterval(() => {
    sampling = sampling.then(async () => {
      peak = Math.max(peak, await redisUsedMemory());
    });
  }, 100);
  return {
    async stop() {
      clearInterval(timer);
      await sampling;
      return Math.max(peak, await redisUsedMemory());
    },
  };
}

async function sql(text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: dbUrl.toString() });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** CPU seconds a local process has used: /proc/<pid>/stat, utime + stime (+ its reaped children's). */
function processCpu(pid: number, withChildren = false): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]) + (withChildren ? Number(fields[13]) + Number(fields[14]) : 0);
  return ticks / 100; // USER_HZ
}

function pidsOf(name: string, flags: string[] = []): number[] {
  try {
    return execFileSync('pgrep', [...flags, '-x', name])
      .toString()
      .trim()
      .split('\n')
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * CPU seconds Redis and Postgres have used so far. Redis reports its own;
 * Postgres is every live server process plus the backends its postmaster
 * has already reaped (a producer's connections end before it is measured).
 * Postgres is null when its server is not on this machine.
 */
async function serverCpu(): Promise<{ redis: number; postgres: number | null }> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  const postmaster = pidsOf('postgres', ['-o'])[0];
  let postgres: number | null = null;
  if (postmaster !== undefined && ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(server.hostname)) {
    postgres = processCpu(postmaster, true);
    for (const pid of pidsOf('postgres')) {
      if (pid === postmaster) continue;
      try {
        postgres += processCpu(pid);
      } catch {
        // ended between the listing and the read; its postmaster has it
      }
    }
  }
  return { redis: field('used_cpu_user') + field('used_cpu_sys'), postgres };
}

/** Microseconds of CPU per item, rounded. */
const perItem = (seconds: number, items: number) => Math.round((seconds * 1e6) / items);

async function setup(): Promise<void> {
  await scratch.seed(N);
  await sql('VACUUM ANALYZE');
  await clearRedis();
}

/** The server is shared: the scratch database and every key under the prefix go once measured. */
async function teardown(): Promise<void> {
  await clearRedis();
  await scratch.dropDatabase();
}

/** 1. The document's scripts/migrate-to-tax-lots.ts, on a sample: findMany, then one create per row. */
async function documentApproach(): Promise<number> {
  const prisma = createPrisma(dbUrl.toString());
  const started = now();
  const investments = await prisma.investment.findMany({ take: SAMPLE });
  for (const investment of investments) {
    await prisma.taxLot.create({
      data: {
        investmentId: investment.id,
        purchaseDate: investment.createdAt,
        quantity: investment.totalQuantity,
        costBasisPerUnit: investment.averageCostBasis,
        fees: 0,
        remainingQuantity: investment.totalQuantity,
        status: 'OPEN',
      },
    });
  }
  const seconds = now() - started;
  await prisma.$disconnect();
  await sql('TRUNCATE "TaxLot" CASCADE');
  return rate(investments.length, seconds);
}

/** 2. The set-based bound: every lot in one INSERT ... SELECT. */
async function setBased(): Promise<number> {
  const started = now();
  await sql(`INSERT INTO "TaxLot" (id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", fees, "remainingQuantity", status, "updatedAt")
             SELECT gen_random_uuid()::text, id, "createdAt"::date, "totalQuantity", "averageCostBasis", 0, "totalQuantity", 'OPEN', now()
               FROM "Investment"`);
  const seconds = now() - started;
  await sql('TRUNCATE "TaxLot" CASCADE');
  await sql('VACUUM ANALYZE "TaxLot"');
  return rate(N, seconds);
}

/**
 * 3. BullMQ's ceiling: N no-op jobs through addBulk and a no-op worker, added
 * and drained at once. Measured twice: adding and working in this one
 * process, and adding from a process of its own (as the fleet does), which
 * lets both use a core. Also what each no-op job costs in CPU.
 */
async function bullmqCeiling(separateAdder: boolean) {
  const queueName = separateAdder ? 'noop-split' : 'noop';
  const queue = new Queue(queueName, { connection: redis, prefix: PREFIX });
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  let done = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const worker = new Worker(queueName, () => Promise.resolve(undefined), {
    connection,
    prefix: PREFIX,
    concurrency: lotsFamily.options.concurrency,
    removeOnComplete: { count: lotsFamily.options.keepCompleted, age: lotsFamily.options.keepCompletedHours * 3600 },
  });
  worker.on('completed', () => {
    done += 1;
    if (done === N) finish();
  });
  await worker.waitUntilReady();
  const serverBefore = await serverCpu();
  const ownCpu = process.cpuUsage();
  const started = now();
  let adderCpu = 0;
  if (separateAdder) {
    const adder = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'bench', 'noop-adder.ts'), queueName, PREFIX, String(N)], {
      env,
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    adder.stdout.on('data', (chunk) => (out += chunk));
    const code = await new Promise<number | null>((resolve) => adder.on('close', resolve));
    if (code !== 0) throw new Error(`no-op adder exited ${code}`);
    adderCpu = (JSON.parse(out) as { cpuSeconds: number }).cpuSeconds;
  } else {
    for (let i = 0; i < N; i += 1000) {
      const count = Math.min(1000, N - i);
      await queue.addBulk(Array.from({ length: count }, (_, k) => ({ name: 'noop', data: { k: i + k }, opts: { jobId: `noop-${i + k}` } })));
    }
  }
  await finished;
  const seconds = now() - started;
  const used = process.cpuUsage(ownCpu);
  const serverAfter = await serverCpu();
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  const nodeCpu = (used.user + used.system) / 1e6 + adderCpu;
  return { rate: rate(N, seconds), cpuUsPerJob: { node: perItem(nodeCpu, N), redis: perItem(serverAfter.redis - serverBefore.redis, N) } };
}

interface ProducerReport {
  added: number;
  seconds: number;
  cpuSeconds: number;
  maxRssMb: number;
  runId: string;
}

/** `args`: the producer's own (bench/producer.ts), after the family. */
function runProducer(producerEnv: NodeJS.ProcessEnv = env, args: string[] = []): Promise<ProducerReport> {
  return new Promise((resolve, reject) => {
    // Under the heap limit `tys enqueue` gives itself, so the RSS is the CLI's.
    const heapLimit = heapLimitFlags(['enqueue', 'lots', '--all'], process.execArgv, process.env.NODE_OPTIONS) ?? [];
    const child = spawn(
      process.execPath,
      [...heapLimit, ...profileFlags, '--import', 'tsx', path.join(PROJECT_ROOT, 'bench', 'producer.ts'), 'lots', ...args],
      {
        env: producerEnv,
        cwd: PROJECT_ROOT,
      },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => process.stderr.write(c));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as ProducerReport) : reject(new Error(`producer exited ${code}`))));
  });
}

function startWorker(workerEnv: NodeJS.ProcessEnv = env, extraArgs: string[] = []) {
  const args = [...profileFlags, path.join(PROJECT_ROOT, 'bin', 'tys.js'), 'worker', '--families', 'lots', ...extraArgs];
  if (CONCURRENCY) args.push('--concurrency', String(CONCURRENCY));
  const child = spawn(process.execPath, args, { env: workerEnv, cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, exited };
}

async function waitFor(check: () => Promise<boolean>, what: string, deadlineSeconds = 3600): Promise<void> {
  const deadline = now() + deadlineSeconds;
  while (!(await check())) {
    if (now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Whether the run has ended. Only its end is read: a paced run's scope lists
 * its 20,000 investments, and reading the whole row 20 times a second cost
 * Postgres more CPU than the fleet's own work, all of it counted as the
 * fleet's.
 */
async function runFinished(prisma: PrismaClient, runId: string): Promise<boolean> {
  const run = await prisma.fleetRun.findUnique({ where: { id: runId }, select: { finishedAt: true } });
  return Boolean(run?.finishedAt);
}

/** 4. The fleet: worker processes up, the producer enqueues lots --all, until the run has finished and verify passes. */
async function fleet() {
  const memoryBefore = await redisUsedMemory();
  const workers = Array.from({ length: WORKERS }, () => startWorker());
  // Workers are ready when BullMQ has registered them on the queue.
  const queue = new Queue('lots', { connection: redis, prefix: PREFIX });
  await waitFor(async () => (await queue.getWorkersCount()) >= WORKERS, 'workers to start', 60);
  const serverBefore = await serverCpu();
  const workerCpuBefore = workers.map(({ child }) => processCpu(child.pid!));
  const started = now();
  const redisPeak = sampleRedisPeak();
  const producer = await runProducer();
  const prisma = createPrisma(dbUrl.toString());
  await waitFor(() => runFinished(prisma, producer.runId), 'the run to finish');
  const report = await lotsFamily.verify!(prisma);
  const seconds = now() - started;
  const redisPeakBytes = await redisPeak.stop();
  const workerRssMb = workers.map(({ child }) => peakRssMb(child.pid!));
  const serverAfter = await serverCpu();
  const workerCpu = workers.reduce((sum, { child }, i) => sum + processCpu(child.pid!) - workerCpuBefore[i]!, 0);
  for (const { child } of workers) child.kill('SIGTERM');
  await Promise.all(workers.map(({ exited }) => exited));
  const run = await prisma.fleetRun.findUniqueOrThrow({ where: { id: producer.runId } });
  await prisma.$disconnect();
  const memoryAfter = await redisUsedMemory();
  const payload = JSON.stringify({ runId: producer.runId, key: 'i0000000000000000000' });
  await queue.close();
  if (!report.ok) throw new Error(`verify lots failed: ${report.problemCount} investments wrong`);
  return {
    rate: rate(N, seconds),
    seconds,
    run: { status: run.status, completed: run.completed, skipped: run.skipped, failed: run.failed },
    producer: { seconds: producer.seconds, rate: rate(producer.added, producer.seconds), maxRssMb: producer.maxRssMb },
    workerRssMb,
    // What one investment costs each part of the fleet, in µs of CPU (the
    // check by verify included): their sum bounds the rate these cores allow.
    cpuUsPerInvestment: {
      workers: perItem(workerCpu, N),
      producer: perItem(producer.cpuSeconds, N),
      redis: perItem(serverAfter.redis - serverBefore.redis, N),
      postgres: serverAfter.postgres === null || serverBefore.postgres === null ? null : perItem(serverAfter.postgres - serverBefore.postgres, N),
    },
    redis: { usedBefore: memoryBefore, usedAfter: memoryAfter, peak: redisPeakBytes },
    payloadBytes: Buffer.byteLength(payload),
  };
}

/**
 * 5b. The fleet on a local Redis Cluster: 3 masters with a replica each, the
 * lots queue in one shard per master. Reports the rate and what each node
 * spent per investment (INFO cpu before and after), masters and replicas.
 */
async function fleetOnCluster() {
  await sql('TRUNCATE "TaxLot" CASCADE');
  await sql('VACUUM ANALYZE "TaxLot"');
  const cluster = await LocalRedisCluster.start({ masters: 3 });
  try {
    const clusterEnv = { ...env, REDIS_CLUSTER_NODES: cluster.seeds };
    const nodes = cluster.seeds.split(',').map((seed) => ({ host: '127.0.0.1', port: Number(seed.split(':')[1]) }));
    const look = await openFleet({ databaseUrl: dbUrl.toString(), redisUrl: REDIS_URL, redisCluster: { nodes }, queuePrefix: PREFIX });
    const workers = Array.from({ length: WORKERS }, () => startWorker(clusterEnv));
    try {
      const shards = look.shardQueues(lotsFamily);
      await waitFor(async () => (await Promise.all(shards.map((queue) => queue.getWorkersCount()))).every((n) => n >= WORKERS), 'workers to start', 60);
      const nodesBefore = await cluster.cpuByNode();
      const workerCpuBefore = workers.map(({ child }) => processCpu(child.pid!));
      const postgresBefore = (await serverCpu()).postgres;
      const started = now();
      const producer = await runProducer(clusterEnv);
      await waitFor(() => runFinished(look.prisma, producer.runId), 'the run to finish');
      const report = await lotsFamily.verify!(look.prisma);
      const seconds = now() - started;
      const nodesAfter = await cluster.cpuByNode();
      const postgresAfter = (await serverCpu()).postgres;
      const workerCpu = workers.reduce((sum, { child }, i) => sum + processCpu(child.pid!) - workerCpuBefore[i]!, 0);
      if (!report.ok) throw new Error(`verify lots failed on the cluster: ${report.problemCount} investments wrong`);
      const perNode = nodesAfter.map((after) => ({
        port: after.port,
        role: after.role,
        cpuUs: perItem(after.cpuSeconds - (nodesBefore.find((b) => b.port === after.port)?.cpuSeconds ?? 0), N),
      }));
      return {
        rate: rate(N, seconds),
        seconds,
        shards: shards.length,
        cpuUsPerInvestment: {
          workers: perItem(workerCpu, N),
          producer: perItem(producer.cpuSeconds, N),
          redisNodes: perNode,
          postgres: postgresAfter === null || postgresBefore === null ? null : perItem(postgresAfter - postgresBefore, N),
        },
      };
    } finally {
      for (const { child } of workers) child.kill('SIGTERM');
      await Promise.all(workers.map(({ exited }) => exited));
      await look.close();
    }
  } finally {
    await cluster.stop();
  }
}

/** Commands Redis has run so far (INFO commandstats). */
async function redisCalls(): Promise<number> {
  const stats = await redis.info('commandstats');
  return [...stats.matchAll(/calls=(\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);
}

/**
 * 5c. PACED_N investments held to a rate, one way: by pacing their run
 * (`how: 'run'`, the producer's --rate) or by BullMQ's queue limiter on the
 * workers (`how: 'limiter'`). What each job costs the worker, Redis and
 * Postgres, and the Redis commands it takes (the bench's own looks included).
 */
async function pacedFleet(how: 'run' | 'limiter', text: string, per: { max: number; windowMs: number }) {
  await sql('TRUNCATE "TaxLot" CASCADE');
  await sql('VACUUM ANALYZE "TaxLot"');
  await clearRedis();
  const workers = Array.from({ length: WORKERS }, () => startWorker(env, how === 'limiter' ? ['--rate', text] : []));
  const queue = new Queue('lots', { connection: redis, prefix: PREFIX });
  const prisma = createPrisma(dbUrl.toString());
  try {
    await waitFor(async () => (await queue.getWorkersCount()) >= WORKERS, 'workers to start', 60);
    const serverBefore = await serverCpu();
    const callsBefore = await redisCalls();
    const workerCpuBefore = workers.map(({ child }) => processCpu(child.pid!));
    const started = now();
    const producer = await runProducer(env, how === 'run' ? [text, String(PACED_N)] : ['', String(PACED_N)]);
    await waitFor(() => runFinished(prisma, producer.runId), 'the paced run to finish');
    const seconds = now() - started;
    const serverAfter = await serverCpu();
    const callsAfter = await redisCalls();
    const workerCpu = workers.reduce((sum, { child }, i) => sum + processCpu(child.pid!) - workerCpuBefore[i]!, 0);
    const lots = await prisma.taxLot.count();
    if (lots < PACED_N) throw new Error(`the paced run (${how}) made ${lots} lots for ${PACED_N} investments`);
    return {
      how,
      jobs: PACED_N,
      rate: rate(PACED_N, seconds),
      target: Math.round((per.max * 1000) / per.windowMs),
      cpuUsPerJob: {
        workers: perItem(workerCpu, PACED_N),
        redis: perItem(serverAfter.redis - serverBefore.redis, PACED_N),
        postgres: serverAfter.postgres === null || serverBefore.postgres === null ? null : perItem(serverAfter.postgres - serverBefore.postgres, PACED_N),
      },
      redisCallsPerJob: Number(((callsAfter - callsBefore) / PACED_N).toFixed(1)),
    };
  } finally {
    for (const { child } of workers) child.kill('SIGTERM');
    await Promise.all(workers.map(({ exited }) => exited));
    await queue.close();
    await prisma.$disconnect();
  }
}

/** The producer alone, with no workers: how fast enqueueing is by itself. */
async function producerAlone() {
  await sql('TRUNCATE "TaxLot" CASCADE');
  await clearRedis();
  const producer = await runProducer();
  await clearRedis();
  return { rate: rate(producer.added, producer.seconds), seconds: producer.seconds, maxRssMb: producer.maxRssMb };
}

log(`seeding ${N} investments into ${dbUrl.pathname.slice(1)}...`);
await setup();
log('1/6 document approach...');
const documentRate = await documentApproach();
log('2/6 set-based SQL...');
const setRate = await setBased();
log('3/6 BullMQ no-op ceiling, one process...');
const bullOneProcess = await bullmqCeiling(false);
log('4/6 BullMQ no-op ceiling, adder in a process of its own...');
const bullTwoProcesses = await bullmqCeiling(true);
log('5/6 fleet end to end...');
const fleetResult = await fleet();
const clusterResult = values.cluster ? (log('5b/6 fleet on a local Redis Cluster...'), await fleetOnCluster()) : null;
const pacedResults = pacedRate
  ? [
      (log(`5c/6 ${PACED_N} jobs paced by their run at ${values.paced}...`), await pacedFleet('run', values.paced!, pacedRate)),
      (log(`5d/6 ${PACED_N} jobs held to ${values.paced} by BullMQ's limiter...`), await pacedFleet('limiter', values.paced!, pacedRate)),
    ]
  : [];
log('6/6 producer alone...');
const producerOnly = await producerAlone();
await teardown();
redis.disconnect();

// The fleet is held to the better of the two ceilings.
const bullRate = Math.max(bullOneProcess.rate, bullTwoProcesses.rate);
const cores = availableParallelism();
const fleetCpu = fleetResult.cpuUsPerInvestment;
const fleetCpuTotal = fleetCpu.workers + fleetCpu.producer + fleetCpu.redis + (fleetCpu.postgres ?? 0);
const noopCpuTotal = bullTwoProcesses.cpuUsPerJob.node + bullTwoProcesses.cpuUsPerJob.redis;
// On cores that every process shares, a rate is inversely proportional to
// the CPU one item costs. A no-op job costs BullMQ's share; an investment
// also costs Postgres its lot and audit entry, which no queue can spare. The
// ratio the fleet would reach if it added nothing else is therefore bounded
// by noop / (noop + Postgres); what it adds beyond both is its own overhead.
const postgresCpu = fleetCpu.postgres ?? 0;
const ownOverheadCpu = fleetCpuTotal - noopCpuTotal - postgresCpu;
const TARGET_RATE = 17_000;
const result = {
  at: new Date().toISOString(),
  n: N,
  cores,
  workers: WORKERS,
  concurrency: CONCURRENCY ?? lotsFamily.options.concurrency,
  batch: lotsFamily.options.batch,
  documentSample: SAMPLE,
  rates: {
    document: documentRate,
    setBased: setRate,
    bullmqNoop: bullRate,
    bullmqNoopOneProcess: bullOneProcess.rate,
    bullmqNoopTwoProcesses: bullTwoProcesses.rate,
    fleet: fleetResult.rate,
  },
  ratios: {
    fleetToDocument: +(fleetResult.rate / documentRate).toFixed(2),
    fleetToSetBased: +(fleetResult.rate / setRate).toFixed(3),
    fleetToBullmq: +(fleetResult.rate / bullRate).toFixed(3),
    fleetToBullmqBound: +(noopCpuTotal / (noopCpuTotal + postgresCpu)).toFixed(3),
  },
  cpuUsPerJob: {
    bullmqNoop: bullTwoProcesses.cpuUsPerJob,
    fleet: fleetCpu,
    fleetBeyondBullmqAndPostgres: ownOverheadCpu,
    // What the target leaves per investment on this machine's cores, all processes together.
    budgetAtTarget: Math.round((cores * 1e6) / TARGET_RATE),
  },
  fleet: fleetResult,
  cluster: clusterResult,
  paced: pacedResults,
  producerAlone: producerOnly,
};
const rows: [string, string][] = [
  ['document approach (per-row create)', `${documentRate}/s (sample ${SAMPLE})`],
  ['set-based INSERT ... SELECT', `${setRate}/s`],
  ['BullMQ no-op, add + drain in one process', `${bullOneProcess.rate}/s`],
  ['BullMQ no-op, adder in its own process', `${bullTwoProcesses.rate}/s`],
  ['fleet end to end (+ verify)', `${fleetResult.rate}/s in ${fleetResult.seconds.toFixed(1)} s`],
  ['fleet / document', `${result.ratios.fleetToDocument}x`],
  ['fleet / set-based', `${result.ratios.fleetToSetBased}x`],
  ['fleet / BullMQ ceiling (the better one)', `${result.ratios.fleetToBullmq}x`],
  ['CPU per no-op job: Node + Redis', `${bullTwoProcesses.cpuUsPerJob.node} + ${bullTwoProcesses.cpuUsPerJob.redis} = ${noopCpuTotal} µs`],
  [
    'CPU per investment: workers + producer + Redis + Postgres',
    `${fleetCpu.workers} + ${fleetCpu.producer} + ${fleetCpu.redis} + ${fleetCpu.postgres ?? '?'} = ${fleetCpuTotal} µs`,
  ],
  ['fleet / BullMQ ceiling if the fleet added nothing but Postgres', `${result.ratios.fleetToBullmqBound}x (no-op / (no-op + Postgres))`],
  ['CPU per investment beyond BullMQ and Postgres', `${fleetCpuTotal} - ${noopCpuTotal} - ${postgresCpu} = ${ownOverheadCpu} µs`],
  [`CPU per investment at ${TARGET_RATE}/s on ${cores} cores`, `${result.cpuUsPerJob.budgetAtTarget} µs`],
  ['producer while workers run', `${fleetResult.producer.rate}/s, peak RSS ${fleetResult.producer.maxRssMb.toFixed(0)} MB`],
  ['producer alone', `${producerOnly.rate}/s, peak RSS ${producerOnly.maxRssMb.toFixed(0)} MB`],
  ['worker peak RSS', fleetResult.workerRssMb.map((mb) => `${mb.toFixed(0)} MB`).join(', ')],
  [
    'Redis used_memory before / after / peak of the run',
    `${(fleetResult.redis.usedBefore / 2 ** 20).toFixed(1)} / ${(fleetResult.redis.usedAfter / 2 ** 20).toFixed(1)} / ${(fleetResult.redis.peak / 2 ** 20).toFixed(1)} MB`,
  ],
  ['job payload', `${fleetResult.payloadBytes} bytes`],
  ...clusterRows(),
  ...pacedResults.map(({ how, jobs, rate: achieved, target, cpuUsPerJob: cpu, redisCallsPerJob }): [string, string] => [
    `${jobs} jobs at ${target}/s, ${how === 'run' ? 'paced run' : "BullMQ's limiter"}: worker + Redis + Postgres CPU per job`,
    `${cpu.workers} + ${cpu.redis} + ${cpu.postgres ?? '?'} = ${cpu.workers + cpu.redis + (cpu.postgres ?? 0)} µs at ${achieved}/s, ${redisCallsPerJob} Redis calls per job`,
  ]),
];
function clusterRows(): [string, string][] {
  if (!clusterResult) return [];
  const { cpuUsPerInvestment: cpu } = clusterResult;
  const masters = cpu.redisNodes.filter((node) => node.role === 'master');
  const replicas = cpu.redisNodes.filter((node) => node.role !== 'master');
  const sum = (nodes: { cpuUs: number }[]) => nodes.reduce((total, node) => total + node.cpuUs, 0);
  return [
    [`fleet on a Redis Cluster, ${clusterResult.shards} shards (+ verify)`, `${clusterResult.rate}/s in ${clusterResult.seconds.toFixed(1)} s`],
    ['cluster: CPU per investment, workers + producer + Postgres', `${cpu.workers} + ${cpu.producer} + ${cpu.postgres ?? '?'} µs`],
    ['cluster: CPU per investment, each master', `${masters.map((node) => `${node.cpuUs}`).join(' + ')} = ${sum(masters)} µs`],
    ['cluster: CPU per investment, each replica', `${replicas.map((node) => `${node.cpuUs}`).join(' + ')} = ${sum(replicas)} µs`],
    ['one Redis: CPU per investment (above)', `${fleetCpu.redis} µs`],
  ];
}
const width = Math.max(...rows.map(([k]) => k.length));
console.log(`\nN = ${N} investments, ${WORKERS} worker process(es), concurrency ${result.concurrency}, batch ${result.batch.maxSize}\n`);
for (const [k, v] of rows) console.log(`| ${k.padEnd(width)} | ${v} |`);
const dir = path.join(PROJECT_ROOT, 'bench', 'results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `bench-${N}-${result.at.replace(/[:.]/g, '')}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
console.log(`\nwritten ${path.relative(PROJECT_ROOT, file)}`);
