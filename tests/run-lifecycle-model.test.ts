import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { lotsFamily } from '../src/families/lots.js';
import { controlRun, RunControlError, type RunAction } from '../src/fleet/runs/control.js';
import { ENDED_STATUSES, type FleetRunStatus } from '../src/fleet/runs/lifecycle.js';
import { reconcileRuns } from '../src/fleet/runs/reconciler.js';
import { Redis } from 'ioredis';
import { createTestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { reachableFrom } from './support/lifecycle.js';
import { fleetEnv, spawnTys, spawnWorker, until } from './support/processes.js';
import { PrivateRedis } from './support/redis-server.js';

/** Sequences tried: a few in npm test; TYS_MODEL_RUNS asks for more (npm run chaos sets it). */
const SEQUENCES = Number(process.env.TYS_MODEL_RUNS ?? 4);
const SEED = Number(process.env.TYS_MODEL_SEED ?? Date.now() % 1_000_000);
/** Replays one failure: the path fast-check prints beside the seed. */
const PATH = process.env.TYS_MODEL_PATH;
const INVESTMENTS = 40;

/** Stalled jobs (a killed worker's) are handed back within about a second rather than 30. */
const WORKER_LOCKS = { lockDuration: 1_000, stalledInterval: 500 };

type Fleet = Awaited<ReturnType<typeof testFleet>>;

/**
 * The real system under the model: a database, a fleet on a Redis of the
 * test's own (its connections can be cut and its data lost without touching
 * anyone else's), its in-process workers when started, each run's last seen
 * status, and the runs that were open when Redis lost its data.
 */
interface Real {
  fleet: Fleet;
  redis: PrivateRedis;
  workers: { close(): Promise<void> } | null;
  seen: Map<string, FleetRunStatus>;
  hitByLoss: Set<string>;
}

/** The environment of a `tys` process on the real fleet. */
function envOf(real: Real): NodeJS.ProcessEnv {
  return fleetEnv(real.fleet.config, {
    TYS_LOCK_DURATION_MS: String(WORKER_LOCKS.lockDuration),
    TYS_STALLED_INTERVAL_MS: String(WORKER_LOCKS.stalledInterval),
    TYS_PRODUCER_LEASE: '1s',
  });
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

/**
 * The statuses in which an operator's action applies, as the operations
 * guide promises them: the model's own, not read from the lifecycle's
 * table, so that a move missing from the table is caught as a refusal.
 */
const ACCEPTS: Record<RunAction, FleetRunStatus[]> = {
  pause: ['ENQUEUEING', 'RUNNING'],
  resume: ['PAUSING', 'PAUSED'],
  cancel: ['ENQUEUEING', 'RUNNING', 'PAUSING', 'PAUSED', 'CANCELLING'],
  retry: ['FAILED'],
};

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
    const refused = await controlRun(
      { prisma: real.fleet.context.prisma, runs: real.fleet.context.runs, family: lotsFamily.name, queues },
      runId,
      this.action,
      {
        settleTimeoutMs: 300,
      },
    ).then(
      () => false,
      (error: unknown) => {
        if (!(error instanceof RunControlError)) throw error;
        return true;
      },
    );
    if (refused) {
      // Only the workers moved the run meanwhile, and none of their moves takes a run out of ACCEPTS and back.
      const { status } = await real.fleet.context.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } });
      expect(ACCEPTS[this.action], `${this.action} refused for run ${runId} ${status}`).not.toContain(status);
    }
    await observe(real);
  }
  toString = () => `${this.action} #${this.pick}`;
}

class Workers implements fc.AsyncCommand<Model, Real> {
  constructor(readonly on: boolean) {}
  check = (model: Readonly<Model>) => model.working !== this.on;
  async run(model: Model, real: Real) {
    if (this.on) real.workers = real.fleet.startWorkers([lotsFamily], { concurrency: 4, ...WORKER_LOCKS });
    else await real.workers!.close();
    if (!this.on) real.workers = null;
    model.working = this.on;
    await observe(real);
  }
  toString = () => (this.on ? 'workers start' : 'workers stop');
}

