import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetConfig } from '../src/config/env.js';
import { seedMvp } from '../src/demo/seed.js';
import { constraintsFamily } from '../src/families/constraints.js';
import { lotsFamily } from '../src/families/lots.js';
import { openFleet, type FleetContext } from '../src/fleet/context.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { fleetEnv, runTys, spawnWorker, until } from './support/processes.js';
import { LocalRedisCluster } from './support/redis-cluster.js';

const INVESTMENTS = 4_000;

/** Investments by how many lots they have: exactly one each is the only right answer. */
async function lotsPerInvestment(db: TestDatabase): Promise<Record<string, number>> {
  const rows = await db.prisma.$queryRaw<{ lots: bigint; n: bigint }[]>`
    SELECT lots, count(*) AS n FROM (
      SELECT i.id, count(t.id) AS lots FROM "Investment" i LEFT JOIN "TaxLot" t ON t."investmentId" = i.id GROUP BY i.id
    ) x GROUP BY lots ORDER BY lots`;
  return Object.fromEntries(rows.map((row) => [String(row.lots), Number(row.n)]));
}

// A story on one cluster: a run, then a run through a failover.
describe('the fleet on a Redis Cluster', { shuffle: false }, () => {
  let cluster: LocalRedisCluster;
  let db: TestDatabase;
  let config: FleetConfig;
  let fleet: FleetContext;

  beforeAll(async () => {
    cluster = await LocalRedisCluster.start({ masters: 3 });
    db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: INVESTMENTS, badQuantityRate: 0 });
    const nodes = cluster.seeds.split(',').map((seed) => ({ host: '127.0.0.1', port: Number(seed.split(':')[1]) }));
    config = { databaseUrl: db.url, redisUrl: 'redis://127.0.0.1:1', redisCluster: { nodes }, queuePrefix: `tys-${randomBytes(3).toString('hex')}` };
    fleet = await openFleet(config, { role: 'worker' });
  }, 120_000);
  afterAll(async () => {
    await fleet?.close();
    await cluster?.stop();
    await db?.drop();
  });

  it('puts each family on a hash slot of its own and runs the CLI, workers and status against it', async () => {
    const lotsSlot = await cluster.slotOf(`${fleet.layout.family('lots')}:lots:wait`);
    expect(await cluster.slotOf(`${fleet.layout.family('lots')}:runs:x`)).toBe(lotsSlot);
    expect(await cluster.slotOf(`${fleet.layout.family('constraints')}:constraints:wait`)).not.toBe(lotsSlot);

    const env = fleetEnv(config);
    const worker = spawnWorker(env, ['--families', 'constraints,lots']);
    try {
      const enqueued = await runTys(['enqueue', 'lots', '--all', '--wait', '--timeout', '2m'], env);
      expect(enqueued.stderr).toBe('');
      expect(enqueued.code).toBe(0);
      expect(enqueued.stdout).toMatch(/redis cluster 127\.0\.0\.1:\d+,/);
      expect(enqueued.stdout).toContain(`added ${INVESTMENTS} jobs`);
      expect(await lotsPerInvestment(db)).toEqual({ '1': INVESTMENTS });

      const status = await runTys(['status', '--json'], env);
      expect(status.code).toBe(0);
      const shown = JSON.parse(status.stdout) as {
        fleetDataInRedis: boolean;
        families: Record<string, { completed?: number }>;
        runs: { status: string; completed: number }[];
      };
      expect(shown.fleetDataInRedis).toBe(true);
      expect(shown.runs[0]).toMatchObject({ status: 'COMPLETED', completed: INVESTMENTS });
      // The second run finds nothing to do: every row has its lot.
      const again = await runTys(['enqueue', 'lots', '--all', '--dry-run'], env);
      expect(again.stdout).toContain('0 rows need work');
    } finally {
      worker.kill('SIGTERM');
      expect((await worker.exited).code).toBe(0);
    }
  }, 180_000);

  it('finishes through the failover of the master that holds the queue, and converges to one lot each', async () => {
    await db.prisma.taxLot.deleteMany();
    const holder = await cluster.masterOf(`${fleet.layout.family('lots')}:lots:wait`);

    const workers = fleet.startWorkers([lotsFamily, constraintsFamily], { concurrency: 4 });
    const first = await fleet.enqueue(lotsFamily);
    await until('a quarter of the lots', async () => (await db.prisma.taxLot.count()) >= INVESTMENTS / 4, 60_000, 50);
    await cluster.kill(holder);
    // The master went while jobs were flowing, not after the run.
    expect(await db.prisma.taxLot.count()).toBeLessThan(INVESTMENTS);
    // Its replica takes over within a few node timeouts; the fleet rides it out.
    await until('a replica to take over', async () => !(await cluster.masterPorts()).includes(holder) && (await cluster.healthy()), 60_000, 200);

    await until(
      'the run to end',
      async () => Boolean((await fleet.runs.get(first.runId!))?.finishedAt) || (await db.prisma.taxLot.count()) >= INVESTMENTS,
      120_000,
      200,
    );
    // Writes acknowledged by the old master just before it died may be lost
    // (replication is asynchronous): enqueueing again brings their rows back.
    for (let round = 0; round < 5 && (await db.prisma.taxLot.count()) < INVESTMENTS; round++) {
      const again = await fleet.enqueue(lotsFamily);
      await until('the new run to end', async () => Boolean((await fleet.runs.get(again.runId!))?.finishedAt), 120_000, 200);
    }
    await workers.close();
    expect(await lotsPerInvestment(db)).toEqual({ '1': INVESTMENTS });
    const audits = await db.prisma.auditLog.count({ where: { action: 'CREATE_TAX_LOT' } });
    expect(audits).toBe(INVESTMENTS * 2);
  }, 300_000);
});
