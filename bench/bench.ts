// npm run bench -- [--n 100000] [--workers 1] [--sample 5000]
//
// Seeds N MVP investments into a scratch database and measures, in one run on
// the same data: the document's per-row script (on a sample), the set-based
// SQL bound, the BullMQ no-op ceiling, and the fleet end to end (producer and
// worker processes until every job is done and `verify lots` passes).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { heapLimitFlags } from '../bin/heap-limit.js';
import { deployMigrations, PROJECT_ROOT } from '../src/db/migrations.js';
import { createPrisma } from '../src/db/prisma.js';
import { seedMvp } from '../src/demo/seed.js';
import { lotsFamily } from '../src/families/lots.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    workers: { type: 'string', default: '1' },
    sample: { type: 'string', default: '5000' },
    concurrency: { type: 'string' },
  },
});
const N = Number(values.n);
const WORKERS = Number(values.workers);
const SAMPLE = Math.min(N, Number(values.sample));
if (![N, WORKERS, SAMPLE].every((v) => Number.isInteger(v) && v > 0)) {
  console.error('error: --n, --workers and --sample must be positive integers');
  process.exit(2);
}

const server = new URL(process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres');
const DB = 'tys_bench';
const dbUrl = new URL(server.toString());
dbUrl.pathname = `/${DB}`;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = 'tys-bench';
const env = { ...process.env, DATABASE_URL: dbUrl.toString(), REDIS_URL, TYS_QUEUE_PREFIX: PREFIX, TYS_LOG_LEVEL: 'warn' };

const redis = new Redis(REDIS_URL);
const rate = (count: number, seconds: number) => Math.round(count / seconds);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const log = (line: string) => process.stderr.write(`${line}\n`);

async function clearRedis(): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 5000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}

async function redisMemory(): Promise<{ used: number; peak: number }> {
  const info = await redis.info('memory');
  const field = (name: string) => Number(/^(\w+):(\d+)/m.exec(info.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '')?.[2] ?? 0);
  return { used: field('used_memory'), peak: field('used_memory_peak') };
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

async function setup(): Promise<void> {
  const admin = new pg.Client({ connectionString: server.toString() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${DB}" WITH (FORCE)`);
  await admin.end();
  await deployMigrations(dbUrl.toString());
  const prisma = createPrisma(dbUrl.toString());
  await seedMvp(prisma, { investments: N });
  await prisma.$disconnect();
  await sql('VACUUM ANALYZE');
  await clearRedis();
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

/** 3. BullMQ's ceiling: N no-op jobs through addBulk and a no-op worker. */
async function bullmqCeiling(): Promise<number> {
  const queue = new Queue('noop', { connection: redis, prefix: PREFIX });
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  let done = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const worker = new Worker('noop', async () => undefined, {
    connection,
    prefix: PREFIX,
    concurrency: lotsFamily.options.concurrency,
    removeOnComplete: { count: lotsFamily.options.keepCompleted },
  });
  worker.on('completed', () => {
    done += 1;
    if (done === N) finish();
  });
  await worker.waitUntilReady();
  const started = now();
  for (let i = 0; i < N; i += 1000) {
    const count = Math.min(1000, N - i);
    await queue.addBulk(Array.from({ length: count }, (_, k) => ({ name: 'noop', data: { k: i + k }, opts: { jobId: `noop-${i + k}` } })));
  }
  await finished;
  const seconds = now() - started;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  return rate(N, seconds);
}

function runProducer(): Promise<{ added: number; seconds: number; maxRssMb: number; runId: string }> {
  return new Promise((resolve, reject) => {
    // Under the heap limit `tys enqueue` gives itself, so the RSS is the CLI's.
    const heapLimit = heapLimitFlags(['enqueue', 'lots', '--all'], process.execArgv, process.env.NODE_OPTIONS) ?? [];
    const child = spawn(process.execPath, [...heapLimit, '--import', 'tsx', path.join(PROJECT_ROOT, 'bench', 'producer.ts'), 'lots'], { env, cwd: PROJECT_ROOT });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => process.stderr.write(c));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`producer exited ${code}`))));
  });
}