/** A worker process that takes jobs for a while, then is killed (SIGKILL): its active jobs stall and go to another worker. */
class KillWorker implements fc.AsyncCommand<Model, Real> {
  constructor(readonly afterMs: number) {}
  check = () => true;
  async run(_model: Model, real: Real) {
    const worker = spawnWorker(envOf(real), ['--families', 'lots', '--concurrency', '4']);
    await new Promise((resolve) => setTimeout(resolve, this.afterMs));
    worker.kill('SIGKILL');
    await worker.exited;
    await observe(real);
  }
  toString = () => `kill a worker after ${this.afterMs} ms`;
}

/** A paced `tys enqueue` killed (SIGKILL) once its run exists: the run is sealed by the workers once its lease lapses. */
class KillProducer implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real) {
    const producer = spawnTys(['enqueue', 'lots', '--all', '--rate', '20/1s'], envOf(real));
    await until('the producer to name its run', () => /^run \S+:/m.test(producer.output()) || producer.exitCode !== null, 30_000, 20);
    producer.kill('SIGKILL');
    await producer.exited;
    if (/^run \S+:/m.test(producer.output())) model.runs += 1;
    await observe(real);
  }
  toString = () => 'kill a producer';
}

/** Every connection to Redis is cut: each reconnects, and no count may be lost or doubled. */
class DropConnections implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(_model: Model, real: Real) {
    const admin = new Redis(real.redis.url);
    try {
      await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    } finally {
      admin.disconnect();
    }
    await observe(real);
  }
  toString = () => 'cut every Redis connection';
}

/** Redis loses every key (a crash of a Redis without persistence): the runs then open may end INTERRUPTED. */
class LoseRedis implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(_model: Model, real: Real) {
    for (const run of await real.fleet.context.prisma.fleetRun.findMany({ where: { finishedAt: null } })) real.hitByLoss.add(run.id);
    await real.redis.restart();
    await observe(real);
  }
  toString = () => 'Redis loses its data';
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
  fc.nat(1_500).map((afterMs) => new KillWorker(afterMs)),
  fc.constant(new KillProducer()),
  fc.constant(new DropConnections()),
  fc.constant(new LoseRedis()),
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
  real.workers ??= real.fleet.startWorkers([lotsFamily], { concurrency: 4, ...WORKER_LOCKS });
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
    const lost = real.hitByLoss.has(run.id);
    expect(['COMPLETED', 'FAILED', 'CANCELLED', ...(lost ? ['INTERRUPTED'] : [])], `run ${run.id}`).toContain(run.status);
    const done = run.completed + run.skipped + run.failed;
    if (run.status === 'CANCELLED' || run.status === 'INTERRUPTED') expect(done, `${run.status} run ${run.id}`).toBeLessThanOrEqual(run.total);
    else expect(done, `run ${run.id} ${run.status}`).toBe(run.total);
    expect(
      pending.filter((job) => job.data?.runId === run.id).map((job) => job.id),
      `jobs of ended run ${run.id} left in Redis`,
    ).toEqual([]);
  }
}

describe('the run lifecycle, against a model', () => {
  it(`keeps every run on the table's moves through operator actions, killed workers and producers, cut connections and Redis losses, and ends each with its counts (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 12 }), async (sequence) => {
        const db = await createTestDatabase();
        const redis = await PrivateRedis.start();
        await seedMvp(db.prisma, { investments: INVESTMENTS, badQuantityRate: 0.1 });
        const real: Real = { fleet: await testFleet(db, undefined, { redisUrl: redis.url }), redis, workers: null, seen: new Map(), hitByLoss: new Set() };
        try {
          await fc.asyncModelRun(() => ({ model: { runs: 0, working: false }, real }), sequence);
          await settleAndCheck(real);
        } finally {
          await real.workers?.close();
          await real.fleet.close();
          await redis.stop();
          await db.drop();
        }
      }),
      { numRuns: SEQUENCES, seed: SEED, endOnFailure: true, ...(PATH ? { path: PATH } : {}) },
    );
  }, 600_000);
});
