import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { families } from '../src/families/index.js';
import { lotsFamily } from '../src/families/lots.js';
import { jobIdFor } from '../src/fleet/family.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { until } from './support/processes.js';

const RUN = 'run-20260101T000000Z-abcdef';

/** Payloads anyone with access to Redis could write, whatever the family. */
const MALFORMED: [string, unknown, RegExp][] = [
  ['empty', {}, /runId undefined is not a run id/],
  ['string', 'just a string', /expected an object with runId and key/],
  ['array', [1, 2], /expected an object/],
  ['sql', { runId: RUN, key: `x'); DROP TABLE "TaxLot"; --` }, /key "x'\); DROP TABLE .*" is not a valid key/],
  ['huge', { runId: RUN, key: 'k'.repeat(1_000_000) }, /larger than 4096 bytes/],
  ['long-key', { runId: RUN, key: 'k'.repeat(1_000) }, /key "(K|k){50,}\.\.\. is not a valid key/],
  ['number-key', { runId: RUN, key: 42 }, /key 42 is not a valid key/],
  ['bad-run', { runId: '../../etc', key: 'ABC' }, /runId "..\/..\/etc" is not a run id/],
];

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

  it('every family: each bad job ends once with a readable reason, and the workers keep serving good jobs', async () => {
    const added: { family: string; job: string; reason?: RegExp }[] = [];
    for (const family of families) {
      const queue = fleet.context.queue(family);
      for (const [name, data, reason] of MALFORMED) {
        await queue.add(family.name, data as never, { jobId: `bad-${name}`, attempts: 5 });
        added.push({ family: family.name, job: `bad-${name}`, reason });
      }
      // Fields that are not JSON at all, or data nested past any stack, as only a hand-written Redis command can leave.
      const handWritten: [string, string, string, RegExp][] = [
        ['bad-not-json', 'data', '{not json', /not JSON \("\{not json"\)/],
        ['bad-opts', 'opts', '{not json', /its options are not JSON \("\{not json"\)/],
        ['bad-progress', 'progress', '{not json', /its progress is not JSON \("\{not json"\)/],
        ['bad-deep', 'data', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, /larger than 4096 bytes/],
      ];
      for (const [jobId, field, value, reason] of handWritten) {
        await queue.add(family.name, { runId: RUN, key: 'ABC' }, { jobId, attempts: 5 });
        await fleet.context.redis.hset(`${fleet.prefix}:${family.name}:${jobId}`, field, value);
        added.push({ family: family.name, job: jobId, reason });
      }
      // A run of the family's own, so that the job reaches its handler.
      const runId = `run-20260101T000000Z-${String(families.indexOf(family)).padStart(6, '0')}`;
      await db.prisma.fleetRun.create({ data: { id: runId, family: family.name, scope: { kind: 'all' }, status: 'RUNNING' } });
      const unknownRow = jobIdFor(family, family.exampleKey);
      await queue.add(family.name, { runId, key: family.exampleKey }, { jobId: unknownRow, attempts: 5 });
      added.push({ family: family.name, job: unknownRow });
    }
    // Completed jobs may be removed at once (families that keep none): their results are caught as they happen.
    const ended = new Map<string, { failedReason?: string; result?: unknown; attemptsMade: number }>();
    // Jobs BullMQ cannot fetch stay active until their lock lapses and they stall: a short lock gets them there in seconds.
    for (const worker of fleet.startWorkers([...families], { lockDuration: 5_000, stalledInterval: 1_000 }).workers) {
      worker.on('completed', (job, result) => ended.set(`${worker.name}/${job.id}`, { result, attemptsMade: job.attemptsMade }));
      worker.on('failed', (job, error) => {
        if (job?.finishedOn) ended.set(`${worker.name}/${job.id}`, { failedReason: error.message, attemptsMade: job.attemptsMade });
      });
    }
    // A job that failed just before BullMQ fetched an unreadable one as the next can miss its event: its state is read instead.
    const settled = async () => {
      for (const entry of added.filter((e) => !ended.has(`${e.family}/${e.job}`))) {
        // One whose options BullMQ cannot read cannot be listed either, until a worker has mended it.
        const job = await fleet.context
          .queue(families.find((f) => f.name === entry.family)!)
          .getJob(entry.job)
          .catch(() => undefined);
        if (job?.finishedOn && job.failedReason) ended.set(`${entry.family}/${entry.job}`, { failedReason: job.failedReason, attemptsMade: job.attemptsMade });
      }
      return added.every((entry) => ended.has(`${entry.family}/${entry.job}`));
    };
    await until('every bad job to end', settled);
    for (const entry of added) {
      const label = `${entry.family}/${entry.job}`;
      const outcome = ended.get(label)!;
      expect(outcome.attemptsMade, label).toBeLessThanOrEqual(1);
      if (entry.reason) expect(outcome.failedReason, label).toMatch(entry.reason);
      else if (outcome.failedReason) expect(outcome.failedReason, label).toMatch(/NOSUCHTICKER|nosuchinvestment/);
      else expect(outcome.result, label).toMatchObject({ status: 'skipped', reason: expect.any(String) });
      expect((outcome.failedReason ?? (outcome.result as { reason: string }).reason).length, label).toBeLessThan(300);
    }
    // The queue can still be listed, as the board lists it, unreadable job included.
    const listed = await fleet.context.queue(lotsFamily).getJobs(['failed']);
    expect(listed.map((job) => job.id)).toContain('bad-not-json');
    // Nothing is retried: no bad job is waiting or delayed for another attempt.
    for (const family of families) {
      expect(await fleet.context.queue(family).getJobCounts('waiting', 'delayed', 'active'), family.name).toEqual({ waiting: 0, delayed: 0, active: 0 });
    }
    const investment = await db.prisma.investment.findFirstOrThrow();
    const good = await fleet.enqueue(lotsFamily, { kind: 'investments', ids: [investment.id] });
    expect((await fleet.waitForRun(good.runId!)).completed).toBe(1);
    expect(await db.prisma.taxLot.count()).toBe(1);
  });

  it('a job naming a run it does not belong to changes nothing and counts for no run', async () => {
    const [a, b] = await db.prisma.investment.findMany({ take: 2, orderBy: { id: 'desc' } });
    const constraintsRun = 'run-20260102T000000Z-c00001';
    const endedRun = 'run-20260102T000000Z-e00001';
    await db.prisma.fleetRun.createMany({
      data: [
        { id: constraintsRun, family: 'constraints', scope: { kind: 'all' }, status: 'RUNNING' },
        { id: endedRun, family: 'lots', scope: { kind: 'all' }, status: 'COMPLETED', total: 1, completed: 1, finishedAt: new Date() },
      ],
    });
    const lotsBefore = await db.prisma.taxLot.count();
    const queue = fleet.context.queue(lotsFamily);
    const liveRun = 'run-20260102T000000Z-a00001';
    await fleet.context.runs.create(liveRun, 'lots', { kind: 'all' });
    const claims: [string, string, RegExp][] = [
      ['no-such-run', 'run-20990101T000000Z-ffffff', /run run-20990101T000000Z-ffffff does not exist/],
      ['foreign-family', constraintsRun, /is a constraints run, not lots/],
      ['ended-run', endedRun, /has ended/],
      ['hand-made-id', liveRun, /the fleet names the job of \S+ "lots-\S+", not "hand-made-id"/],
    ];
    for (const [jobId, runId] of claims) await queue.add(lotsFamily.name, { runId, key: jobId === 'ended-run' ? a!.id : b!.id }, { jobId, attempts: 5 });
    const before = await db.prisma.fleetRun.findMany({ orderBy: { id: 'asc' } });
    const workers = fleet.startWorkers([lotsFamily]);
    await until('the claims to be refused', async () => (await Promise.all(claims.map(([jobId]) => queue.getJob(jobId)))).every((job) => job?.finishedOn));
    for (const [jobId, , reason] of claims) {
      const job = (await queue.getJob(jobId))!;
      expect(job.failedReason, jobId).toMatch(reason);
      expect(job.failedReason, jobId).toMatch(/nothing was changed/);
      expect(job.attemptsMade, jobId).toBe(1);
    }
    expect(await db.prisma.taxLot.count()).toBe(lotsBefore);
    expect(await db.prisma.fleetRun.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
    expect(await fleet.context.runs.counters(lotsFamily.name, liveRun)).toMatchObject({ completed: 0, skipped: 0, failed: 0 });
    await workers.close();
  });

  it('a run trusts only the jobs its producer added: hand-written jobs naming it change nothing and never count for it', async () => {
    const rows = (await db.prisma.investment.findMany({ orderBy: { id: 'asc' }, skip: 2, take: 5 })).map((row) => row.id);
    const [mine1, mine2, outside, forged, copied] = rows as [string, string, string, string, string];
    const run = await fleet.enqueue(lotsFamily, { kind: 'investments', ids: [mine1, mine2] });
    const runId = run.runId!;
    const queue = fleet.context.queue(lotsFamily);
    const sealOfMine = ((await queue.getJob(jobIdFor(lotsFamily, mine1)))!.data as { seal: string }).seal;
    const claims: [string, unknown, RegExp][] = [
      [jobIdFor(lotsFamily, outside), { runId, key: outside }, /did not add this job: its seal is not run \S+'s/],
      [jobIdFor(lotsFamily, forged), { runId, key: forged, seal: 'A'.repeat(22) }, /did not add this job: its seal is not run \S+'s/],
      [jobIdFor(lotsFamily, copied), { runId, key: copied, seal: sealOfMine }, /did not add this job: its seal is not run \S+'s/],
      ['lots-byother', { runId, key: 'byother', by: 'run-20990101T000000Z-ffffff' }, /its claimed adder run-20990101T000000Z-ffffff is no lots run/],
      // Data of another family's shape, naming the run: refused as data, and not a failure of the run.
      ['lots-badkey', { runId, key: 'Investment.x' }, /key "Investment.x" is not a valid key/],
    ];
    for (const [jobId, data] of claims) await queue.add(lotsFamily.name, data as never, { jobId, attempts: 5 });
    const otherFamily = fleet.context.queue(families.find((f) => f.name === 'constraints')!);
    await otherFamily.add('constraints', { runId, key: `Investment.${outside}` }, { jobId: `constraints-Investment.${outside}`, attempts: 5 });
    const workers = fleet.startWorkers([lotsFamily, families.find((f) => f.name === 'constraints')!]);
    try {
      expect(await fleet.waitForRun(runId)).toMatchObject({ status: 'COMPLETED', total: 2, completed: 2, failed: 0, skipped: 0 });
      await until('the claims to be refused', async () => (await Promise.all(claims.map(([jobId]) => queue.getJob(jobId)))).every((job) => job?.finishedOn));
      for (const [jobId, , reason] of claims) {
        const job = (await queue.getJob(jobId))!;
        expect(job.failedReason, jobId).toMatch(reason);
        expect(job.attemptsMade, jobId).toBe(1);
      }
      await until("the other family's claim to be refused", async () => Boolean((await otherFamily.getJob(`constraints-Investment.${outside}`))?.finishedOn));
      expect((await otherFamily.getJob(`constraints-Investment.${outside}`))!.failedReason).toMatch(/is a lots run, not constraints/);
      const lots = await db.prisma.taxLot.findMany({ where: { investmentId: { in: rows } }, select: { investmentId: true } });
      expect(lots.map((lot) => lot.investmentId).sort()).toEqual([mine1, mine2].sort());
      expect(await fleet.context.runs.counters(lotsFamily.name, runId)).toMatchObject({ total: 2, completed: 2, skipped: 0, failed: 0 });
    } finally {
      await workers.close();
    }
  });
});
