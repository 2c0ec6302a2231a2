import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcileRuns } from '../src/fleet/run-reconciler.js';
import { newRunId } from '../src/fleet/runs.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';

describe('runs: the Redis side, the Postgres side, and the step between', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  beforeAll(async () => {
    db = await createTestDatabase();
    fleet = await testFleet(db);
  });
  afterAll(async () => {
    await fleet?.close();
    await db?.drop();
  });

  it('reading a run whose last outcome only Redis has seen writes nothing; reconcileRuns writes it down once', async () => {
    const { runs } = fleet.context;
    const runId = newRunId();
    await runs.create(runId, 'lots', { kind: 'all' }, 'test');
    await runs.markEnqueued(runId, 2, 0);
    // Counted in Redis only, as when Postgres was unreachable at the last outcome.
    await runs.live.record([
      { runId, jobId: 'lots-a', outcome: 'completed' },
      { runId, jobId: 'lots-b', outcome: 'failed' },
    ]);
    const before = await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } });
    const seen = await runs.get(runId);
    expect(seen).toMatchObject({ status: 'FAILED', completed: 1, failed: 1, live: true });
    await runs.list();
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).toEqual(before);
    expect(before).toMatchObject({ status: 'RUNNING', finishedAt: null });

    expect(await reconcileRuns(runs)).toMatchObject({ finished: 1, interrupted: 0, recovered: 0 });
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({ status: 'FAILED', completed: 1, failed: 1 });
    expect(await reconcileRuns(runs)).toMatchObject({ finished: 0 });
  });

  it('an outcome counts once however often it is recorded, and a retried failure that succeeds revises the finished run', async () => {
    const { runs } = fleet.context;
    const runId = newRunId();
    await runs.create(runId, 'lots', { kind: 'all' });
    await runs.markEnqueued(runId, 1, 0);
    await runs.record([{ runId, jobId: 'lots-x', outcome: 'failed' }]);
    await runs.record([{ runId, jobId: 'lots-x', outcome: 'failed' }]);
    expect(await runs.counters(runId)).toMatchObject({ failed: 1, completed: 0 });
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({ status: 'FAILED' });
    await runs.record([{ runId, jobId: 'lots-x', outcome: 'completed' }]);
    expect(await runs.counters(runId)).toMatchObject({ failed: 0, completed: 1 });
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({ status: 'COMPLETED', completed: 1, failed: 0 });
  });
});
