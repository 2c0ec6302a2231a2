import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { lotsFamily } from '../src/families/lots.js';
import { controlRun, RunControlError, type RunAction } from '../src/fleet/runs/control.js';
import { ENDED_STATUSES, type FleetRunStatus } from '../src/fleet/runs/lifecycle.js';
import { reconcileRuns } from '../src/fleet/runs/reconciler.js';
import { createTestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { reachableFrom } from './support/lifecycle.js';
import { until } from './support/processes.js';

/** Sequences tried: a few in npm test; TYS_MODEL_RUNS asks for more (npm run chaos sets it). */
const SEQUENCES = Number(process.env.TYS_MODEL_RUNS ?? 4);
const SEED = Number(process.env.TYS_MODEL_SEED ?? Date.now() % 1_000_000);
/** Replays one failure: the path fast-check prints beside the seed. */
const PATH = process.env.TYS_MODEL_PATH;
const INVESTMENTS = 40;

type Fleet = Awaited<ReturnType<typeof testFleet>>;

/** The real system under the model: a database, a fleet on Redis, its workers when started, and each run's last seen status. */
interface Real {
  fleet: Fleet;
  workers: { close(): Promise<void> } | null;
  seen: Map<string, FleetRunStatus>;
}

/** The model: how many runs exist, and whether workers run. Its commands act on the real fleet and check it. */
interface Model {
  runs: number;
  working: boolean;
}

/** Reads every run, and checks that each moved only along the table since last seen, its finishedAt agreeing with its status. */
async function observe(real: Real): Promise<void> {
  for (const row of await real.fleet.context.prisma.fleetRun.findMany()) {
    const before = real.seen.get(row.id) ?? 'ENQUEUEING';
    expect(reachableFrom(before).has(row.status), `run ${row.id}: ${before} -> ${row.status}`).toBe(true);
    expect(row.finishedAt !== null, `run ${row.id} ${row.status} with finishedAt ${String(row.finishedAt)}`).toBe(ENDED_STATUSES.includes(row.status));
    real.seen.set(row.id, row.status);
  }
}

class Enqueue implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real) {
    const { runId } = await real.fleet.enqueue(lotsFamily);
    if (runId) model.runs += 1;
    await observe(real);
  }
  toString = () => 'enqueue';
}

class Control implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly action: RunAction,
    readonly pick: number,
  ) {}
  check = (model: Readonly<Model>) => model.runs > 0;
  async run(_model: Model, real: Real) {
    const ids = [...real.seen.keys()];
    const runId = ids[this.pick % ids.length]!;
    const queues = real.fleet.context.shardQueues(lotsFamily);
    // An action that does not apply to the run as it is, is the operator's refusal: one line, nothing changed.
    await controlRun({ prisma: real.fleet.context.prisma, runs: real.fleet.context.runs, family: lotsFamily.name, queues }, runId, this.action, {
      settleTimeoutMs: 300,
    }).catch((error: unknown) => {
      if (!(error instanceof RunControlError)) throw error;
    });
    await observe(real);
  }
  toString = () => `${this.action} #${this.pick}`;
}

class Workers implements fc.AsyncCommand<Model, Real> {
  constructor(readonly on: boolean) {}
  check = (model: Readonly<Model>) => model.working !== this.on;
  async run(model: Model, real: Real) {
    if (this.on) real.workers = real.fleet.startWorkers([lotsFamily], { concurrency: 4 });
    else await real.workers!.close();
    if (!this.on) real.workers = null;
    model.working = this.on;
    await observe(real);
  }
  toString = () => (this.on ? 'workers start' : 'workers stop');
}

class Reconcile implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(_model: Model, real: Real) {
    await reconcileRuns(real.fleet.context.runs);
    await observe(real);
  }
  toString = () => 'reconcile';
}

const commands = [
  fc.constant(new Enqueue()),
  fc.tuple(fc.constantFrom<RunAction>('pause', 'resume', 'cancel', 'retry'), fc.nat(20)).map(([action, pick]) => new Control(action, pick)),
  fc.boolean().map((on) => new Workers(on)),
  fc.constant(new Reconcile()),
];

