import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { FleetConfig } from '../src/config/env.js';
import { seedMvp } from '../src/demo/seed.js';
import { constraintsFamily } from '../src/families/constraints.js';
import { lotsFamily } from '../src/families/lots.js';
import { openFleet, type FleetContext } from '../src/fleet/context.js';
import { controlRun, RunControlError } from '../src/fleet/runs/control.js';
import { workerConnection } from '../src/redis/connection.js';
import { keySlot } from '../src/redis/slot.js';
import { ADMIN, basic, startDashboard } from './support/dashboard.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { fleetEnv, runTys, spawnWorker, until } from './support/processes.js';
import { LocalRedisCluster } from './support/redis-cluster.js';
import { countWrites } from './support/socket-writes.js';

const INVESTMENTS = 20_000;
/** Rows done through the failover: enough that the master dies while jobs flow. */
const FAILOVER_INVESTMENTS = 6_000;

/** Investments by how many lots they have: exactly one each is the only right answer. */
async function lotsPerInvestment(db: TestDatabase): Promise<Record<string, number>> {
  const rows = await db.prisma.$queryRaw<{ lots: bigint; n: bigint }[]>`
    SELECT lots, count(*) AS n FROM (
      SELECT i.id, count(t.id) AS lots FROM "Investment" i LEFT JOIN "TaxLot" t ON t."investmentId" = i.id GROUP BY i.id
    ) x GROUP BY lots ORDER BY lots`;
  return Object.fromEntries(rows.map((row) => [String(row.lots), Number(row.n)]));
}

