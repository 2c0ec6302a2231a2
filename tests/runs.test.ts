import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { bullmq } from '../src/deps/bullmq.js';
import { reconcileRuns } from '../src/fleet/runs/reconciler.js';
import { newRunId } from '../src/fleet/runs/store.js';
import { addingWait, HOLD_IN_WORKER_MS, RunPacer } from '../src/fleet/runs/pace.js';
import { seedMvp } from '../src/demo/seed.js';
import { RunGuard } from '../src/fleet/runs/guard.js';
import { controlRun } from '../src/fleet/runs/control.js';
import type { PrismaClient } from '../src/db/prisma.js';
import { lotsFamily } from '../src/families/lots.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { REDIS_URL, testFleet } from './support/fleet.js';
import { until } from './support/processes.js';

/** A database of its own with `investments` MVP investments and no broken one, and a fleet on it; both removed after the test. */
async function seededFleet(investments: number) {
  const own = await createTestDatabase();
  onTestFinished(() => own.drop());
  const ownFleet = await testFleet(own);
  onTestFinished(() => ownFleet.close());
  await seedMvp(own.prisma, { investments, badQuantityRate: 0 });
  return { own, ownFleet };
}

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
    await runs.create(runId, 'lots', { kind: 'all' }, { origin: 'test' });
    await runs.markEnqueued('lots', runId, [2], 0);
    // Counted in Redis only, as when Postgres was unreachable at the last outcome.
    await runs.live(fleet.context.layout.shards('lots')[0]!).record([
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

  it('a failure BullMQ made that the fleet never counted (a worker killed right after its stalled check) is counted once the run stands still, whichever process looks', async () => {
    const { runs } = fleet.context;
    const runId = newRunId();
    await runs.create(runId, 'lots', { kind: 'all' });
    await runs.markEnqueued('lots', runId, [2], 0);
    const queue = fleet.context.queue(lotsFamily);
    await queue.add('lots', { runId, key: 'missed' }, { jobId: 'lots-missed', attempts: 1 });
    // BullMQ's own calls, as its stalled check makes them: the job fails without any fleet code running.
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const raw = new bullmq.Worker(queue.name, null, { connection, prefix: queue.opts.prefix, autorun: false });
    onTestFinished(async () => {
      await raw.close();
      connection.disconnect();
    });
    const job = await raw.getNextJob('tok');
    expect(job.id).toBe('lots-missed');
    await job.moveToFailed(new Error('job stalled more than allowable limit'), 'tok', false);
    expect(await runs.get(runId)).toMatchObject({ finishedAt: null, failed: 0 });
    // Each look is a call of its own, as a process that looks once and is restarted would make it: what the
    // looks saw is kept in Redis. The first look at a count starts the run's clock; a run that moves restarts it.
    const look = () => reconcileRuns(runs, { stillMs: 0 });
    const first = await look();
    expect(first).toMatchObject({ recounted: 0 });
    expect(first.running).toContainEqual({ id: runId, done: 0 });
    await runs.record('lots', [{ runId, jobId: 'lots-other', outcome: 'completed' }]);
    expect(await look()).toMatchObject({ recounted: 0, running: expect.arrayContaining([{ id: runId, done: 1 }]) });
    // Standing still since the last look, by any process: the failed set is read.
    expect((await look()).recounted).toBeGreaterThanOrEqual(1);
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({ status: 'FAILED', completed: 1, failed: 1 });
    expect((await look()).running.map((run) => run.id)).not.toContain(runId);
  });

  it('how long a run has stood still is timed by Redis across looks: from the first look at a count, again from nothing once it moves, never for a run Redis lost', async () => {
    const { runs } = fleet.context;
    const runId = newRunId();
    await runs.create(runId, 'lots', { kind: 'all' });
    await runs.markEnqueued('lots', runId, [1], 0);
    expect(await runs.standing('lots', runId, 0)).toBeNull();
    const from = Date.now();
    await until('the run to have stood still for 300 ms', async () => ((await runs.standing('lots', runId, 0)) ?? 0) >= 300, 5_000, 50);
    expect(Date.now() - from).toBeGreaterThanOrEqual(250);
    // A moving run starts again from nothing.
    expect(await runs.standing('lots', runId, 1)).toBeNull();
    expect(await runs.standing('lots', runId, 1)).toBeLessThan(300);
    // A run Redis no longer has is not brought back by a look.
    const lost = newRunId();
    expect(await runs.standing('lots', lost, 0)).toBeNull();
    expect(await runs.has('lots', lost)).toBe(false);
  });

  it('an outcome counts once however often it is recorded, and a retried failure that succeeds revises the finished run', async () => {
    const { runs } = fleet.context;
    const runId = newRunId();
    await runs.create(runId, 'lots', { kind: 'all' });
    await runs.markEnqueued('lots', runId, [1], 0);
    await runs.record('lots', [{ runId, jobId: 'lots-x', outcome: 'failed' }]);
    await runs.record('lots', [{ runId, jobId: 'lots-x', outcome: 'failed' }]);
    expect(await runs.counters('lots', runId)).toMatchObject({ failed: 1, completed: 0 });
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({ status: 'FAILED' });
    await runs.record('lots', [{ runId, jobId: 'lots-x', outcome: 'completed' }]);
    expect(await runs.counters('lots', runId)).toMatchObject({ failed: 0, completed: 1 });
    expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({ status: 'COMPLETED', completed: 1, failed: 0 });
  });

  it('one batch of outcomes counts each job once, even listed twice, revises a failure, and counts for the runs that follow its jobs', async () => {
    const { runs } = fleet.context;
    const queue = fleet.context.queue(lotsFamily);
    const [first, follower] = [newRunId(), newRunId()];
    await runs.create(first, 'lots', { kind: 'all' });
    await runs.create(follower, 'lots', { kind: 'all' });
    const ids = ['lots-ra', 'lots-rb', 'lots-rc'];
    try {
      await queue.addBulk(ids.map((jobId) => ({ name: 'lots', data: { runId: first, key: jobId.slice(5) }, opts: { jobId } })));
      expect(await runs.adopt(follower, 'lots', ids.slice(1))).toEqual({ followed: 2, gone: [] });
      await runs.markEnqueued('lots', first, [3], 0);
      await runs.markEnqueued('lots', follower, [2], 2);
      const live = runs.live(fleet.context.layout.shards('lots')[0]!);
      await live.record([{ runId: first, jobId: 'lots-ra', outcome: 'failed' }]);
      const [recorded] = await live.record([
        { runId: first, jobId: 'lots-ra', outcome: 'completed' },
        { runId: first, jobId: 'lots-rb', outcome: 'failed' },
        { runId: first, jobId: 'lots-rc', outcome: 'skipped' },
        { runId: first, jobId: 'lots-rc', outcome: 'skipped' },
        { runId: first, jobId: 'lots-ra', outcome: 'completed' },
      ]);
      expect(recorded).toEqual({ runId: first, lost: false, revised: true, done: [first, follower] });
      expect(await runs.counters('lots', first)).toMatchObject({ completed: 1, skipped: 1, failed: 1 });
      expect(await runs.counters('lots', follower)).toMatchObject({ completed: 0, skipped: 1, failed: 1 });
    } finally {
      await Promise.all(ids.map((id) => queue.remove(id)));
    }
  });

  it('a job its run ended without (added, then its producer killed before noting it) is taken over by a run that follows it, and that run ends', async () => {
    const { own, ownFleet } = await seededFleet(2);
    const { runs } = ownFleet.context;
    const [id] = (await own.prisma.investment.findMany({ select: { id: true }, orderBy: { id: 'asc' } })).map((row) => row.id);
    const jobId = `lots-${id}`;
    const [ended, follower] = [newRunId(), newRunId()];
    await runs.create(ended, 'lots', { kind: 'all' });
    await ownFleet.context.queue(lotsFamily).add('lots', { runId: ended, key: id! }, { jobId });
    // Sealed with what its producer noted, which left the job out: the run is over, the job still queued.
    await runs.markEnqueued('lots', ended, [0], 0);
    expect(await own.prisma.fleetRun.findUniqueOrThrow({ where: { id: ended } })).toMatchObject({ status: 'COMPLETED' });
    await runs.create(follower, 'lots', { kind: 'all' });
    expect(await runs.adopt(follower, 'lots', [jobId])).toEqual({ followed: 1, gone: [] });
    await runs.markEnqueued('lots', follower, [1], 1);
    const workers = ownFleet.startWorkers([lotsFamily]);
    onTestFinished(() => workers.close());
    // Before, the job was refused (its run had ended) and the follower waited for it forever.
    expect(await ownFleet.waitForRun(follower, 20_000)).toMatchObject({ status: 'COMPLETED', completed: 1, failed: 0 });
    expect(await own.prisma.taxLot.count({ where: { investmentId: id } })).toBe(1);
    const entry = await own.prisma.auditLog.findFirstOrThrow({ where: { action: 'CREATE_TAX_LOT' } });
    expect(entry.metadata).toMatchObject({ runId: follower });
  });

  /** `count` jobs of a new run paced at 400/1s, their slots reserved at once, as a worker's many jobs do. */
  async function reserveAtOnce(count: number) {
    const runId = newRunId();
    const queue = fleet.context.queue(lotsFamily);
    const pacer = new RunPacer(fleet.context.redis, fleet.prefix);
    const jobs = await queue.addBulk(
      Array.from({ length: count }, (_, i) => ({ name: lotsFamily.name, data: { runId, key: `k${i}` }, opts: { jobId: `paced-${i}` } })),
    );
    const waits = await Promise.all(jobs.map((job) => pacer.waitFor(job, runId, 1_000 / 400)));
    return { runId, queue, pacer, jobs, waits };
  }

  it('paces a run at rates whose slots fall between milliseconds (400/1s: 2.5 ms apart), every job getting a later slot, started in groups', async () => {
    // Reserved well within the 102.5 ms that 41 slots 2.5 ms apart span.
    const { runId, queue, waits } = await reserveAtOnce(41);
    const reservedAt = Date.now();
    const starts = waits.map((wait) => reservedAt + wait);
    // The last slot lies ahead.
    expect(waits.every((wait) => wait >= 0)).toBe(true);
    expect(waits[40]).toBeGreaterThan(0);
    // They start in groups 100 ms apart (2 or 3 over 102.5 ms), so that the handler gets them as batches, not one
    // at a time. Starts read on this clock are within a few ms of their group's; one by one they make about 20.
    const groups: number[] = [];
    for (const start of starts) if (!groups.some((group) => Math.abs(group - start) <= 3)) groups.push(start);
    expect(groups.length).toBeLessThanOrEqual(8);
    // The next free slot, 41 x 2.5 ms after the first, keeps its half millisecond.
    expect(Number(await fleet.context.redis.get(`${fleet.prefix}:runs:${runId}:next-start`)) % 1).toBe(0.5);
    await queue.obliterate({ force: true });
  });

  it('a paced job whose slot is within a second is held by its worker; one whose slot lies further off keeps it in its progress, to wait aside', async () => {
    // 1,000 slots at 400/1s span 2.5 s: the first lie within the hold, the last well beyond it.
    const { runId, queue, pacer, jobs, waits } = await reserveAtOnce(1_000);
    expect(waits[0]).toBeLessThanOrEqual(HOLD_IN_WORKER_MS);
    expect(waits[999]).toBeGreaterThan(HOLD_IN_WORKER_MS);
    const stored = await Promise.all(jobs.map(async (job) => (await queue.getJob(job.id!))!.progress));
    const keptInProgress = stored.map((progress) => typeof progress === 'object' && progress !== null && 'startsAt' in progress);
    expect(keptInProgress).toEqual(waits.map((wait) => wait > HOLD_IN_WORKER_MS));
    // A held job asked again (after its hold) keeps its slot instead of taking another.
    const next = await fleet.context.redis.get(`${fleet.prefix}:runs:${runId}:next-start`);
    expect(await pacer.waitFor(jobs[0]!, runId, 1_000 / 400)).toBeLessThanOrEqual(waits[0]!);
    expect(await fleet.context.redis.get(`${fleet.prefix}:runs:${runId}:next-start`)).toBe(next);
    await queue.obliterate({ force: true });
  });

  it('a paced run is added on its schedule, each job delayed to the 100 ms group of its slot in source order; an unpaced run is not delayed', async () => {
    const { ownFleet } = await seededFleet(120);
    const queue = ownFleet.context.queue(lotsFamily);
    const before = Date.now();
    await ownFleet.enqueue(lotsFamily, { kind: 'all' }, { rate: { max: 400, windowMs: 1_000 } });
    // No worker runs here, so nothing leaves the delayed set.
    expect(await queue.getJobCounts('delayed', 'waiting')).toEqual({ delayed: 120, waiting: 0 });
    const jobs = (await queue.getJobs(['delayed'])).sort((a, b) => (a.data.key < b.data.key ? -1 : 1));
    const dueAt = jobs.map((job) => job.timestamp + job.delay);
    // Never before its slot (2.5 ms apart, from a second after the first page), in order.
    dueAt.forEach((due, i) => expect(due, `job ${i}`).toBeGreaterThanOrEqual(before + 1_000 + i * 2.5));
    dueAt.forEach((due, i) => i > 0 && expect(due, `job ${i}`).toBeGreaterThanOrEqual(dueAt[i - 1]! - 5));
    // In groups: 120 slots span 300 ms, so 3 or 4 groups (a time read a few ms apart within one), not 120 times.
    const groups: number[] = [];
    for (const due of dueAt) if (!groups.some((group) => Math.abs(group - due) <= 10)) groups.push(due);
    expect(groups.length).toBeLessThanOrEqual(5);
    await queue.obliterate({ force: true });
    await ownFleet.enqueue(lotsFamily);
    expect(await queue.getJobCounts('delayed', 'waiting')).toEqual({ delayed: 0, waiting: 120 });
  });

  it("a paced run's jobs are added at most twice as fast as they start, and at most a minute ahead of them", () => {
    const first = 1_000_000;
    // 400/1s, a slot every 2.5 ms: 1,000 jobs are 2.5 s of the run, added in no less than 1.25 s.
    expect(addingWait(first, 1_000, 2.5, first)).toBe(1_250);
    expect(addingWait(first, 1_000, 2.5, first + 1_250)).toBe(0);
    // 100,000 jobs are 250 s of the run: by then the minute's lead holds them back, not the factor.
    expect(addingWait(first, 100_000, 2.5, first)).toBe(190_000);
    expect(addingWait(first, 100_000, 2.5, first + 125_000)).toBe(65_000);
    expect(addingWait(first, 100_000, 2.5, first + 190_000)).toBe(0);
  });

  it("a paced run's jobs are added on the pace's schedule; stopped between pages, the run keeps what was added", async () => {
    const { ownFleet } = await seededFleet(300);
    const queue = ownFleet.context.queue(lotsFamily);
    // 100/1s: a slot every 10 ms, so a job added every 5 ms at most, a page of 50 every 250 ms.
    const rate = { max: 100, windowMs: 1_000 };

    const stop = new AbortController();
    const stopped = ownFleet.enqueue(
      lotsFamily,
      { kind: 'all' },
      { rate, pageSize: 50, signal: stop.signal, onProgress: (p) => p.added === 100 && stop.abort(new Error('interrupted by SIGINT')) },
    );
    await expect(stopped).rejects.toThrow(/^run (\S+) stopped enqueuing after 100 jobs \(they still run\): interrupted by SIGINT; enqueue again for the rest$/);
    const runId = /^run (\S+) /.exec(((await stopped.catch((error: Error) => error)) as Error).message)![1]!;
    // Sealed with its 100 jobs: it can finish once they have run.
    expect(await ownFleet.context.runs.get(runId)).toMatchObject({ status: 'RUNNING', total: 100 });
    expect(await queue.getJobCounts('delayed')).toEqual({ delayed: 100 });
    await queue.obliterate({ force: true });

    const before = Date.now();
    const pagesAt: number[] = [];
    await ownFleet.enqueue(lotsFamily, { kind: 'all' }, { rate, pageSize: 50, onProgress: () => pagesAt.push(Date.now()) });
    expect(pagesAt).toHaveLength(6);
    // Page k is read no sooner than (k - 1) pages' worth of that pace after the first.
    pagesAt.forEach((at, k) => expect(at, `page ${k + 1}`).toBeGreaterThanOrEqual(before + k * 250));
    expect(await queue.getJobCounts('delayed')).toEqual({ delayed: 300 });
    await queue.obliterate({ force: true });
  });

  it("a producer's hold on its run: kept while it adds, so the run is never sealed under it; once lapsed, the run is sealed with what it noted and the producer is told", async () => {
    const { own, ownFleet } = await seededFleet(150);
    const { runs } = ownFleet.context;
    // 100/1s adds a page of 20 every 100 ms at most: some 0.7 s of adding, renewed every 50 ms.
    let adding = true;
    const looks: number[] = [];
    const watching = (async () => {
      while (adding) looks.push((await reconcileRuns(runs)).abandoned);
    })();
    const added = await ownFleet.enqueue(lotsFamily, { kind: 'all' }, { rate: { max: 100, windowMs: 1_000 }, pageSize: 20, leaseMs: 200 });
    adding = false;
    await watching;
    expect(looks.length).toBeGreaterThan(3);
    expect(looks.filter((sealed) => sealed > 0)).toEqual([]);
    expect(await own.prisma.fleetRun.findUniqueOrThrow({ where: { id: added.runId! } })).toMatchObject({ status: 'RUNNING', total: 150 });

    // A producer that dies: it noted 5 jobs added, then was adding 4 more when it went silent: 3 of them reached Redis.
    const runId = newRunId();
    await runs.create(runId, 'lots', { kind: 'all' }, { origin: 'test' });
    // Never held (a producer of a version without holds): left to its producer.
    expect((await reconcileRuns(runs)).abandoned).toBe(0);
    expect(await runs.holdProducer('lots', runId, 100)).toBe(true);
    const ids = Array.from({ length: 9 }, (_, i) => `lots-dead${i}`);
    await runs.noteAdding('lots', runId, ids.slice(0, 5));
    await runs.noteAdded('lots', 0, runId);
    await runs.noteAdding('lots', runId, ids.slice(5));
    const [queue] = ownFleet.context.shardQueues(lotsFamily);
    for (const id of ids.slice(0, 8)) await queue!.add('lots', { runId, key: id.slice('lots-'.length), seal: 'x' }, { jobId: id });
    // Readers see the jobs noted so far, as a total still growing.
    expect(await runs.counters('lots', runId)).toMatchObject({ total: 5, enqueued: false });
    let sealed = 0;
    await until('the hold to lapse and the run to be sealed', async () => (sealed += (await reconcileRuns(runs)).abandoned) > 0, 10_000, 20);
    expect(sealed).toBe(1);
    expect(await own.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({ status: 'RUNNING', total: 8 });
    expect((await runs.counters('lots', runId))!).toMatchObject({ total: 8, enqueued: true });
    await Promise.all(ids.slice(0, 8).map((id) => queue!.remove(id)));
    // Back from wherever it was, the producer may not hold it again; nobody seals it twice.
    expect(await runs.holdProducer('lots', runId, 100)).toBe(false);
    expect((await reconcileRuns(runs)).abandoned).toBe(0);

    // A producer cut off from Redis past its lease finds its run sealed at its next renewal, and stops adding.
    let sealedUnder: Promise<unknown> = Promise.resolve();
    const fenced = ownFleet.enqueue(
      lotsFamily,
      { kind: 'all' },
      {
        rate: { max: 10, windowMs: 1_000 },
        pageSize: 20,
        leaseMs: 200,
        onProgress: (p) => {
          if (p.found === 20)
            sealedUnder = (async () => {
              const { id } = await own.prisma.fleetRun.findFirstOrThrow({ where: { status: 'ENQUEUEING' } });
              await runs.live(ownFleet.context.layout.shards('lots')[0]!).markEnqueued(id, 20);
            })();
        },
      },
    );
    await expect(fenced).rejects.toThrow(
      /^run \S+ stopped enqueuing after \d+ jobs \(they still run\): the workers sealed it after 0.2 s without word from this command; enqueue again for the rest$/,
    );
    await sealedUnder;

    // A producer that sealed its run in Redis and died before its record: the record is written, nothing is sealed again.
    const recordless = newRunId();
    await runs.create(recordless, 'lots', { kind: 'all' }, { origin: 'test' });
    expect(await runs.holdProducer('lots', recordless, 60_000)).toBe(true);
    await runs.live(ownFleet.context.layout.shards('lots')[0]!).markEnqueued(recordless, 5);
    expect((await reconcileRuns(runs)).abandoned).toBe(0);
    expect(await own.prisma.fleetRun.findUniqueOrThrow({ where: { id: recordless } })).toMatchObject({ status: 'RUNNING', total: 5 });
  });

  it('a run paused while its jobs are being added gets no more until it is resumed, its schedule moved on by the pause; one cancelled then gets no more', async () => {
    const { own, ownFleet } = await seededFleet(300);
    const { context } = ownFleet;
    const control = (runId: string, action: 'pause' | 'resume' | 'cancel') =>
      controlRun({ prisma: context.prisma, runs: context.runs, family: 'lots', queues: context.shardQueues(lotsFamily) }, runId, action);
    const queue = context.queue(lotsFamily);
    /** When each of the run's delayed jobs is due, in source order (job ids follow the keys). */
    const dueTimes = async () => (await queue.getJobs(['delayed'])).sort((a, b) => (a.data.key < b.data.key ? -1 : 1)).map((job) => job.timestamp + job.delay);
    /**
     * A run of every row paced at 50/1s, in pages of 50: a page every 500 ms
     * at most, time enough to act on the run once its first page is added.
     */
    const enqueueActing = (action: 'pause' | 'cancel', onPaused?: (paused: boolean, run: { id: string; added: number; acted: Promise<unknown> }) => void) => {
      const run = { id: '', added: 0, acted: Promise.resolve() as Promise<unknown> };
      const result = ownFleet.enqueue(
        lotsFamily,
        { kind: 'all' },
        {
          rate: { max: 50, windowMs: 1_000 },
          pageSize: 50,
          onRun: (id) => (run.id = id),
          onProgress: (p) => {
            run.added = p.added;
            if (p.added === 50) run.acted = control(run.id, action);
          },
          onPaused: onPaused && ((paused) => onPaused(paused, run)),
        },
      );
      return { run, result };
    };

    const seen: { paused: boolean; added: number }[] = [];
    let resumed: Promise<{ at: number; addedBefore: number; dueBefore: number[] }> | null = null;
    const paused = enqueueActing('pause', (isPaused, run) => {
      seen.push({ paused: isPaused, added: run.added });
      // The producer waits; the run is resumed once it has settled PAUSED.
      if (isPaused)
        resumed = (async () => {
          expect(await run.acted).toBe('PAUSED');
          const dueBefore = await dueTimes();
          const addedBefore = run.added;
          expect(dueBefore).toHaveLength(addedBefore);
          const at = Date.now();
          expect(await control(run.id, 'resume')).toBe('RUNNING');
          return { at, addedBefore, dueBefore };
        })();
    });
    expect(await paused.result).toMatchObject({ runId: paused.run.id, added: 300 });
    expect(seen.map((s) => s.paused)).toEqual([true, false]);
    const { at, addedBefore, dueBefore } = await resumed!;
    // Nothing was added while the run was paused...
    expect(seen[1]!.added).toBe(addedBefore);
    expect(addedBefore).toBeLessThan(300);
    // ...and what came after was scheduled from the resume on, not due at once: its first job
    // is due after the resume, and about a second or more after the last one before it: a paused producer looks again once
    // a second, so the schedule moves on by that at least (less what adding a page took: a job's due time counts from its add).
    const dueAfter = (await dueTimes()).slice(-(300 - addedBefore));
    expect(dueAfter[0]!).toBeGreaterThanOrEqual(at);
    expect(dueAfter[0]! - dueBefore[dueBefore.length - 1]!).toBeGreaterThanOrEqual(800);
    expect(await own.prisma.fleetRun.findUniqueOrThrow({ where: { id: paused.run.id } })).toMatchObject({ status: 'RUNNING', total: 300 });
    expect(await control(paused.run.id, 'cancel')).toBe('CANCELLED');

    const cancelling = enqueueActing('cancel');
    const cancelled = await cancelling.result;
    expect(await cancelling.run.acted).toBe('CANCELLED');
    expect(cancelled.added).toBeLessThan(300);
    expect(await own.prisma.fleetRun.findUniqueOrThrow({ where: { id: cancelled.runId! } })).toMatchObject({ status: 'CANCELLED', total: cancelled.added });
  });

  it('the run guard asks Postgres once for the many jobs of a run that ask at the same moment, and caches the answer', async () => {
    const { runs } = fleet.context;
    const runId = newRunId();
    await runs.create(runId, 'lots', { kind: 'all' }, { origin: 'test' });
    let asked = 0;
    // The real client, counted: every question still goes to Postgres.
    const counted = {
      fleetRun: {
        findUnique: (args: Parameters<PrismaClient['fleetRun']['findUnique']>[0]) => {
          asked += 1;
          return db.prisma.fleetRun.findUnique(args);
        },
      },
    } as unknown as PrismaClient;
    const guard = new RunGuard(counted, runs, { openTtlMs: 60_000 });
    const verdicts = await Promise.all(Array.from({ length: 300 }, (_, i) => guard.verdict({ runId, key: `${i}` }, 'lots', `lots-${i}`)));
    expect(verdicts.every((verdict) => verdict.kind === 'run')).toBe(true);
    expect(asked).toBe(1);
    await guard.verdict({ runId, key: 'later' }, 'lots', 'lots-later');
    expect(asked).toBe(1);
    // A run that does not exist is refused, and asked about once as well.
    const nowhere = newRunId(new Date(0));
    const missing = await Promise.all([1, 2, 3].map((i) => guard.verdict({ runId: nowhere, key: `${i}` }, 'lots', `lots-${i}`)));
    expect(missing.map((verdict) => verdict.kind)).toEqual(['refuse', 'refuse', 'refuse']);
    expect(asked).toBe(2);
  });
});
