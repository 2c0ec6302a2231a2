import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lotsFamily } from '../src/families/lots.js';
import { jobIdFor } from '../src/fleet/family.js';
import { Prisma } from '../src/db/prisma.js';
import { seedMvp } from '../src/demo/seed.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { handlerContext, testFleet } from './support/fleet.js';
import { until } from './support/processes.js';

const INVESTMENTS = 3_000;
const BAD_EVERY = 100; // seedMvp's badQuantityRate 0.01: every 100th investment has quantity <= 0

// One run over a seeded database, made before the tests; each test reads what it left, and puts back what it changes.
describe('lots family end to end', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let result: Awaited<ReturnType<typeof fleet.enqueue>>;

  beforeAll(async () => {
    db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: INVESTMENTS, badQuantityRate: 1 / BAD_EVERY });
    fleet = await testFleet(db);
    fleet.startWorkers([lotsFamily]);
    result = await fleet.enqueue(lotsFamily, { kind: 'all' }, { pageSize: 500 });
    await fleet.waitForRun(result.runId!);
  });
  afterAll(async () => {
    await fleet?.close();
    await db?.drop();
  });

  it('gives every valid investment exactly one correct lot, with one audit entry each', async () => {
    expect(result.added).toBe(INVESTMENTS);
    const run = await fleet.waitForRun(result.runId!);
    const bad = INVESTMENTS / BAD_EVERY;
    expect(run).toMatchObject({ status: 'FAILED', total: INVESTMENTS, completed: INVESTMENTS - bad, failed: bad, skipped: 0 });

    const wrong = await db.prisma.$queryRaw<{ id: string }[]>`
      SELECT i.id FROM "Investment" i
        JOIN "TaxLot" t ON t."investmentId" = i.id
       WHERE t.quantity <> i."totalQuantity" OR t."remainingQuantity" <> i."totalQuantity"
          OR t."costBasisPerUnit" <> i."averageCostBasis" OR t.fees <> 0 OR t.status <> 'OPEN'
          OR t."purchaseDate" <> (i."createdAt" AT TIME ZONE 'UTC')::date`;
    expect(wrong).toEqual([]);
    const perInvestment = await db.prisma.$queryRaw<{ lots: bigint; n: bigint }[]>`
      SELECT lots, count(*) AS n FROM (
        SELECT i.id, count(t.id) AS lots FROM "Investment" i LEFT JOIN "TaxLot" t ON t."investmentId" = i.id GROUP BY i.id
      ) x GROUP BY lots ORDER BY lots`;
    expect(perInvestment).toEqual([
      { lots: 0n, n: BigInt(bad) },
      { lots: 1n, n: BigInt(INVESTMENTS - bad) },
    ]);

    // The run's own entries (another test redoes one row under a run of its own).
    const audits = (await db.prisma.auditLog.findMany({ where: { action: 'CREATE_TAX_LOT' } })).filter(
      (a) => (a.metadata as { runId: string }).runId === result.runId,
    );
    expect(audits).toHaveLength(INVESTMENTS - bad);
    expect(new Set(audits.map((a) => a.entityId)).size).toBe(INVESTMENTS - bad);
  });

  it('fails investments with a non-positive quantity at once, with a reason that names the fix', async () => {
    // A run counts an outcome before BullMQ files the job as failed.
    await until(
      'every refused job to be filed as failed',
      async () => (await fleet.context.queue(lotsFamily).getFailedCount()) === INVESTMENTS / BAD_EVERY,
      10_000,
    );
    const failed = await fleet.context.queue(lotsFamily).getFailed(0, 1_000);
    expect(failed).toHaveLength(INVESTMENTS / BAD_EVERY);
    for (const job of failed) {
      expect(job.attemptsMade).toBe(1);
      expect(job.failedReason).toMatch(/breaks Investment_totalQuantity_positive \(totalQuantity = -?[\d.]+\)(, [^:]+)?: run the constraints family first/);
    }
    const report = await lotsFamily.verify!(db.prisma);
    expect(report).toMatchObject({ ok: false, checked: INVESTMENTS, problemCount: INVESTMENTS / BAD_EVERY });
    expect(report.problems[0]!.problem).toBe('no tax lots');
  });

  it('adds and changes nothing when enqueued again for rows that are done', async () => {
    const before = await db.prisma.taxLot.aggregate({ _count: true, _max: { updatedAt: true } });
    const validOnly = await db.prisma.investment.findMany({ where: { totalQuantity: { gt: 0 } }, select: { id: true }, take: 50 });
    const again = await fleet.enqueue(lotsFamily, { kind: 'investments', ids: validOnly.map((i) => i.id) });
    expect(again).toMatchObject({ found: 0, added: 0, alreadyQueued: 0 });
    const run = await fleet.waitForRun(again.runId!);
    expect(run).toMatchObject({ status: 'COMPLETED', total: 0 });
    const after = await db.prisma.taxLot.aggregate({ _count: true, _max: { updatedAt: true } });
    expect(after).toEqual(before);
  });

  it('skips a job whose investment no longer exists', async () => {
    const ctx = handlerContext(db.prisma);
    const outcome = await lotsFamily.handle(ctx, [{ key: 'no-such-investment', runId: 'run-20260101T000000Z-000000', jobId: 'lots-no-such-investment' }]);
    ctx.redis.disconnect();
    expect(outcome).toEqual([{ status: 'skipped', reason: 'investment no longer exists' }]);
  });

  it('verifies exactly, with no tolerance: a lot one 0.00000001 short is reported', async () => {
    const lot = await db.prisma.taxLot.findFirstOrThrow();
    await db.prisma.taxLot.update({
      where: { id: lot.id },
      data: { remainingQuantity: lot.remainingQuantity.minus(new Prisma.Decimal('0.00000001')) },
    });
    try {
      const report = await lotsFamily.verify!(db.prisma);
      expect(report.problems.find((p) => p.id === lot.investmentId)?.problem).toMatch(/^lots hold .* but totalQuantity is /);
    } finally {
      await db.prisma.taxLot.update({ where: { id: lot.id }, data: { remainingQuantity: lot.remainingQuantity } });
    }
  });

  it('adds the job of a row whose job hash was left without data (a removal cut short), and does its work', async () => {
    const row = await db.prisma.investment.findFirstOrThrow({ where: { totalQuantity: { gt: 0 } }, select: { id: true } });
    const lot = await db.prisma.taxLot.findFirstOrThrow({ where: { investmentId: row.id } });
    await db.prisma.taxLot.delete({ where: { id: lot.id } });
    const jobKey = `${fleet.context.queue(lotsFamily).qualifiedName}:${jobIdFor(lotsFamily, row.id)}`;
    await fleet.context.redis.hset(jobKey, 'progress', '0');
    try {
      const again = await fleet.enqueue(lotsFamily, { kind: 'investments', ids: [row.id] });
      expect(again).toMatchObject({ found: 1, added: 1, requeued: 1, alreadyQueued: 0 });
      expect(await fleet.waitForRun(again.runId!)).toMatchObject({ status: 'COMPLETED', completed: 1 });
      expect(await db.prisma.taxLot.count({ where: { investmentId: row.id } })).toBe(1);
    } finally {
      await fleet.context.redis.del(jobKey);
    }
  });
});
