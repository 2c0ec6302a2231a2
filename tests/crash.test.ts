import { openFleet } from '../src/fleet/context.js';
import { reconcileRuns } from '../src/fleet/runs/reconciler.js';
import { afterAll, describe, expect, it } from 'vitest';
import { lotsFamily } from '../src/families/lots.js';
import { seedMvp } from '../src/demo/seed.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { flushPrefix, testFleet } from './support/fleet.js';
import { fleetEnv, killSpawnedWorkers, spawnWorker, until } from './support/processes.js';
import { PrivateRedis } from './support/redis-server.js';

const INVESTMENTS = 3_000;

async function lotCount(db: TestDatabase): Promise<number> {
  return db.prisma.taxLot.count();
}

async function expectOneLotEach(db: TestDatabase): Promise<void> {
  const duplicates = await db.prisma.$queryRaw<{ id: string }[]>`
    SELECT "investmentId" AS id FROM "TaxLot" GROUP BY "investmentId" HAVING count(*) > 1`;
  expect(duplicates).toEqual([]);
  const report = await lotsFamily.verify!(db.prisma);
  expect(report).toMatchObject({ ok: true, checked: INVESTMENTS, problemCount: 0 });
}

describe('crashes and restarts', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    killSpawnedWorkers();
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function setup() {
    const db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: INVESTMENTS });
    const fleet = await testFleet(db);
    cleanups.push(async () => {
      await fleet.close();
      await db.drop();
    });
    return { db, fleet };
  }

  it('a worker killed with SIGKILL mid-run, and a new one started, still leaves exactly one lot each', async () => {
    const { db, fleet } = await setup();
    const env = fleetEnv(fleet.config, { TYS_LOCK_DURATION_MS: '2000', TYS_STALLED_INTERVAL_MS: '1000' });
    const first = spawnWorker(env, ['--families', 'lots', '--concurrency', '10']);
    const { runId } = await fleet.enqueue(lotsFamily);
    await until('the first worker to create some lots', async () => (await lotCount(db)) >= 300);
    first.kill('SIGKILL');
    const killed = await first.exited;
    expect(killed.signal).toBe('SIGKILL');
    const atKill = await lotCount(db);
    expect(atKill).toBeLessThan(INVESTMENTS);

    const second = spawnWorker(env, ['--families', 'lots', '--concurrency', '10']);
    const run = await fleet.waitForRun(runId!);
    second.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);

    expect(run.status).toBe('COMPLETED');
    expect(run.completed + run.skipped).toBe(INVESTMENTS);
    await expectOneLotEach(db);
  });

  it('SIGTERM under load lets active jobs finish, exits 0 and leaves no job active', async () => {
    const { db, fleet } = await setup();
    const env = fleetEnv(fleet.config);
    const worker = spawnWorker(env, ['--families', 'lots', '--concurrency', '20']);
    const { runId } = await fleet.enqueue(lotsFamily);
    await until('the worker to create some lots', async () => (await lotCount(db)) >= 200);
    worker.kill('SIGTERM');
    const exit = await worker.exited;
    expect(exit.code).toBe(0);
    const counts = await fleet.context.queue(lotsFamily).getJobCounts('active', 'waiting', 'completed');
    expect(counts.active).toBe(0);
    expect(counts.waiting).toBeGreaterThan(0);
    // Every job that was active at SIGTERM finished: the lots in the database match the completed jobs.
    expect(await lotCount(db)).toBe((await fleet.context.runs.counters(lotsFamily.name, runId!))!.completed);

    fleet.startWorkers([lotsFamily]);
    const run = await fleet.waitForRun(runId!);
    expect(run).toMatchObject({ status: 'COMPLETED', completed: INVESTMENTS, skipped: 0 });
    await expectOneLotEach(db);
  });

  it('Redis losing every job mid-run: the run is reported interrupted and enqueuing again converges', async () => {
    const { db, fleet } = await setup();
    // A job that was active when Redis lost its keys comes back only through
    // the stalled-job check; the next run follows it, so it must come soon.
    fleet.startWorkers([lotsFamily], { concurrency: 5, lockDuration: 2_000, stalledInterval: 1_000 });
    const first = await fleet.enqueue(lotsFamily);
    await until('some lots', async () => (await lotCount(db)) >= 200);
    expect(await flushPrefix(fleet.prefix)).toBeGreaterThan(0);

    // The process that created the run saw this Redis's marker: its loss is evidence, and reconciling records it.
    expect(await reconcileRuns(fleet.context.runs)).toMatchObject({ interrupted: 1 });
    const lost = await fleet.context.runs.get(first.runId!);
    expect(lost).toMatchObject({ status: 'INTERRUPTED', live: false });
    const partial = await lotCount(db);
    expect(partial).toBeLessThan(INVESTMENTS);

    const second = await fleet.enqueue(lotsFamily);
    // Only what is missing is enqueued (a few jobs may finish between the count and the enqueue).
    expect(second.added).toBeLessThanOrEqual(INVESTMENTS - partial);
    expect(second.added).toBeGreaterThan(0);
    const run = await fleet.waitForRun(second.runId!, 40_000);
    expect(run.status).toBe('COMPLETED');
    await expectOneLotEach(db);
  });

  it('a worker started while Redis is down waits for it, works once it is back, and stops cleanly either way', async () => {
    const { fleet } = await setup();
    const redis = await PrivateRedis.start();
    cleanups.push(() => redis.stop());
    await redis.stop();
    const env = fleetEnv({ ...fleet.config, redisUrl: redis.url }, { TYS_LOG_LEVEL: 'info' });

    const early = spawnWorker(env, ['--families', 'lots']);
    await until('the worker to say it waits', () => early.output().includes('waiting for Redis'), 30_000);
    early.kill('SIGTERM');
    const stopped = await early.exited;
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toMatch(/workers stopped before Redis could be reached/);

    const patient = spawnWorker(env, ['--families', 'lots']);
    await until('the worker to say it waits', () => patient.output().includes('waiting for Redis'), 30_000);
    await redis.restart();
    await until('the worker to start once Redis is back', () => patient.output().includes('"msg":"workers started"'), 30_000);
    patient.kill('SIGTERM');
    expect((await patient.exited).code).toBe(0);
  });

  it('a worker stopped just after a Redis restart, while it reconnects, still exits 0 promptly', async () => {
    const { db, fleet } = await setup();
    const redis = await PrivateRedis.start();
    cleanups.push(() => redis.stop());
    const config = { ...fleet.config, redisUrl: redis.url };
    const env = fleetEnv(config, { TYS_SHUTDOWN_TIMEOUT_MS: '20000', TYS_LOG_LEVEL: 'info' });
    const producer = await openFleet(config);
    cleanups.push(() => producer.close());
    // BullMQ's close could wait forever on a connection caught reconnecting; the
    // window is a moment wide, so the stop is tried a few times, with jobs
    // flowing, at once after the restart each time.
    for (let attempt = 0; attempt < 6; attempt += 1) {
      await db.prisma.taxLot.deleteMany();
      const worker = spawnWorker(env, ['--concurrency', '50']);
      await until('the worker to start', () => worker.output().includes('"msg":"workers started"'), 30_000);
      await producer.enqueue(lotsFamily);
      await until('some lots', async () => (await lotCount(db)) >= 100, 30_000, 20);
      await redis.restart();
      const stopped = Date.now();
      worker.kill('SIGTERM');
      const exit = await worker.exited;
      expect(exit.code, `attempt ${attempt}: ${exit.stdout.split('\n').slice(-3).join(' | ')}`).toBe(0);
      expect(Date.now() - stopped).toBeLessThan(16_000);
    }
  });
});
