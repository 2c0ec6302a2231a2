import path from 'node:path';
import { Queue } from 'bullmq';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { families } from '../src/families/index.js';
import { SCHEDULES_QUEUE } from '../src/fleet/queues.js';
import { applySchedules, loadSchedules, removeSchedule } from '../src/fleet/schedules.js';
import { lotsFamily } from '../src/families/lots.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { startDashboard } from './support/dashboard.js';
import { REDIS_URL, testFleet, testPrefix } from './support/fleet.js';
import { fleetEnv, runTys, until } from './support/processes.js';
import { PrivateRedis } from './support/redis-server.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';

describe('health', () => {
  let db: TestDatabase;
  let redis: PrivateRedis;
  beforeAll(async () => {
    db = await createTestDatabase();
    // A Redis of this test's own, so stopping it disturbs no other test.
    redis = await PrivateRedis.start();
  });
  afterAll(async () => {
    await redis?.stop();
    await db?.drop();
  });

  it('is 200 with both up, 503 naming Redis once it stops, 503 naming Postgres when unreachable', async () => {
    const config = { databaseUrl: db.url, redisUrl: redis.url, queuePrefix: testPrefix() };
    const dashboard = await startDashboard(config);
    try {
      expect(await (await fetch(`${dashboard.url}/healthz`)).json()).toEqual({ status: 'ok', redis: 'up', postgres: 'up' });
      await redis.stop('SIGTERM');
      await until('health to notice Redis is gone', async () => (await fetch(`${dashboard.url}/healthz`)).status === 503, 15_000);
      const body = await (await fetch(`${dashboard.url}/healthz`)).json();
      expect(body).toEqual({ status: 'unavailable', redis: 'down', postgres: 'up' });
    } finally {
      await dashboard.close();
    }
    // A Postgres that does not answer (nothing listens on port 1); one that answers without the database is a wrong setting instead (tests/cli.test.ts).
    const badDb = { databaseUrl: 'postgresql://postgres@127.0.0.1:1/tys', redisUrl: REDIS_URL, queuePrefix: testPrefix() };
    const second = await startDashboard(badDb);
    try {
      const response = await fetch(`${second.url}/healthz`);
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ status: 'unavailable', redis: 'up', postgres: 'down' });
    } finally {
      await second.close();
    }
  });
});

