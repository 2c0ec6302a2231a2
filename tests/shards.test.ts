import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { lotsFamily } from '../src/families/lots.js';
import { controlRun } from '../src/fleet/runs/control.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { fleetEnv, runTys, until } from './support/processes.js';

const INVESTMENTS = 3_000;

// One database and one sharded fleet; each test starts from rows without lots and leaves no worker running.
describe('a family spread over three queues on one Redis (TYS_SHARDS=3)', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;

  beforeAll(async () => {
    db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: INVESTMENTS, badQuantityRate: 0 });
    fleet = await testFleet(db, undefined, { shards: { all: 3, byFamily: {} } });
  });
  afterAll(async () => {
    await fleet?.close();
    await db?.drop();
  });

  const lots = () => db.prisma.taxLot.count();
  const control = (runId: string, action: 'pause' | 'resume' | 'cancel') =>
    controlRun({ prisma: fleet.context.prisma, runs: fleet.context.runs, family: 'lots', queues: fleet.context.shardQueues(lotsFamily) }, runId, action, {
      settleTimeoutMs: 20_000,
    });

  it('spreads the jobs over the shards, every shard counted, and records the count for every process', async () => {
    await db.prisma.taxLot.deleteMany();
    const queues = fleet.context.shardQueues(lotsFamily);
    expect(queues.map((queue) => queue.name)).toEqual(['lots.0', 'lots.1', 'lots.2']);
    const dry = await fleet.enqueue(lotsFamily, { kind: 'all' }, { dryRun: true });
    expect(dry).toMatchObject({ found: INVESTMENTS, added: INVESTMENTS });
    const { runId, added } = await fleet.enqueue(lotsFamily);
    expect(added).toBe(INVESTMENTS);
    const waiting = await Promise.all(queues.map(async (queue) => (await queue.getJobCounts('waiting')).waiting ?? 0));
    expect(waiting.reduce((sum, n) => sum + n, 0)).toBe(INVESTMENTS);
    for (const n of waiting) expect(n).toBeGreaterThan(INVESTMENTS / 4);
    expect(fleet.context.queue.bind(fleet.context, lotsFamily)).toThrow(/lots has 3 shards/);

    const workers = fleet.startWorkers([lotsFamily]);
    const run = await fleet.waitForRun(runId!);
    await workers.close();
    expect(run).toMatchObject({ status: 'COMPLETED', total: INVESTMENTS, completed: INVESTMENTS, failed: 0 });
    expect(await lots()).toBe(INVESTMENTS);
    // Another process that would read one queue for lots is refused rather than left waiting on jobs it never sees.
    const refused = await runTys(['enqueue', 'lots', '--all'], fleetEnv(fleet.config, { TYS_SHARDS: '1' }));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('TYS_SHARDS says 1 shard(s) for lots, but its queues in Redis have 3');
    // Without a setting, a process follows the record.
    const status = await runTys(['status', '--json'], fleetEnv(fleet.config));
    expect((JSON.parse(status.stdout) as { families: Record<string, { completed: number }> }).families.lots!.completed).toBeGreaterThan(0);
  });

  it('pauses, resumes and cancels a run across every shard', async () => {
    await db.prisma.taxLot.deleteMany();
    // Slow workers, so that the run is still going when it is acted on.
    const workers = fleet.startWorkers([lotsFamily], { concurrency: 3 });
    const { runId } = await fleet.enqueue(lotsFamily);
    await until('some lots', async () => (await lots()) >= 100, 60_000);
    expect(await control(runId!, 'pause')).toBe('PAUSED');
    const held = await lots();
    expect(held).toBeLessThan(INVESTMENTS);
    expect(await control(runId!, 'resume')).toBe('RUNNING');
    await until('more lots', async () => (await lots()) > held + 50, 60_000);
    expect(await control(runId!, 'cancel')).toBe('CANCELLED');
    const cancelled = await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId! } });
    expect(cancelled.completed).toBe(await lots());
    // Nothing of the run is left in any shard; the next run does the rest.
    for (const queue of fleet.context.shardQueues(lotsFamily))
      expect(await queue.getJobCounts('waiting', 'delayed', 'active')).toEqual({ waiting: 0, delayed: 0, active: 0 });
    await workers.close();
    const finishing = fleet.startWorkers([lotsFamily]);
    const rest = await fleet.waitForRun((await fleet.enqueue(lotsFamily)).runId!);
    await finishing.close();
    expect(rest).toMatchObject({ status: 'COMPLETED', completed: INVESTMENTS - cancelled.completed });
    expect(await lots()).toBe(INVESTMENTS);
  });
});
