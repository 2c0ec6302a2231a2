import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { lotsFamily } from '../src/families/lots.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { until } from './support/processes.js';

describe('job payloads written straight into Redis', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  beforeAll(async () => {
    db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: 10 });
    fleet = await testFleet(db);
  });
  afterAll(async () => {
    await fleet?.close();
    await db?.drop();
  });

  it('fails each malformed job once with a readable reason and keeps the worker serving good jobs', async () => {
    const queue = fleet.context.queue(lotsFamily);
    const run = 'run-20260101T000000Z-abcdef';
    const bad: [string, unknown, RegExp][] = [
      ['empty', {}, /runId undefined is not a run id/],
      ['string', 'just a string', /expected an object with runId and key/],
      ['array', [1, 2], /expected an object/],
      ['sql', { runId: run, key: `x'); DROP TABLE "TaxLot"; --` }, /key "x'\); DROP TABLE .*" is not a valid key/],
      ['huge', { runId: run, key: 'k'.repeat(1_000_000) }, /key "k{50,}\.\.\. is not a valid key/],
      ['number-key', { runId: run, key: 42 }, /key 42 is not a valid key/],
      ['bad-run', { runId: '../../etc', key: 'abc' }, /runId "..\/..\/etc" is not a run id/],
    ];
    for (const [name, data] of bad) await queue.add('lots', data as never, { jobId: `bad-${name}`, attempts: 5 });
    const investment = await db.prisma.investment.findFirstOrThrow();
    fleet.startWorkers([lotsFamily]);
    await until('every bad job to fail', async () => (await queue.getFailedCount()) === bad.length);
    for (const [name, , reason] of bad) {
      const job = (await queue.getJob(`bad-${name}`))!;
      expect(job.attemptsMade, name).toBe(1);
      expect(job.failedReason, name).toMatch(reason);
      expect(job.failedReason.length, name).toBeLessThan(200);
    }
    const good = await fleet.enqueue(lotsFamily, { kind: 'investments', ids: [investment.id] });
    expect((await fleet.waitForRun(good.runId!)).completed).toBe(1);
    expect(await db.prisma.taxLot.count()).toBe(1);
  });
});