describe('schedules', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: 50 });
    fleet = await testFleet(db);
    dir = mkdtempSync(path.join(os.tmpdir(), 'tys-schedules-'));
  });
  afterAll(async () => {
    await fleet?.close();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const write = (name: string, schedules: unknown[]) => {
    const file = path.join(dir, name);
    writeFileSync(file, JSON.stringify({ schedules }));
    return file;
  };

  it('applying twice changes nothing; changed and undeclared schedulers are updated and removed', async () => {
    const queue = new Queue(SCHEDULES_QUEUE, { connection: fleet.context.redis, prefix: fleet.prefix });
    try {
      const file = write('a.json', [
        { name: 'lots-often', family: 'lots', every: '5m' },
        { name: 'constraints-nightly', family: 'constraints', pattern: '30 2 * * *', scope: { kind: 'all' } },
      ]);
      expect(await applySchedules(queue, fleet.context.redis, loadSchedules(file, families))).toEqual({
        created: ['lots-often', 'constraints-nightly'],
        updated: [],
        unchanged: [],
        removed: [],
      });
      expect(await applySchedules(queue, fleet.context.redis, loadSchedules(file, families))).toEqual({
        created: [],
        updated: [],
        unchanged: ['lots-often', 'constraints-nightly'],
        removed: [],
      });
      expect(await queue.getJobSchedulersCount()).toBe(2);
      const changed = write('b.json', [{ name: 'lots-often', family: 'lots', every: '10m' }]);
      expect(await applySchedules(queue, fleet.context.redis, loadSchedules(changed, families))).toEqual({
        created: [],
        updated: ['lots-often'],
        unchanged: [],
        removed: ['constraints-nightly'],
      });
      expect((await queue.getJobScheduler('lots-often'))!.every).toBe(600_000);
      expect(await queue.getJobSchedulersCount()).toBe(1);
    } finally {
      await queue.close();
    }
  });

  it('records who applied and removed schedulers, and why; tys schedule list shows the latest changes', async () => {
    const env = fleetEnv(fleet.config);
    const file = write('noted.json', [{ name: 'noted-hourly', family: 'lots', every: '1h' }]);
    const applied = await runTys(['schedule', 'apply', '--file', file, '--note', 'hourly catch-up'], env);
    expect(applied.code).toBe(0);
    expect((await runTys(['schedule', 'apply', '--file', file], env)).stdout).toContain('schedules unchanged');
    const removed = await runTys(['schedule', 'remove', 'noted-hourly', '--note', 'done with it'], env);
    expect(removed.code).toBe(0);
    const listed = (await runTys(['schedule', 'list'], env)).stdout.split('\n');
    const changes = listed.slice(listed.indexOf('latest changes:') + 1).filter((line) => line.includes('noted-hourly'));
    expect(changes).toHaveLength(2);
    expect(changes[0]).toMatch(/^ {2}\S+Z {2}noted-hourly removed by cli \S+@\S+ \(done with it\)$/);
    expect(changes[1]).toMatch(/^ {2}\S+Z {2}noted-hourly created by cli \S+@\S+ \(hourly catch-up\)$/);
    const history = await db.prisma.fleetRunAction.findMany({ where: { schedule: 'noted-hourly' }, orderBy: { id: 'asc' } });
    expect(history.map((entry) => [entry.action, entry.result, entry.runId])).toEqual([
      ['schedule apply', 'created', null],
      ['schedule remove', 'removed', null],
    ]);
    expect((await runTys(['schedule', 'list', '--note', 'x'], env)).code).toBe(2);
  });

  it('refuses a scheduler whose family is unknown, exit 2 from the CLI', async () => {
    const file = write('bad.json', [{ name: 'mystery', family: 'mystery', every: '5m' }]);
    expect(() => loadSchedules(file, families)).toThrow(/unknown family "mystery"/);
    const result = await runTys(['schedule', 'apply', '--file', file], fleetEnv(fleet.config));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown family "mystery"/);
  });

  it('applies a schedule file whole or not at all, naming every bad entry, exit 2', async () => {
    const queue = new Queue(SCHEDULES_QUEUE, { connection: fleet.context.redis, prefix: fleet.prefix });
    try {
      await applySchedules(queue, fleet.context.redis, loadSchedules(write('kept.json', [{ name: 'kept', family: 'lots', every: '1h' }]), families));
      const file = write('half.json', [
        { name: 'valid-new', family: 'lots', every: '5m' },
        { name: 'bad-cron', family: 'lots', pattern: '99 99 * * *' },
        { name: 'zero', family: 'lots', every: '0s' },
      ]);
      expect(() => loadSchedules(file, families)).toThrow(
        /nothing applied: schedule 2 \(bad-cron\): "pattern" "99 99 \* \* \*" is not a valid cron pattern \(.+\); schedule 3 \(zero\): "every" must look like 30s, 5m or 1h \(at least 1s\), got "0s"$/,
      );
      const result = await runTys(['schedule', 'apply', '--file', file], fleetEnv(fleet.config));
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/bad-cron.*zero/);
      // Nothing installed, nothing removed.
      expect((await queue.getJobSchedulers(0, -1)).map((s) => s.key)).toEqual(['kept']);
    } finally {
      await removeSchedule(queue, fleet.context.redis, 'kept');
      await queue.close();
    }
  });

  it('a firing queued before its scheduler was removed does nothing', async () => {
    const queue = new Queue(SCHEDULES_QUEUE, { connection: fleet.context.redis, prefix: fleet.prefix });
    try {
      await applySchedules(queue, fleet.context.redis, loadSchedules(write('soon.json', [{ name: 'removed-soon', family: 'lots', every: '1h' }]), families));
      const [firing] = await queue.getJobs(['waiting', 'delayed', 'prioritized']);
      expect(firing?.repeatJobKey).toBe('removed-soon');
      // BullMQ leaves a firing already queued when its scheduler goes.
      await removeSchedule(queue, fleet.context.redis, 'removed-soon');
      const queued = firing!;
      expect(await queue.getJob(queued.id!)).toBeDefined();
      const runsBefore = await db.prisma.fleetRun.count();
      const runner = fleet.context.startSchedules(families, pino({ level: 'silent' }));
      try {
        await until('the firing to complete', async () => (await queue.getJob(queued.id!))?.finishedOn !== undefined, 30_000);
        expect((await queue.getJob(queued.id!))!.returnvalue).toMatchObject({ runId: null, removed: true });
      } finally {
        await runner.close();
      }
      expect(await db.prisma.fleetRun.count()).toBe(runsBefore);
    } finally {
      await queue.close();
    }
  });

  it('refuses bogus scopes at apply, and again when a scheduler written straight into Redis fires', async () => {
    for (const scope of [{ kind: 'bogus' }, { kind: 'investments', ids: 'abc' }, { kind: 'user' }]) {
      const file = write('scope.json', [{ name: 'odd', family: 'lots', every: '5m', scope }]);
      expect(() => loadSchedules(file, families), JSON.stringify(scope)).toThrow(/scope must be/);
    }
    const queue = new Queue(SCHEDULES_QUEUE, { connection: fleet.context.redis, prefix: fleet.prefix });
    const runner = fleet.context.startSchedules(families, pino({ level: 'silent' }));
    try {
      const job = await queue.add('enqueue', { family: 'lots', scope: { kind: 'investments', ids: 'abc' } }, { jobId: 'hand-made' });
      await until('the hand-made schedule job to fail', async () => (await job.getState()) === 'failed', 30_000);
      const failed = (await queue.getJob('hand-made'))!;
      expect(failed.failedReason).toMatch(/^scheduled job hand-made: scope must be/);
      expect(failed.attemptsMade).toBe(1);
      const runs = await db.prisma.fleetRun.findMany({ select: { scope: true } });
      expect(runs.filter((run) => (run.scope as { kind: string }).kind !== 'all')).toEqual([]);
    } finally {
      await runner.close();
      await queue.close();
    }
  });

  it('a due scheduler enqueues a real run that the workers carry out', async () => {
    const queue = new Queue(SCHEDULES_QUEUE, { connection: fleet.context.redis, prefix: fleet.prefix });
    const runner = fleet.context.startSchedules(families, pino({ level: 'silent' }));
    fleet.startWorkers([lotsFamily]);
    try {
      await applySchedules(queue, fleet.context.redis, loadSchedules(write('due.json', [{ name: 'lots-now', family: 'lots', every: '1s' }]), families));
      await until(
        'a scheduled run to finish',
        async () => {
          const run = await db.prisma.fleetRun.findFirst({ where: { family: 'lots', total: 50 } });
          return Boolean(run?.finishedAt);
        },
        30_000,
      );
      expect(await db.prisma.taxLot.count()).toBe(50);
      // Later firings find nothing to do: they leave no run behind.
      await until('every run to end', async () => (await db.prisma.fleetRun.count({ where: { finishedAt: null } })) === 0, 30_000);
      const runs = await db.prisma.fleetRun.count();
      const fired = await queue.getCompletedCount();
      await until('two more firings', async () => (await queue.getCompletedCount()) >= fired + 2, 30_000);
      expect(await db.prisma.fleetRun.count()).toBe(runs);
      // The empty firings are visible as the scheduler's last firing instead.
      const listed = await runTys(['schedule', 'list'], fleetEnv(fleet.config));
      expect(listed.code).toBe(0);
      expect(listed.stdout).toMatch(/lots-now .* last \d{4}-\d\d-\d\dT[\d:.]+Z: nothing to do/);
      const asJson = JSON.parse((await runTys(['schedule', 'list', '--json'], fleetEnv(fleet.config))).stdout);
      expect(asJson.schedules[0].lastFiring).toMatchObject({ runId: null, found: 0, added: 0 });
    } finally {
      await removeSchedule(queue, fleet.context.redis, 'lots-now');
      expect(await fleet.context.redis.hexists(`${fleet.prefix}:schedules:last-firing`, 'lots-now')).toBe(0);
      await runner.close();
      await queue.close();
    }
  });
});