/**
 * Once the sequence is over: resumes what is paused, finishes what is
 * being cancelled, lets workers run, and checks that every run ends with
 * counts that add up and leaves no job of its own waiting in Redis.
 */
async function settleAndCheck(real: Real): Promise<void> {
  const { context } = real.fleet;
  const queues = context.shardQueues(lotsFamily);
  const deps = { prisma: context.prisma, runs: context.runs, family: lotsFamily.name, queues };
  real.workers ??= real.fleet.startWorkers([lotsFamily], { concurrency: 4 });
  await until(
    'every run to end',
    async () => {
      for (const run of await context.prisma.fleetRun.findMany({ where: { finishedAt: null } })) {
        if (run.status === 'PAUSING' || run.status === 'PAUSED') await controlRun(deps, run.id, 'resume').catch(() => undefined);
        if (run.status === 'CANCELLING') await controlRun(deps, run.id, 'cancel', { settleTimeoutMs: 300 }).catch(() => undefined);
      }
      await reconcileRuns(context.runs);
      await observe(real);
      return (await context.prisma.fleetRun.count({ where: { finishedAt: null } })) === 0;
    },
    60_000,
    200,
  ).catch(async (error: unknown) => {
    const open = await context.prisma.fleetRun.findMany({ where: { finishedAt: null } });
    const counters = await Promise.all(
      open.map(async (run) => ({ run: run.id, status: run.status, live: await context.runs.counters(lotsFamily.name, run.id) })),
    );
    const jobs = await Promise.all(queues.map((queue) => queue.getJobCounts()));
    throw new Error(`${(error as Error).message}; open runs: ${JSON.stringify(counters)}; jobs: ${JSON.stringify(jobs)}`);
  });
  // A run ends when its last outcome is counted, which is just before BullMQ moves that job to its finished set.
  const ended = new Set((await context.prisma.fleetRun.findMany({ select: { id: true } })).map((run) => run.id));
  const unfinishedJobs = async () =>
    (await Promise.all(queues.map((queue) => queue.getJobs(['waiting', 'delayed', 'active', 'prioritized']))))
      .flat()
      .filter((job) => ended.has(job.data?.runId));
  await until('the jobs of ended runs to leave the queue', async () => (await unfinishedJobs()).length === 0, 10_000).catch(() => undefined);
  const pending = await unfinishedJobs();
  for (const run of await context.prisma.fleetRun.findMany()) {
    expect(['COMPLETED', 'FAILED', 'CANCELLED'], `run ${run.id}`).toContain(run.status);
    const done = run.completed + run.skipped + run.failed;
    if (run.status === 'CANCELLED') expect(done, `cancelled run ${run.id}`).toBeLessThanOrEqual(run.total);
    else expect(done, `run ${run.id} ${run.status}`).toBe(run.total);
    expect(
      pending.filter((job) => job.data?.runId === run.id).map((job) => job.id),
      `jobs of ended run ${run.id} left in Redis`,
    ).toEqual([]);
  }
}

describe('the run lifecycle, against a model', () => {
  it(`keeps every run on the table's moves through random operator actions and worker stops, and ends each with its counts (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 12 }), async (sequence) => {
        const db = await createTestDatabase();
        await seedMvp(db.prisma, { investments: INVESTMENTS, badQuantityRate: 0.1 });
        const real: Real = { fleet: await testFleet(db), workers: null, seen: new Map() };
        try {
          await fc.asyncModelRun(() => ({ model: { runs: 0, working: false }, real }), sequence);
          await settleAndCheck(real);
        } finally {
          await real.workers?.close();
          await real.fleet.close();
          await db.drop();
        }
      }),
      { numRuns: SEQUENCES, seed: SEED, endOnFailure: true, ...(PATH ? { path: PATH } : {}) },
    );
  }, 600_000);
});
