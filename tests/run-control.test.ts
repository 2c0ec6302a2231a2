import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { seedMvp } from '../src/demo/seed.js';
import { throttleReasons } from '../src/fleet/db-health.js';
import { RunProgress } from '../src/fleet/runs/progress.js';
import { lotsFamily } from '../src/families/lots.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { fleetEnv, killSpawnedWorkers, runTys, spawnWorker, until } from './support/processes.js';

const INVESTMENTS = 4_000;

describe('run control: pause, resume, cancel', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    killSpawnedWorkers();
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /**
   * A database, a fleet and lots worker processes: by default two slow ones,
   * so that a run is still going when the test acts on it.
   */
  async function setup(options: { workerEnv?: Record<string, string>; investments?: number; workers?: number; workerArgs?: string[] } = {}) {
    const db: TestDatabase = await createTestDatabase();
    await seedMvp(db.prisma, { investments: options.investments ?? INVESTMENTS });
    const fleet = await testFleet(db);
    cleanups.push(async () => {
      await fleet.close();
      await db.drop();
    });
    const env = fleetEnv(fleet.config);
    for (let i = 0; i < (options.workers ?? 2); i += 1) {
      spawnWorker({ ...env, ...options.workerEnv }, ['--families', 'lots', ...(options.workerArgs ?? ['--concurrency', '2'])]);
    }
    const lots = () => db.prisma.taxLot.count();
    return { db, fleet, env, lots };
  }

  it('pause stops lot creation in every worker process within about a second; resume finishes with one lot each', async () => {
    const { db, fleet, env, lots } = await setup();
    const { runId } = await fleet.enqueue(lotsFamily);
    await until('some lots', async () => (await lots()) >= 200, 60_000);

    const paused = await runTys(['pause', '--run', runId!], env);
    expect(paused.stderr).toBe('');
    expect(paused.code).toBe(0);
    expect(paused.stdout).toMatch(new RegExp(`run ${runId}: PAUSED \\(completed \\d+`));
    const held = await lots();
    expect(held).toBeLessThan(INVESTMENTS);
    // Flat for 3 s, looked at five times a second.
    for (const deadline = Date.now() + 3_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      expect(await lots()).toBe(held);
    }
    expect((await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId! } })).status).toBe('PAUSED');
    expect((await runTys(['pause', '--run', runId!], env)).stdout).toMatch(/PAUSED/);
    // The worker processes sample the run's progress for the runs page's moving rate and chart.
    const progress = new RunProgress(fleet.context.redis, fleet.prefix);
    await until('a progress sample of the paused run', async () => (await progress.read(runId!)).some((sample) => sample.done === held), 15_000);

    const resumed = await runTys(['resume', '--run', runId!], env);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`run ${runId}: RUNNING`));
    const run = await fleet.waitForRun(runId!, 120_000);
    expect(run).toMatchObject({ status: 'COMPLETED', completed: INVESTMENTS, failed: 0 });
    expect(await lotsFamily.verify!(db.prisma)).toMatchObject({ ok: true, checked: INVESTMENTS });

    const again = await runTys(['pause', '--run', runId!], env);
    expect(again.code).toBe(2);
    expect(again.stderr.trim()).toBe(`error: tys pause: run ${runId} has ended (COMPLETED): nothing to pause`);
    const unknown = await runTys(['cancel', '--run', 'run-20990101T000000Z-abcdef'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no run run-20990101T000000Z-abcdef/);
  });

  it('cancel removes the jobs that have not started, ends CANCELLED with its counts, and the next enqueue finishes the rest', async () => {
    const { db, fleet, env, lots } = await setup();
    const { runId } = await fleet.enqueue(lotsFamily);
    await until('some lots', async () => (await lots()) >= 200, 60_000);

    const cancelled = await runTys(['cancel', '--run', runId!], env);
    expect(cancelled.stderr).toBe('');
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toMatch(/job\(s\) that had not started removed/);
    const record = await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId! } });
    expect(record.status).toBe('CANCELLED');
    expect(record.finishedAt).not.toBeNull();
    const made = await lots();
    expect(made).toBeLessThan(INVESTMENTS);
    expect(record.completed).toBe(made);
    const queue = fleet.context.queue(lotsFamily);
    const left = await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized', 'failed', 'completed']);
    expect(left.filter((job) => job.data?.runId === runId)).toEqual([]);

    const rest = await fleet.enqueue(lotsFamily);
    expect(rest.added).toBe(INVESTMENTS - made);
    expect(await fleet.waitForRun(rest.runId!, 120_000)).toMatchObject({ status: 'COMPLETED', completed: INVESTMENTS - made });
    expect(await lotsFamily.verify!(db.prisma)).toMatchObject({ ok: true, checked: INVESTMENTS });
  });

  it('cancel hands the jobs that a later run follows to that run, which ends with every lot', async () => {
    const { db, fleet, env, lots } = await setup();
    const first = await fleet.enqueue(lotsFamily);
    await until('some lots', async () => (await lots()) >= 200, 60_000);
    // A second enqueue finds the first run's jobs still queued and follows them.
    const second = await fleet.enqueue(lotsFamily);
    expect(second.alreadyQueued).toBeGreaterThan(0);

    const cancelled = await runTys(['cancel', '--run', first.runId!], env);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toMatch(new RegExp(`job\\(s\\) handed to the runs that follow them \\(${second.runId}\\)`));
    expect((await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: first.runId! } })).status).toBe('CANCELLED');
    const queue = fleet.context.queue(lotsFamily);
    const left = await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized', 'failed', 'completed']);
    expect(left.filter((job) => job.data?.runId === first.runId)).toEqual([]);

    expect(await fleet.waitForRun(second.runId!, 120_000)).toMatchObject({ status: 'COMPLETED', failed: 0, total: second.added + second.alreadyQueued });
    expect(await lots()).toBe(INVESTMENTS);
    expect(await lotsFamily.verify!(db.prisma)).toMatchObject({ ok: true, checked: INVESTMENTS });
  }, 180_000);

  it('throttles while the database shows sessions waiting on locks, says why, and recovers with nothing failed', async () => {
    const { db, fleet, env, lots } = await setup({ workerEnv: { TYS_THROTTLE_LOCK_WAITERS: '1' } });
    const { runId } = await fleet.enqueue(lotsFamily);
    await until('some lots', async () => (await lots()) >= 200, 60_000);
    const throttled = () => throttleReasons(fleet.context.redis, fleet.prefix, ['lots']);
    // Another session holds the audit table: the fleet's writes queue up behind it.
    const blocker = new pg.Client({ connectionString: db.url, application_name: 'long-report' });
    await blocker.connect();
    try {
      await blocker.query('BEGIN; LOCK TABLE "AuditLog" IN ACCESS EXCLUSIVE MODE');
      await until('the fleet to throttle', async () => Boolean((await throttled()).lots), 30_000);
      const status = JSON.parse((await runTys(['status', '--json'], env)).stdout);
      expect(status.throttled.lots).toMatch(/^\d+ sessions waiting on locks \(limit 1\)$/);
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    await until('the throttle to lift', async () => !(await throttled()).lots, 30_000);
    const run = await fleet.waitForRun(runId!, 120_000);
    expect(run).toMatchObject({ status: 'COMPLETED', completed: INVESTMENTS, failed: 0 });
    expect(await lotsFamily.verify!(db.prisma)).toMatchObject({ ok: true, checked: INVESTMENTS });
  });

  it('tys worker --rate bounds how many jobs start per window, across the queue', async () => {
    const { db, fleet } = await setup({ investments: 40, workers: 1, workerArgs: ['--rate', '10/1s'] });
    const run = await fleet.waitForRun((await fleet.enqueue(lotsFamily)).runId!, 60_000);
    expect(run).toMatchObject({ status: 'COMPLETED', completed: 40 });
    const made = (await db.prisma.auditLog.findMany({ where: { action: 'CREATE_TAX_LOT' }, select: { createdAt: true } }))
      .map((a) => a.createdAt.getTime())
      .sort((a, b) => a - b);
    expect(made).toHaveLength(40);
    // Any 11 lots span a good part of the window, and the 40 at least three
    // windows: the limiter counts on Redis's clock when a job starts, these
    // times are Postgres's when its batch writes (the first batch, on cold
    // connections, is written latest). Without the limit all 40 are written
    // within a few ms.
    for (let i = 0; i + 10 < made.length; i += 1) expect(made[i + 10]! - made[i]!, `lots ${i}..${i + 10}`).toBeGreaterThanOrEqual(500);
    expect(made[39]! - made[0]!).toBeGreaterThanOrEqual(2_500);
  });

  it("tys enqueue --rate paces one run across every worker process, and leaves the family's other runs alone", async () => {
    const { db, fleet, env } = await setup({ investments: 60, workers: 2, workerArgs: ['--concurrency', '50'] });
    const ids = (await db.prisma.investment.findMany({ select: { id: true }, orderBy: { id: 'asc' } })).map((row) => String(row.id));
    const paced = await runTys(['enqueue', 'lots', ...ids.slice(0, 30).flatMap((id) => ['--investment', id]), '--rate', '5/1s'], env);
    expect(paced.stderr).toBe('');
    expect(paced.code).toBe(0);
    const pacedRun = /run (run-\S+): lots/.exec(paced.stdout)![1]!;
    // Its id comes first, as soon as the run exists: a paced run's jobs are added as it goes.
    expect(paced.stdout.split('\n').find((line) => line.startsWith('run '))).toMatch(
      new RegExp(`^run ${pacedRun}: lots over .+, paced at 5/1s: adding its jobs as it goes \\(tys status --run ${pacedRun}\\)$`),
    );
    // Another run of the family is not held by the first one's rate: it ends while the paced run still goes.
    const other = await fleet.waitForRun((await fleet.enqueue(lotsFamily, { kind: 'investments', ids: ids.slice(30) })).runId!, 60_000);
    expect(other).toMatchObject({ status: 'COMPLETED', completed: 30 });
    expect((await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: pacedRun } })).finishedAt).toBeNull();
    expect(await fleet.waitForRun(pacedRun, 60_000)).toMatchObject({ status: 'COMPLETED', completed: 30 });
    const made = (
      await db.prisma.auditLog.findMany({ where: { action: 'CREATE_TAX_LOT', metadata: { path: ['runId'], equals: pacedRun } }, select: { createdAt: true } })
    )
      .map((a) => a.createdAt.getTime())
      .sort((a, b) => a - b);
    expect(made).toHaveLength(30);
    // Evenly spread: any 6 starts span most of a second (write times are Postgres's, slots Redis's).
    for (let i = 0; i + 5 < made.length; i += 1) expect(made[i + 5]! - made[i]!, `lots ${i}..${i + 5}`).toBeGreaterThanOrEqual(750);
    expect((await runTys(['enqueue', 'lots', '--all', '--rate', 'fast'], env)).stderr.trim()).toBe(
      'error: tys enqueue: --rate must look like 500/1s or 100/1m (1 to 1,000,000,000 per 1ms to 24 days), got "fast"',
    );
  });
});