// One cluster for the file (a test may fail a master over: the cluster stays whole, a replica short); each test has
// a database and a key prefix of its own.
describe('the fleet on a Redis Cluster', () => {
  let cluster: LocalRedisCluster;

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({ masters: 3 });
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  /** A database of `investments` rows and a fleet on the cluster under a prefix of its own, removed when the test finishes. */
  async function clusterFleet(investments: number): Promise<{ db: TestDatabase; config: FleetConfig; fleet: FleetContext }> {
    const db = await createTestDatabase();
    await seedMvp(db.prisma, { investments, badQuantityRate: 0 });
    const nodes = cluster.seeds.split(',').map((seed) => ({ host: '127.0.0.1', port: Number(seed.split(':')[1]) }));
    const config = { databaseUrl: db.url, redisUrl: 'redis://127.0.0.1:1', redisCluster: { nodes }, queuePrefix: `tys-${randomBytes(3).toString('hex')}` };
    const fleet = await openFleet(config, { role: 'worker' });
    onTestFinished(async () => {
      // A fleet whose close hangs on a dead node must not keep the database alive.
      await Promise.race([fleet.close().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 20_000).unref())]);
      await db.drop();
    });
    await fleet.ready();
    return { db, config, fleet };
  }

  it('spreads a family over one shard per master, and runs the CLI, workers, status, schedules and the dashboard on it', async () => {
    const { db, config, fleet } = await clusterFleet(INVESTMENTS);
    const dir = mkdtempSync(path.join(tmpdir(), 'tys-cluster-test-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    // Three masters, so three shards by default, each on a master of its own, apart from the shared keys.
    const shards = fleet.layout.shards('lots');
    expect(shards.map((shard) => shard.queueName)).toEqual(['lots.0', 'lots.1', 'lots.2']);
    const masters = await Promise.all(shards.map((shard) => cluster.masterOf(`${shard.prefix}:${shard.queueName}:wait`)));
    expect(new Set(masters).size).toBe(3);
    for (const shard of shards) expect(await cluster.slotOf(`${shard.prefix}:runs:x`)).toBe(await cluster.slotOf(`${shard.prefix}:${shard.queueName}:wait`));
    // The slots the fleet computes to spread its shards are the cluster's.
    for (const key of [...shards.map((shard) => `${shard.prefix}:x`), 'plain', '{}empty-tag', 'a{b}c{d}'])
      expect(keySlot(key), key).toBe(await cluster.slotOf(key));

    const env = fleetEnv(config);
    const first = await runTys(['enqueue', 'lots', '--all'], env);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/redis cluster 127\.0\.0\.1:\d+,/);
    expect(first.stdout).toContain(`added ${INVESTMENTS} jobs`);
    // Each master holds its share of the run's jobs.
    const waiting = await Promise.all(fleet.shardQueues(lotsFamily).map(async (queue) => (await queue.getJobCounts('waiting')).waiting ?? 0));
    expect(waiting.reduce((sum, n) => sum + n, 0)).toBe(INVESTMENTS);
    for (const n of waiting) expect(n).toBeGreaterThan(INVESTMENTS / 4);

    const worker = spawnWorker(env, ['--families', 'constraints,lots']);
    try {
      // A second run follows the jobs the first one queued, in every shard, and waits for them.
      const followed = await runTys(['enqueue', 'lots', '--all', '--wait', '--timeout', '3m'], env);
      expect(followed.stderr).toBe('');
      expect(followed.code).toBe(0);
      // It follows what is still queued; a job that ends between the source query and the look at its queue is
      // added again (and finds its lot made) or left out (its row is done).
      const [, added, following] = /added (\d+) jobs \((\d+) already queued/.exec(followed.stdout)!;
      expect(Number(following)).toBeGreaterThan(0);
      expect(Number(added) + Number(following)).toBeLessThanOrEqual(INVESTMENTS);
      expect(followed.stdout).toMatch(/finished: \d+ completed, \d+ skipped, 0 failed/);
      expect(await lotsPerInvestment(db)).toEqual({ '1': INVESTMENTS });

      const status = await runTys(['status', '--json'], env);
      expect(status.code).toBe(0);
      const shown = JSON.parse(status.stdout) as {
        fleetDataInRedis: boolean;
        families: Record<string, Record<string, number>>;
        runs: { status: string; completed: number }[];
      };
      expect(shown.fleetDataInRedis).toBe(true);
      expect(shown.runs.map((run) => run.status)).toEqual(['COMPLETED', 'COMPLETED']);
      // Added up over the three shards.
      expect(shown.families.lots).toMatchObject({ waiting: 0, active: 0, failed: 0 });
      expect(shown.families.lots!.completed).toBeGreaterThan(0);
      expect((await runTys(['enqueue', 'lots', '--all', '--dry-run'], env)).stdout).toContain('0 rows need work');

      const file = path.join(dir, 'schedules.json');
      writeFileSync(file, JSON.stringify({ schedules: [{ name: 'lots-hourly', family: 'lots', every: '1h' }] }));
      expect((await runTys(['schedule', 'apply', '--file', file], env)).stdout).toContain('created: lots-hourly');
      expect((await runTys(['schedule', 'list'], env)).stdout).toContain('lots-hourly');

      const dashboard = await startDashboard(config);
      try {
        const auth = { authorization: basic(ADMIN) };
        const board = (await (await fetch(`${dashboard.url}/board/api/queues`, { headers: auth })).json()) as { queues: { name: string }[] };
        expect(board.queues.map((queue) => queue.name)).toEqual(expect.arrayContaining(['lots.0', 'lots.1', 'lots.2', 'schedules']));
        const metrics = await (await fetch(`${dashboard.url}/metrics`, { headers: auth })).text();
        expect(metrics).toContain(`tys_queue_jobs{family="lots",state="completed"} ${shown.families.lots!.completed}`);
        expect((await fetch(`${dashboard.url}/runs`, { headers: auth })).status).toBe(200);
      } finally {
        await dashboard.close();
      }
    } finally {
      worker.kill('SIGTERM');
      expect((await worker.exited).code).toBe(0);
    }
  }, 300_000);

  it('refuses a worker whose shard count differs from the one on record, naming both', async () => {
    const { config, fleet } = await clusterFleet(1);
    // The first enqueue records the family's count: three, one per master.
    await fleet.enqueue(lotsFamily, { kind: 'investments', ids: [] });
    const refused = await runTys(['worker', '--families', 'lots'], fleetEnv(config, { TYS_SHARDS_LOTS: '2' }));
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim()).toBe(
      "error: TYS_SHARDS_LOTS says 2 shard(s) for lots, but its queues in Redis have 3: run every process with the same count (changing it needs the family's queues drained first)",
    );
  });

  it('sends each node the commands of one turn of the event loop in one write', async () => {
    const nodes = cluster.seeds.split(',').map((seed) => ({ host: '127.0.0.1', port: Number(seed.split(':')[1]) }));
    const redis = workerConnection({ url: 'redis://127.0.0.1:1', cluster: { nodes } });
    onTestFinished(() => redis.disconnect());
    if (!('nodes' in redis)) throw new Error('expected a cluster connection');
    const prefix = `tys-${randomBytes(3).toString('hex')}`;
    const keys = Array.from({ length: 60 }, (_, i) => `${prefix}:k${i}`);
    // Every master connected first: a node's socket opens with its first command.
    await Promise.all(keys.map((key) => redis.set(key, 'warm')));
    const masters = redis.nodes('master');
    expect(masters).toHaveLength(3);
    const writes = masters.map((node) => countWrites(node.stream));
    expect(await Promise.all(keys.map((key, i) => redis.set(key, String(i))))).toEqual(keys.map(() => 'OK'));
    // The 60 keys fall on every master; each got its share in one write (two if a write was under way).
    for (const counter of writes) expect(counter.count).toBeGreaterThanOrEqual(1);
    for (const counter of writes) expect(counter.count).toBeLessThanOrEqual(2);
    expect(await Promise.all(keys.map((key) => redis.get(key)))).toEqual(keys.map((_, i) => String(i)));
    await Promise.all(keys.map((key) => redis.del(key)));
  });

  it('finishes through the failover of the master that holds the queue, and converges to one lot each', async () => {
    const { db, fleet } = await clusterFleet(FAILOVER_INVESTMENTS);
    const [shard] = fleet.layout.shards('lots');
    const holder = await cluster.masterOf(`${shard!.prefix}:${shard!.queueName}:wait`);

    // Jobs active on the master that dies come back once their lock expires and the stalled check finds them:
    // short ones here, so that the run recovers in seconds rather than a minute.
    const workers = fleet.startWorkers([lotsFamily, constraintsFamily], { lockDuration: 10_000, stalledInterval: 5_000 });
    const first = await fleet.enqueue(lotsFamily);
    await until('a quarter of the lots', async () => (await db.prisma.taxLot.count()) >= FAILOVER_INVESTMENTS / 4, 60_000, 50);
    await cluster.kill(holder);
    // The master went while jobs were flowing, not after the run.
    expect(await db.prisma.taxLot.count()).toBeLessThan(FAILOVER_INVESTMENTS);
    // Its replica takes over within a few node timeouts; the fleet rides it out.
    await until('a replica to take over', async () => !(await cluster.masterPorts()).includes(holder) && (await cluster.healthy()), 60_000, 200);

    await until(
      'the run to end',
      async () => Boolean((await fleet.runs.get(first.runId!))?.finishedAt) || (await db.prisma.taxLot.count()) >= FAILOVER_INVESTMENTS,
      60_000,
      200,
    );
    // Writes acknowledged by the old master just before it died may be lost
    // (replication is asynchronous): enqueueing again brings their rows back.
    for (let round = 1; round <= 3 && (await db.prisma.taxLot.count()) < FAILOVER_INVESTMENTS; round++) {
      const again = await fleet.enqueue(lotsFamily);
      await until(`run ${round} after the failover to end`, async () => Boolean((await fleet.runs.get(again.runId!))?.finishedAt), 40_000, 200);
    }
    expect(await lotsPerInvestment(db)).toEqual({ '1': FAILOVER_INVESTMENTS });
    expect(await db.prisma.auditLog.count({ where: { action: 'CREATE_TAX_LOT' } })).toBe(FAILOVER_INVESTMENTS);
    // The runs that came after the failover ended by themselves. The one it hit may have lost a job or a count
    // with the old master, and then does not end by itself (docs/scaling.md): it is cancelled, as an operator would.
    const [hit, ...after] = await db.prisma.fleetRun.findMany({ where: { family: 'lots' }, orderBy: { id: 'asc' } });
    expect(hit!.id).toBe(first.runId);
    for (const run of after) expect(run.status).toBe('COMPLETED');
    if (!hit!.finishedAt) {
      // Cancelled while the workers run: a job the old master had active comes back when its lock expires.
      const control = { prisma: fleet.prisma, runs: fleet.runs, family: 'lots', queues: fleet.shardQueues(lotsFamily) };
      const ended = await controlRun(control, hit!.id, 'cancel', { settleTimeoutMs: 45_000 }).catch(async (error: unknown) => {
        if (!(error instanceof RunControlError)) throw error;
        return (await fleet.runs.get(hit!.id))!.status; // it ended by itself in the meantime
      });
      expect(['CANCELLED', 'COMPLETED']).toContain(ended);
    } else expect(hit!.status).toBe('COMPLETED');
    await workers.close();
    // Longer than its waits' deadlines added up (345 s): a wait that runs out fails naming what it awaited.
  }, 420_000);
});
