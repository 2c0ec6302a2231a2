import { reconcileRuns } from '../src/fleet/runs/reconciler.js';
import { spawn } from 'node:child_process';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../src/project-root.js';
import { openFleet } from '../src/fleet/context.js';
import { enqueue } from '../src/fleet/producer.js';
import { newRunId } from '../src/fleet/runs/store.js';
import { seedMvp } from '../src/demo/seed.js';
import { lotsFamily } from '../src/families/lots.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { REDIS_URL, testFleet } from './support/fleet.js';
import { fleetEnv, killOnExit, killSpawnedWorkers, runTys, spawnWorker, until } from './support/processes.js';
import { PrivateRedis } from './support/redis-server.js';

const INVESTMENTS = 300;

/** `tys ...` as a child process whose output can be watched while it runs. */
function startTys(args: string[], env: NodeJS.ProcessEnv) {
  const child = killOnExit(spawn(process.execPath, ['bin/tys.js', ...args], { env, cwd: PROJECT_ROOT }));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

describe('--wait, status and stopping workers', () => {
  const cleanups: (() => Promise<void>)[] = [];
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let env: NodeJS.ProcessEnv;

  beforeEach(async () => {
    db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: INVESTMENTS });
    fleet = await testFleet(db);
    env = fleetEnv(fleet.config);
    const [thisDb, thisFleet] = [db, fleet];
    cleanups.push(async () => {
      await thisFleet.close();
      await thisDb.drop();
    });
  });
  afterAll(async () => {
    killSpawnedWorkers();
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('exits 0 only once every row is done, following the jobs a dead worker still holds', async () => {
    const earlier = await fleet.enqueue(lotsFamily);
    expect(earlier.added).toBe(INVESTMENTS);
    // A worker takes 50 jobs and dies holding their locks.
    const doomed = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const taker = new Worker(lotsFamily.name, null, { connection: doomed, prefix: fleet.prefix, lockDuration: 3_000 });
    for (let i = 0; i < 50; i++) expect(await taker.getNextJob(`dead-${i}`)).toBeTruthy();
    doomed.disconnect();
    expect((await fleet.context.queue(lotsFamily).getJobCounts('active')).active).toBe(50);

    const waiting = startTys(['enqueue', 'lots', '--all', '--wait'], env);
    await until('the run to be enqueued', () => /^run run-\S+: .*: added \d+ jobs/m.test(waiting.stdout()), 30_000);
    expect(waiting.stdout()).toMatch(/added 0 jobs \(300 already queued by an earlier run, followed by this run/);
    spawnWorker(fleetEnv(fleet.config, { TYS_LOCK_DURATION_MS: '3000', TYS_STALLED_INTERVAL_MS: '1000' }), ['--families', 'lots']);
    expect(await waiting.exited).toBe(0);
    expect(waiting.stdout()).toMatch(/finished: 300 completed, 0 skipped, 0 failed/);
    // Done means done: every investment has its lot the moment --wait returns.
    expect(await lotsFamily.verify!(db.prisma)).toMatchObject({ ok: true, checked: INVESTMENTS });
  });

  it('with no worker: says so once, gives up at --timeout with exit 1, and the run stays as it was', async () => {
    const result = await runTys(['enqueue', 'lots', '--all', '--wait', '--timeout', '17s'], env);
    expect(result.code).toBe(1);
    expect(result.stderr.match(/no worker is processing "lots": start one with tys worker --families lots/g)).toHaveLength(1);
    expect(result.stderr).toMatch(/gave up waiting after 17s; run (run-\S+) goes on in the background/);
    expect(result.stdout).not.toMatch(/\d{4,}\/s/);
    const runId = /run (run-\S+) goes on/.exec(result.stderr)![1]!;
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({ status: 'RUNNING', finishedAt: null });
  });

  it('Ctrl-C stops waiting, exit 130, and leaves the run and its jobs as they were', async () => {
    const waiting = startTys(['enqueue', 'lots', '--all', '--wait'], env);
    await until('the run to be enqueued', () => /^run run-\S+: .*: added \d+ jobs/m.test(waiting.stdout()), 30_000);
    const runId = /^run (run-\S+):/m.exec(waiting.stdout())![1]!;
    waiting.child.kill('SIGINT');
    expect(await waiting.exited).toBe(130);
    expect(waiting.stderr()).toMatch(`stopped waiting; run ${runId} goes on in the background while workers run: watch it with tys status --run ${runId}`);
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({ status: 'RUNNING', total: INVESTMENTS });
    expect((await fleet.context.queue(lotsFamily).getJobCounts('waiting')).waiting).toBe(INVESTMENTS);
  });

  it('Ctrl-C while a paced run is being added stops adding, exit 130: the run keeps the jobs already added, sealed', async () => {
    // 50/1s adds a page of 50 every 500 ms at most: the last of 300 jobs 2.5 s after the first.
    const adding = startTys(['enqueue', 'lots', '--all', '--rate', '50/1s', '--page-size', '50'], env);
    const queue = fleet.context.queue(lotsFamily);
    await until('a first page to be added', async () => ((await queue.getJobCounts('delayed')).delayed ?? 0) >= 50, 30_000);
    adding.child.kill('SIGINT');
    expect(await adding.exited).toBe(130);
    const [, runId, added] = /^run (run-\S+) stopped enqueuing after (\d+) jobs \(they still run\): interrupted by SIGINT; enqueue again for the rest$/m.exec(
      adding.stderr(),
    )!;
    expect(Number(added)).toBeGreaterThanOrEqual(50);
    expect(Number(added)).toBeLessThan(INVESTMENTS);
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId! } })).toMatchObject({ status: 'RUNNING', total: Number(added) });
    expect((await queue.getJobCounts('delayed')).delayed).toBe(Number(added));
  });

  it('an enqueue killed outright while adding: once its hold lapses the workers seal its run with the jobs it added, and the run ends', async () => {
    // 50/1s adds a page of 20 every 200 ms at most.
    const adding = startTys(['enqueue', 'lots', '--all', '--rate', '50/1s', '--page-size', '20'], { ...env, TYS_PRODUCER_LEASE: '1s' });
    const queue = fleet.context.queue(lotsFamily);
    await until('a first page to be added', async () => ((await queue.getJobCounts('delayed')).delayed ?? 0) >= 20, 30_000);
    adding.child.kill('SIGKILL');
    await adding.exited;
    const { id: runId } = await db.prisma.fleetRun.findFirstOrThrow({ where: { status: 'ENQUEUEING' } });
    let sealed = 0;
    await until('the workers to seal the run', async () => (sealed += (await reconcileRuns(fleet.context.runs)).abandoned) > 0, 15_000);
    expect(sealed).toBe(1);
    const jobs = (await queue.getJobCounts('delayed')).delayed!;
    expect(jobs).toBeLessThan(INVESTMENTS);
    const run = await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } });
    expect(run.status).toBe('RUNNING');
    // Every job it noted; killed between adding a page and noting it, it leaves that page out.
    expect(run.total).toBeLessThanOrEqual(jobs);
    expect(run.total).toBeGreaterThanOrEqual(Math.max(20, jobs - 20));
    fleet.startWorkers([lotsFamily]);
    expect(await fleet.waitForRun(runId)).toMatchObject({ status: 'COMPLETED', completed: run.total, failed: 0 });
  });

  it('status pointed at a Redis without fleet data says so and changes nothing; a wrongly interrupted run comes back', async () => {
    fleet.startWorkers([lotsFamily]);
    const run = await fleet.waitForRun((await fleet.enqueue(lotsFamily)).runId!);
    const unfinished = (await fleet.enqueue(lotsFamily, { kind: 'all' })).runId!;
    const before = await db.prisma.fleetRun.findMany({ orderBy: { id: 'asc' } });

    const elsewhere = { ...env, REDIS_URL: `${REDIS_URL}/13` };
    const status = await runTys(['status'], elsewhere);
    expect(status.code).toBe(0);
    expect(status.stderr).toMatch(`no fleet data in redis 127.0.0.1:6379 db 13 under prefix "${fleet.prefix}": is REDIS_URL right?`);
    expect(await db.prisma.fleetRun.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
    const other = new Redis(`${REDIS_URL}/13`);
    try {
      expect(await other.keys(`${fleet.prefix}*`)).toEqual([]);
    } finally {
      other.disconnect();
    }
    expect(run.status).toBe('COMPLETED');

    // What an earlier version did: a run marked INTERRUPTED while its counters were live.
    await db.prisma.fleetRun.update({ where: { id: unfinished }, data: { status: 'INTERRUPTED', finishedAt: new Date() } });
    expect(await reconcileRuns(fleet.context.runs)).toMatchObject({ recovered: 1, interrupted: 0 });
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: unfinished } })).toMatchObject({ status: 'COMPLETED' });
  });

  it('a Redis that restarted empty is proven to have lost its runs, even to a process that never saw it before', async () => {
    const redis = await PrivateRedis.start();
    cleanups.push(() => redis.stop());
    const config = { ...fleet.config, redisUrl: redis.url };
    const before = await openFleet(config);
    const run = await enqueue(
      { prisma: before.prisma, redis: before.redis, queues: { queues: [before.queue(lotsFamily)], shardOf: () => 0 }, runs: before.runs },
      lotsFamily,
      { kind: 'all' },
    );
    // And one whose producer died while adding, its lease not yet lapsed when Redis restarted.
    const unsealed = newRunId();
    await before.runs.create(unsealed, lotsFamily.name, { kind: 'all' }, { origin: 'test' });
    expect(await before.runs.holdProducer(lotsFamily.name, unsealed, 60_000)).toBe(true);
    await before.close();
    await redis.restart();
    // A new process, pointed at another Redis database: no evidence, nothing changes.
    const elsewhere = await openFleet({ ...config, redisUrl: `${redis.url}/5` });
    try {
      expect(await reconcileRuns(elsewhere.runs)).toMatchObject({ interrupted: 0 });
    } finally {
      await elsewhere.close();
    }
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: run.runId! } })).toMatchObject({ status: 'RUNNING' });
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: unsealed } })).toMatchObject({ status: 'ENQUEUEING' });
    // A new process on the run's own Redis: the marker there is not the run's, so the run's data is gone.
    const after = await openFleet(config);
    try {
      expect(await reconcileRuns(after.runs)).toMatchObject({ interrupted: 2, abandoned: 0 });
      // A producer that seals its run after Redis lost it brings nothing back: the run stays lost.
      await after.runs.markEnqueued(lotsFamily.name, unsealed, [40], 0);
      expect(await after.runs.has(lotsFamily.name, unsealed)).toBe(false);
    } finally {
      await after.close();
    }
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: run.runId! } })).toMatchObject({ status: 'INTERRUPTED' });
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: unsealed } })).toMatchObject({ status: 'INTERRUPTED' });
  });

  /**
   * `npx tys ARGS &` from a shell, as the README starts the long-running
   * commands; resolves once the process logs `ready`, with npx's pid and the
   * pid of the node process that logged it.
   */
  async function startedTheReadmeWay(args: string, ready: string, extraEnv: NodeJS.ProcessEnv = {}) {
    const shell = killOnExit(
      spawn('bash', ['-c', `npx tys ${args} & echo "npx=$!"; wait`], {
        env: fleetEnv(fleet.config, { TYS_LOG_LEVEL: 'info', ...extraEnv }),
        cwd: PROJECT_ROOT,
      }),
    );
    let output = '';
    shell.stdout.on('data', (chunk) => (output += chunk));
    shell.stderr.on('data', (chunk) => (output += chunk));
    await until(`tys ${args} to start`, () => output.includes(`"msg":"${ready}"`), 60_000);
    const npx = Number(/npx=(\d+)/.exec(output)![1]);
    const pid = Number(new RegExp(`"pid":(\\d+).*"msg":"${ready}"`).exec(output)![1]);
    expect(pid).not.toBe(npx);
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    return { npx, alive, output: () => output };
  }

  it('a worker started the README way (npx tys worker &, then kill $!) stops cleanly, leaving no process behind', async () => {
    const worker = await startedTheReadmeWay('worker --families lots', 'workers started');
    process.kill(worker.npx, 'SIGTERM');
    await until('the worker process to exit', () => !worker.alive(), 30_000);
    expect(worker.output()).toMatch(/"signal":"parent process exited".*"msg":"shutting down: finishing active jobs"/);
    expect(worker.output()).toMatch(/"msg":"workers stopped"/);
  });

  it('a dashboard started the README way (npx tys dashboard &, then kill $!) stops with its parent instead of listening on, orphaned', async () => {
    const dashboard = await startedTheReadmeWay('dashboard --host 127.0.0.1 --port 0', 'dashboard listening', {
      DASHBOARD_USER: 'operator',
      DASHBOARD_PASSWORD: 'correct horse battery',
    });
    const port = Number(/"port":(\d+).*"msg":"dashboard listening"/.exec(dashboard.output())![1]);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    process.kill(dashboard.npx, 'SIGTERM');
    await until('the dashboard process to exit', () => !dashboard.alive(), 30_000);
    expect(dashboard.output()).toMatch(/"signal":"parent process exited".*"msg":"dashboard stopping"/);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
