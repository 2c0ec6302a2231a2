import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canMove, ENDED_STATUSES, moveRun, OPEN_STATUSES, RUN_STATUSES, RunTransitionError, type FleetRunStatus } from '../src/fleet/runs/lifecycle.js';
import { newRunId } from '../src/fleet/runs/store.js';
import { PROJECT_ROOT } from '../src/project-root.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { reachableFrom } from './support/lifecycle.js';

const PAIRS = RUN_STATUSES.flatMap((from) => RUN_STATUSES.map((to) => [from, to] as const));

describe('the run lifecycle', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** A run in `status`, its finishedAt as that status has it. */
  const runIn = async (status: FleetRunStatus) => {
    const id = newRunId();
    await db.prisma.fleetRun.create({
      data: { id, family: 'lots', scope: { kind: 'all' }, status, finishedAt: ENDED_STATUSES.includes(status) ? new Date(Date.now() - 60_000) : null },
    });
    return id;
  };

  it.each(PAIRS)('%s to %s: made when the table has it, with finishedAt set exactly when the run ends; refused otherwise', async (from, to) => {
    const id = await runIn(from);
    const before = await db.prisma.fleetRun.findUniqueOrThrow({ where: { id } });
    if (canMove(from, to)) {
      expect(await moveRun(db.prisma, id, [from], to)).toEqual({ moved: true, status: to });
      const after = await db.prisma.fleetRun.findUniqueOrThrow({ where: { id } });
      expect(after.status).toBe(to);
      if (ENDED_STATUSES.includes(to)) expect(after.finishedAt!.getTime()).toBeGreaterThan(before.finishedAt?.getTime() ?? 0);
      else expect(after.finishedAt).toBeNull();
    } else {
      const refused = moveRun(db.prisma, id, [from], to);
      await expect(refused).rejects.toThrow(RunTransitionError);
      await expect(refused).rejects.toThrow(`run ${id} cannot move from ${from} to ${to}`);
      expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id } })).toEqual(before);
    }
  });

  it('moves nothing, and says where the run is, when it has left the statuses the caller names', async () => {
    const id = await runIn('PAUSED');
    expect(await moveRun(db.prisma, id, ['RUNNING'], 'PAUSING')).toEqual({ moved: false, status: 'PAUSED' });
    expect(await moveRun(db.prisma, 'run-20990101T000000Z-abcdef', ['RUNNING'], 'PAUSING')).toEqual({ moved: false, status: null });
    expect((await db.prisma.fleetRun.findUniqueOrThrow({ where: { id } })).status).toBe('PAUSED');
  });

  it('writes the final counts with the end, in the same statement', async () => {
    const id = await runIn('RUNNING');
    await moveRun(db.prisma, id, OPEN_STATUSES, 'FAILED', { completed: 7, skipped: 2, failed: 1, stats: { calls: 3 } });
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id } })).toMatchObject({
      status: 'FAILED',
      completed: 7,
      skipped: 2,
      failed: 1,
      stats: { calls: 3 },
    });
  });

  it('reaches every status from a new run, and every open run can end', () => {
    const reachable = reachableFrom('ENQUEUEING');
    expect([...reachable].sort()).toEqual([...RUN_STATUSES].sort());
    for (const status of OPEN_STATUSES)
      expect(
        ENDED_STATUSES.some((end) => canMove(status, end)),
        status,
      ).toBe(true);
    // An ended run opens again only by an operator's retry or a wrong verdict undone.
    expect(ENDED_STATUSES.flatMap((from) => OPEN_STATUSES.filter((to) => canMove(from, to)).map((to) => `${from}>${to}`))).toEqual([
      'FAILED>RUNNING',
      'INTERRUPTED>RUNNING',
    ]);
  });

  it("is the only writer of a run's status and finishedAt", () => {
    const sources = ['src', 'dashboard', 'workers'].flatMap((dir) =>
      (readdirSync(path.join(PROJECT_ROOT, dir), { recursive: true }) as string[])
        .filter((file) => file.endsWith('.ts') && !file.includes('generated'))
        .map((file) => path.join(dir, file)),
    );
    const writers = sources.filter((file) => {
      const text = readFileSync(path.join(PROJECT_ROOT, file), 'utf8');
      const prismaWrite = /fleetRun\.(update|updateMany|upsert)\(\{[^]*?data:\s*\{[^}]*\b(status|finishedAt)\b/.test(text);
      const sqlWrite = /UPDATE\s+"FleetRun"\s+SET[^;`]*?(\bstatus\s*=|"finishedAt"\s*=)/.test(text);
      return prismaWrite || sqlWrite;
    });
    expect(writers).toEqual([path.join('src', 'fleet', 'runs', 'lifecycle.ts')]);
  });
});
