import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrisma } from '../src/db/prisma.js';
import { seedMvp } from '../src/demo/seed.js';
import { lotsFamily } from '../src/families/lots.js';
import type { JobOutcome } from '../src/fleet/family.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { handlerContext, REDIS_URL, testFleet } from './support/fleet.js';
import { Redis } from 'ioredis';

describe('racing duplicates', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: 200 });
  });
  afterAll(async () => db?.drop());

  it('leaves one lot when many workers, on separate connections, run the same investment at once', async () => {
    const investments = await db.prisma.investment.findMany({ select: { id: true }, orderBy: { id: 'asc' }, take: 20 });
    // Separate clients stand for separate worker processes.
    const clients = Array.from({ length: 4 }, () => createPrisma(db.url, { maxConnections: 10 }));
    const redis = new Redis(REDIS_URL);
    try {
      const item = (id: string, tag: string) => ({ key: id, runId: 'run-20260101T000000Z-000000', jobId: `lots-${id}-${tag}` });
      // Every client runs every investment alone and again inside a batch
      // that holds each investment twice, all at the same time.
      const ids = investments.map((i) => i.id);
      const batches = await Promise.all(
        clients.flatMap((prisma, c) => [
          ...ids.map((id) => lotsFamily.handle(handlerContext(prisma, redis), [item(id, `single-${c}`)])),
          lotsFamily.handle(
            handlerContext(prisma, redis),
            [...ids, ...ids.slice().reverse()].map((id, k) => item(id, `batch-${c}-${k}`)),
          ),
        ]),
      );
      expect(batches.flat().some((o) => o instanceof Error)).toBe(false);
      const outcomes = batches.flat() as JobOutcome[];
      expect(outcomes.filter((o) => o.status === 'changed')).toHaveLength(investments.length);
      expect(outcomes.filter((o) => o.status === 'skipped').every((o) => o.status === 'skipped' && o.reason === 'lots already in step with the position')).toBe(
        true,
      );
    } finally {
      await Promise.all(clients.map((c) => c.$disconnect()));
      redis.disconnect();
    }
    const lots = await db.prisma.taxLot.groupBy({ by: ['investmentId'], _count: true, where: { investmentId: { in: investments.map((i) => i.id) } } });
    expect(lots).toHaveLength(investments.length);
    expect(lots.every((l) => l._count === 1)).toBe(true);
    expect(await db.prisma.auditLog.count({ where: { action: 'CREATE_TAX_LOT' } })).toBe(investments.length);
  });

  it('two producers enqueuing the same rows at once create each job once', async () => {
    const fleet = await testFleet(db);
    try {
      // Whatever the other test left: the rows still without a lot.
      const remaining = await db.prisma.investment.count({ where: { taxLots: { none: {} } } });
      expect(remaining).toBeGreaterThan(100);
      const [a, b] = await Promise.all([fleet.enqueue(lotsFamily), fleet.enqueue(lotsFamily)]);
      expect(a.found).toBe(remaining);
      expect(b.found).toBe(remaining);
      const counts = await fleet.context.queue(lotsFamily).getJobCounts('waiting');
      expect(counts.waiting).toBe(remaining);
    } finally {
      await fleet.close();
    }
  });
});