function startWorker() {
  const args = [path.join(PROJECT_ROOT, 'bin', 'tys.js'), 'worker', '--families', 'lots'];
  if (values.concurrency) args.push('--concurrency', values.concurrency);
  const child = spawn(process.execPath, args, { env, cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
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

/** 4. The fleet: worker processes up, the producer enqueues lots --all, until the run has finished and verify passes. */
async function fleet() {
  const memoryBefore = await redisMemory();
  const workers = Array.from({ length: WORKERS }, startWorker);
  // Workers are ready when BullMQ has registered them on the queue.
  const queue = new Queue('lots', { connection: redis, prefix: PREFIX });
  await waitFor(async () => (await queue.getWorkersCount()) >= WORKERS, 'workers to start', 60);
  const started = now();
  const producer = await runProducer();
  const prisma = createPrisma(dbUrl.toString());
  await waitFor(async () => Boolean((await prisma.fleetRun.findUnique({ where: { id: producer.runId } }))?.finishedAt), 'the run to finish');
  const report = await lotsFamily.verify!(prisma);
  const seconds = now() - started;
  const workerRssMb = workers.map(({ child }) => peakRssMb(child.pid!));
  for (const { child } of workers) child.kill('SIGTERM');
  await Promise.all(workers.map(({ exited }) => exited));
  const run = await prisma.fleetRun.findUniqueOrThrow({ where: { id: producer.runId } });
  await prisma.$disconnect();
  const memoryAfter = await redisMemory();
  const payload = JSON.stringify({ runId: producer.runId, key: 'i0000000000000000000' });
  await queue.close();
  if (!report.ok) throw new Error(`verify lots failed: ${report.problemCount} investments wrong`);
  return {
    rate: rate(N, seconds),
    seconds,
    run: { status: run.status, completed: run.completed, skipped: run.skipped, failed: run.failed },
    producer: { seconds: producer.seconds, rate: rate(producer.added, producer.seconds), maxRssMb: producer.maxRssMb },
    workerRssMb,
    redis: { usedBefore: memoryBefore.used, usedAfter: memoryAfter.used, peak: memoryAfter.peak },
    payloadBytes: Buffer.byteLength(payload),
  };
}

/** The producer alone, with no workers: how fast enqueueing is by itself. */
async function producerAlone() {
  await sql('TRUNCATE "TaxLot" CASCADE');
  await clearRedis();
  const producer = await runProducer();
  await clearRedis();
  return { rate: rate(producer.added, producer.seconds), seconds: producer.seconds, maxRssMb: producer.maxRssMb };
}

log(`seeding ${N} investments into ${DB}...`);
await setup();
log('1/5 document approach...');
const documentRate = await documentApproach();
log('2/5 set-based SQL...');
const setRate = await setBased();
log('3/5 BullMQ no-op ceiling...');
const bullRate = await bullmqCeiling();
log('4/5 fleet end to end...');
const fleetResult = await fleet();
log('5/5 producer alone...');
const producerOnly = await producerAlone();
redis.disconnect();

const result = {
  at: new Date().toISOString(),
  n: N,
  workers: WORKERS,
  concurrency: values.concurrency ? Number(values.concurrency) : lotsFamily.options.concurrency,
  batch: lotsFamily.options.batch,
  documentSample: SAMPLE,
  rates: { document: documentRate, setBased: setRate, bullmqNoop: bullRate, fleet: fleetResult.rate },
  ratios: {
    fleetToDocument: +(fleetResult.rate / documentRate).toFixed(2),
    fleetToSetBased: +(fleetResult.rate / setRate).toFixed(3),
    fleetToBullmq: +(fleetResult.rate / bullRate).toFixed(3),
  },
  fleet: fleetResult,
  producerAlone: producerOnly,
};
const rows: [string, string][] = [
  ['document approach (per-row create)', `${documentRate}/s (sample ${SAMPLE})`],
  ['set-based INSERT ... SELECT', `${setRate}/s`],
  ['BullMQ no-op ceiling', `${bullRate}/s`],
  ['fleet end to end (+ verify)', `${fleetResult.rate}/s in ${fleetResult.seconds.toFixed(1)} s`],
  ['fleet / document', `${result.ratios.fleetToDocument}x`],
  ['fleet / set-based', `${result.ratios.fleetToSetBased}x`],
  ['fleet / BullMQ ceiling', `${result.ratios.fleetToBullmq}x`],
  ['producer while workers run', `${fleetResult.producer.rate}/s, peak RSS ${fleetResult.producer.maxRssMb.toFixed(0)} MB`],
  ['producer alone', `${producerOnly.rate}/s, peak RSS ${producerOnly.maxRssMb.toFixed(0)} MB`],
  ['worker peak RSS', fleetResult.workerRssMb.map((mb) => `${mb.toFixed(0)} MB`).join(', ')],
  ['Redis used_memory before / after / peak', `${(fleetResult.redis.usedBefore / 2 ** 20).toFixed(1)} / ${(fleetResult.redis.usedAfter / 2 ** 20).toFixed(1)} / ${(fleetResult.redis.peak / 2 ** 20).toFixed(1)} MB`],
  ['job payload', `${fleetResult.payloadBytes} bytes`],
];
const width = Math.max(...rows.map(([k]) => k.length));
console.log(`\nN = ${N} investments, ${WORKERS} worker process(es), concurrency ${result.concurrency}, batch ${result.batch.maxSize}\n`);
for (const [k, v] of rows) console.log(`| ${k.padEnd(width)} | ${v} |`);
const dir = path.join(PROJECT_ROOT, 'bench', 'results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `bench-${N}-${result.at.replace(/[:.]/g, '')}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
console.log(`\nwritten ${path.relative(PROJECT_ROOT, file)}`);
