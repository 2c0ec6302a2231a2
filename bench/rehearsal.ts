import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { deployMigrations } from '../src/db/migrate/deploy.js';
import { listMigrationFiles, readMigrationSql } from '../src/db/migrate/files.js';
import { PROJECT_ROOT } from '../src/project-root.js';
import { createPrisma, type PrismaClient } from '../src/db/prisma.js';
import { seedMvp } from '../src/demo/seed.js';
import { auditConstraints, constraintsFamily, validateConstraints } from '../src/families/constraints.js';
import { corporateActionsFamily } from '../src/families/corporate-actions.js';
import { lotsFamily } from '../src/families/lots.js';
import { openFleet } from '../src/fleet/context.js';
import { throttleReasons } from '../src/fleet/db-health.js';
import type { JobFamily } from '../src/fleet/family.js';
import { ApplicationProcess } from './application.js';
import { pairedP99RatioInterval, type RatioInterval } from './paired-interval.js';
import type { RequestKind, TimeRange, WindowStats } from './traffic.js';

export interface RehearsalOptions {
  /** A database URL whose server the rehearsal makes its scratch database on. */
  serverUrl: string;
  redisUrl: string;
  /** MVP investments seeded. Default 200,000. */
  investments?: number;
  /** The application's requests per second. Default 200. */
  rate?: number;
  /** How long the application runs alone first, for its baseline. Default 60 s. */
  baselineSeconds?: number;
  /** Worker processes. Default 1. */
  workers?: number;
  /** Each run's pace (`tys enqueue --rate`), like 500/1s. Default none: as fast as the workers and throttling allow. */
  fleetRate?: string;
  /**
   * Niceness of the worker and producer processes (their TYS_NICE), 0 to
   * 19. Default 0. Where the fleet shares the machine with the database (a
   * rehearsal box), a nice fleet yields the CPU to Postgres and the
   * application first, much as a fleet on machines of its own would.
   */
  fleetNice?: number;
  /**
   * CPUs (a `taskset` list such as "1" or "2-3") the worker and producer
   * processes may run on; `appCpus` the same for the simulated
   * application's process. Default: any. Kept apart, they show on one
   * box what the application would see with the fleet on machines of its
   * own, where only the database (and Redis, which floats) is shared.
   */
  fleetCpus?: string;
  appCpus?: string;
  /**
   * During each family's run, every `busySeconds` of work, stop the workers
   * for `quietSeconds` (under a second), and report the application's p99 in
   * those spells against its p99 in as long just before each (see
   * SegmentKind): the same schema, the same data and nearly the same moment
   * of a noisy machine, which the baseline minute at the start cannot be.
   * Default none.
   */
  alternate?: { busySeconds: number; quietSeconds: number };
  /** Keep the scratch database and the run's Redis keys afterwards. Default false. */
  keep?: boolean;
  /** Stops the rehearsal between two looks at its progress; what it made is removed all the same. */
  signal?: AbortSignal;
  say?: (line: string) => void;
}

export interface StepReport {
  step: string;
  seconds: number;
  app: {
    requests: number;
    p50Ms: number;
    p99Ms: number;
    p99VsBaseline: number;
    errors: number;
    errorRate: number;
    sampleErrors: string[];
    /** p99 of each kind of request. */
    p99ByKindMs: Partial<Record<RequestKind, number>>;
    /** p99 of the application process's own event-loop delay: its wait for a CPU, part of every request's latency. */
    loopDelayP99Ms: number;
    /** The application process's longest single event-loop delay. */
    loopDelayMaxMs: number;
  };
  /** The run's jobs, its rate from enqueue to end, and its jobs that failed. */
  fleet: { jobs: number; perSecond: number; failed: number } | null;
  /** The most sessions seen waiting on a lock at once (pg_stat_activity, sampled every 100 ms). */
  lockWaitersMax: number;
  /** Of those looks, how many found a session of the application waiting on a lock that a session of the fleet held. */
  appWaitsOnFleet: number;
  /** Whether the workers held back on the database's health during the step. */
  throttled: boolean;
  /** With `alternate`: the application in the spells with the workers stopped (quiet) and just before each (busy). */
  alternation?: {
    busy: PartWindow;
    quiet: PartWindow;
    p99BusyVsQuiet: number;
    /** Where that ratio may lie, given how it moves from pair to pair (see pairedP99RatioInterval); absent with fewer than two pairs. */
    p99BusyVsQuietInterval?: RatioInterval;
  };
  /**
   * A fleet step in its two parts: `tys enqueue` from its start to its exit
   * (a process starting, the source query paged, the jobs added) and the
   * run after it (the workers). They cost the machine differently, and a
   * step's p99 alone does not say which of them the application felt.
   */
  parts?: { enqueue: PartWindow; run: PartWindow };
  /** The baseline cut into windows as long as the step (see sameLengthWindows); absent for the baseline itself and steps too long for two such windows. */
  baselineWindows?: SameLengthWindows;
}

/**
 * The baseline cut into back-to-back windows as long as a step, and the p99
 * of each: what a step of that length sees with no fleet at all. A step of a
 * few seconds holds a few hundred requests, so its p99 is its slowest two or
 * three, and one stall of the machine decides it; the baseline's own
 * windows of its length show how far such stalls go here. The median is
 * the fair yardstick for a short step's p99, the baseline's whole p99 is not.
 */
export interface SameLengthWindows {
  windows: number;
  medianP99Ms: number;
  maxP99Ms: number;
  /** The step's p99 over the median of these windows' p99s. */
  p99VsMedian: number;
}

/** The application's requests due in some spans of a step. */
export interface PartWindow {
  windows: number;
  seconds: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

export interface RehearsalReport {
  investments: number;
  rate: number;
  fleetRate: string | null;
  fleetNice: number;
  fleetCpus: string | null;
  appCpus: string | null;
  baseline: StepReport;
  steps: StepReport[];
  /** The application alone after the migration, as long as the baseline: the new schema's cost, without the fleet. */
  after: StepReport;
  /** The final checks: every investment, the application's own included. */
  verify: { lots: { ok: boolean; checked: number; problems: number; sample: string[] }; constraintsLeft: number };
  /** Investments the application changed while the fleet ran. */
  appInvestments: number;
  /** Each migration, fleet and validation step against the target (see targetVerdict). */
  target: TargetVerdict;
}

/**
 * The Migration Strategy's alert threshold for a live migration, the
 * rehearsal's target: the application's queries no more than 20% slower
 * than before it.
 */
export const TARGET_P99_RATIO = 1.2;

export interface TargetVerdict {
  /** The application's p99 over its baseline p99 that a step may reach. */
  p99Ratio: number;
  /** Steps within it, with no application error. */
  met: string[];
  /**
   * The others. `pastBaselineWindows`: whether the step's p99 was above
   * that of every window of the baseline as long as the step, which a
   * stall of the machine alone does not explain; null for a step too long
   * to cut the baseline into two such windows.
   */
  missed: { step: string; p99VsBaseline: number; errors: number; pastBaselineWindows: boolean | null }[];
}

/** Sorts the steps (not the baseline, nor the application alone after the migration) by the target. */
export function targetVerdict(steps: readonly StepReport[], p99Ratio = TARGET_P99_RATIO): TargetVerdict {
  const verdict: TargetVerdict = { p99Ratio, met: [], missed: [] };
  for (const step of steps) {
    if (step.app.p99VsBaseline <= p99Ratio && step.app.errors === 0) verdict.met.push(step.step);
    else {
      const windows = step.baselineWindows;
      verdict.missed.push({
        step: step.step,
        p99VsBaseline: step.app.p99VsBaseline,
        errors: step.app.errors,
        pastBaselineWindows: windows ? step.app.p99Ms > windows.maxP99Ms : null,
      });
    }
  }
  return verdict;
}

/** The verdict in a line. */
export function verdictLine(verdict: TargetVerdict): string {
  const total = verdict.met.length + verdict.missed.length;
  const head = `target (application p99 at most ${verdict.p99Ratio} times its baseline, no application error): met in ${verdict.met.length} of ${total} steps`;
  if (verdict.missed.length === 0) return head;
  const missed = verdict.missed.map(
    (m) =>
      `${m.step} x${m.p99VsBaseline}${m.errors > 0 ? `, ${m.errors} application error${m.errors === 1 ? '' : 's'}` : ''}${
        m.pastBaselineWindows === null
          ? ''
          : m.pastBaselineWindows
            ? ', past every baseline window of its length'
            : ', within the baseline windows of its length'
      }`,
  );
  return `${head}; missed in ${missed.join('; ')}`;
}

/** What a window without the fleet saw of it: nothing to watch. */
const NO_FLEET = { lockWaitersMax: 0, appWaitsOnFleet: 0, throttled: false };

/** The simulated application's pool. */
const APPLICATION_CONNECTIONS = 20;

/** The rehearsal's own pool: seeding, validating, checking. */
const REHEARSAL_CONNECTIONS = 4;

/** The application_name of the simulated application's sessions. */
const APPLICATION_NAME = 'application';

const FAMILY_ORDER: JobFamily[] = [constraintsFamily, lotsFamily, corporateActionsFamily];

/**
 * A step's watchers: lock waiters and throttling, sampled every 100 ms until
 * stopped; a look that takes longer delays the next instead of queueing up.
 */
function watchStep(admin: pg.Client, redis: Redis, prefix: string, databaseName: string, family: string | null) {
  let lockWaitersMax = 0;
  let appWaitsOnFleet = 0;
  let throttled = false;
  let stopped = false;
  const look = async () => {
    // The fleet's sessions name themselves "tys ..." (the application's, APPLICATION_NAME).
    const { rows } = await admin.query<{ waiters: string; on_fleet: string }>(
      `SELECT count(*) AS waiters,
              count(*) FILTER (WHERE application_name = $2 AND EXISTS (
                SELECT 1 FROM pg_stat_activity holder
                 WHERE holder.pid = ANY(pg_blocking_pids(waiter.pid)) AND holder.application_name LIKE 'tys%')) AS on_fleet
         FROM pg_stat_activity waiter WHERE datname = $1 AND wait_event_type = 'Lock'`,
      [databaseName, APPLICATION_NAME],
    );
    lockWaitersMax = Math.max(lockWaitersMax, Number(rows[0]!.waiters));
    if (Number(rows[0]!.on_fleet) > 0) appWaitsOnFleet += 1;
    if (family && Object.keys(await throttleReasons(redis, prefix, [family])).length > 0) throttled = true;
  };
  const looking = (async () => {
    while (!stopped) {
      await look();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await looking;
      return { lockWaitersMax, appWaitsOnFleet, throttled };
    },
  };
}

/**
 * Parts of a step: in a fleet step, enqueue, from its start until `tys
 * enqueue` exits; then, with `alternate`, pairs of equal length, the run working
 * just before its workers stop (busy) and the workers stopped (quiet); the
 * second after each spell, when the jobs whose slots passed meanwhile all
 * start at once, is catch-up: a burst the stop made, which the run without
 * it would not have, left out of the step's figures; the rest of the step
 * is other. Equal and adjacent, the two halves meet the machine's own
 * stalls (other processes, the disk) alike: longer busy windows would meet
 * more of them, and their p99 would show it.
 */
type SegmentKind = 'enqueue' | 'busy' | 'quiet' | 'catch-up' | 'other';

interface Segment {
  kind: SegmentKind;
  range: TimeRange;
}

const rangesOf = (segments: Segment[], kinds: SegmentKind[]) => segments.filter((s) => kinds.includes(s.kind)).map((s) => s.range);

function partWindow(app: ApplicationProcess, label: string, ranges: TimeRange[]): PartWindow {
  const { all, seconds } = app.window(label, ranges);
  return {
    windows: ranges.length,
    seconds: Number(seconds.toFixed(1)),
    requests: all.count,
    errors: all.errors,
    p50Ms: round(all.p50Ms),
    p99Ms: round(all.p99Ms),
  };
}

/** See StepReport.parts; undefined for a step without a producer. */
function partsOf(segments: Segment[], app: ApplicationProcess): StepReport['parts'] {
  const enqueue = rangesOf(segments, ['enqueue']);
  if (enqueue.length === 0) return undefined;
  return { enqueue: partWindow(app, 'enqueue', enqueue), run: partWindow(app, 'run', rangesOf(segments, ['busy', 'quiet', 'other'])) };
}

function alternationOf(segments: Segment[], app: ApplicationProcess): StepReport['alternation'] {
  const quietRanges = rangesOf(segments, ['quiet']);
  if (quietRanges.length === 0) return undefined;
  const busyRanges = rangesOf(segments, ['busy']);
  const quiet = partWindow(app, 'quiet', quietRanges);
  const busy = partWindow(app, 'busy', busyRanges);
  // Each quiet spell follows its busy one (quietPair): the i-th of each kind make a pair.
  const interval = pairedP99RatioInterval(quietRanges.map((range, i) => ({ busy: app.latencies(busyRanges[i]!), quiet: app.latencies(range) })));
  return {
    busy,
    quiet,
    p99BusyVsQuiet: quiet.p99Ms > 0 ? round2(busy.p99Ms / quiet.p99Ms) : 0,
    ...(interval ? { p99BusyVsQuietInterval: { confidence: interval.confidence, low: round2(interval.low), high: round2(interval.high) } } : {}),
  };
}

const round2 = (ratio: number) => Number(ratio.toFixed(2));

/** "x1.02 (90%: 0.81-1.35)", or "x1.02" without an interval. */
function ratioText(alternation: NonNullable<StepReport['alternation']>): string {
  const interval = alternation.p99BusyVsQuietInterval;
  return `x${alternation.p99BusyVsQuiet}${interval ? ` (${Math.round(interval.confidence * 100)}%: ${interval.low}-${interval.high})` : ''}`;
}

const round = (ms: number) => Number(ms.toFixed(1));

/** See SameLengthWindows; undefined when the range holds fewer than two windows of `seconds`. */
function sameLengthWindows(app: ApplicationProcess, [from, to]: TimeRange, seconds: number, p99Ms: number): SameLengthWindows | undefined {
  const length = seconds * 1000;
  const count = length > 0 ? Math.floor((to - from) / length) : 0;
  if (count < 2) return undefined;
  const p99s = Array.from({ length: count }, (_, i) => app.window('baseline slice', [[from + i * length, from + (i + 1) * length]]).all.p99Ms).sort(
    (a, b) => a - b,
  );
  const median = round(p99s[Math.floor(count / 2)]!);
  return { windows: count, medianP99Ms: median, maxP99Ms: round(p99s.at(-1)!), p99VsMedian: median > 0 ? Number((p99Ms / median).toFixed(2)) : 0 };
}

/**
 * One pair: `quietSeconds` of the run working, then as long with the worker
 * processes stopped (SIGTSTP), the application beside a fleet that does
 * nothing; then the workers go on (SIGCONT). Pausing the run or its queues
 * instead would put the run behind its schedule for good (see
 * src/fleet/runs/pace.ts): its jobs would take the longer way, aside, after
 * the first pair. The quiet half must stay shorter than the second a worker
 * holds a job for, for the same reason. Resolves to the ms the workers were
 * stopped.
 */
async function quietPair(
  workers: ChildProcess[],
  quietSeconds: number,
  segment: (kind: SegmentKind) => void,
  pause: (ms: number) => Promise<void>,
): Promise<number> {
  segment('other');
  await pause(quietSeconds * 1000);
  segment('busy');
  const stoppedAt = Date.now();
  // SIGTSTP, not SIGSTOP: a niced worker runs in a session of its own under its launcher, which passes SIGTSTP on (bin/relaunch.js).
  for (const worker of workers) worker.kill('SIGTSTP');
  let stoppedMs: number;
  try {
    // Statements the workers had sent finish on the server.
    await pause(100);
    segment('other');
    await pause(quietSeconds * 1000);
    segment('quiet');
  } finally {
    for (const worker of workers) worker.kill('SIGCONT');
    stoppedMs = Date.now() - stoppedAt;
  }
  await pause(1000);
  segment('catch-up');
  return stoppedMs;
}

function report(
  step: string,
  window: WindowStats,
  baselineP99: number,
  watched: { lockWaitersMax: number; appWaitsOnFleet: number; throttled: boolean },
  fleet: StepReport['fleet'],
  split: Pick<StepReport, 'alternation' | 'parts'> = {},
): StepReport {
  const { all } = window;
  return {
    step,
    seconds: Number(window.seconds.toFixed(1)),
    app: {
      requests: all.count,
      p50Ms: Number(all.p50Ms.toFixed(1)),
      p99Ms: Number(all.p99Ms.toFixed(1)),
      p99VsBaseline: baselineP99 > 0 ? Number((all.p99Ms / baselineP99).toFixed(2)) : 0,
      errors: all.errors,
      errorRate: all.count > 0 ? Number((all.errors / all.count).toFixed(4)) : 0,
      sampleErrors: all.sampleErrors,
      p99ByKindMs: Object.fromEntries(Object.entries(window.byKind).map(([kind, stats]) => [kind, Number(stats.p99Ms.toFixed(1))])),
      loopDelayP99Ms: Number(window.loopDelayP99Ms.toFixed(1)),
      loopDelayMaxMs: Number(window.loopDelayMaxMs.toFixed(1)),
    },
    fleet,
    ...watched,
    ...(split.alternation ? { alternation: split.alternation } : {}),
    ...(split.parts ? { parts: split.parts } : {}),
  };
}

/** A `tys` command in a process of its own, on the given CPUs if any. */
function spawnTys(args: string[], env: NodeJS.ProcessEnv, stdio: StdioOptions, cpus: string | undefined): ChildProcess {
  const command = [process.execPath, path.join(PROJECT_ROOT, 'bin', 'tys.js'), ...args];
  const [file, ...rest] = cpus ? ['taskset', '-c', cpus, ...command] : command;
  return spawn(file!, rest, { env, cwd: PROJECT_ROOT, stdio });
}

function startWorkers(count: number, env: NodeJS.ProcessEnv, cpus: string | undefined): ChildProcess[] {
  return Array.from({ length: count }, () =>
    spawnTys(['worker', '--families', FAMILY_ORDER.map((f) => f.name).join(',')], env, ['ignore', 'ignore', 'inherit'], cpus),
  );
}

async function stopWorkers(workers: ChildProcess[]): Promise<void> {
  await Promise.all(
    workers.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    ),
  );
}

/**
 * The whole migration of an MVP database while the application's traffic
 * flows: adoption and each phase's schema change, then each family's data
 * work with worker processes, then validation; for each step, what the
 * application saw against its baseline, what the fleet did, the lock waits
 * and whether throttling engaged.
 */
export async function rehearse(options: RehearsalOptions): Promise<RehearsalReport> {
  const say = options.say ?? (() => undefined);
  const pause = async (ms: number) => {
    options.signal?.throwIfAborted();
    await new Promise((resolve) => setTimeout(resolve, ms));
    options.signal?.throwIfAborted();
  };
  const investments = options.investments ?? 200_000;
  const rate = options.rate ?? 200;
  const tag = randomBytes(4).toString('hex');
  const databaseName = `tys_rehearsal_${tag}`;
  const prefix = `tys-rehearsal-${tag}`;
  const databaseUrl = new URL(options.serverUrl);
  databaseUrl.pathname = `/${databaseName}`;
  const admin = new pg.Client({ connectionString: options.serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${databaseName}"`);
  const cleanups: (() => Promise<unknown>)[] = [async () => !options.keep && admin.query(`DROP DATABASE IF EXISTS "${databaseName}" WITH (FORCE)`)];
  // The rehearsal's own sessions (seeding, validation, checks), apart from the application's.
  let prisma: PrismaClient | null = null;
  const redis = new Redis(options.redisUrl);
  try {
    const baselineName = listMigrationFiles()[0]!.name;
    const mvp = new pg.Client({ connectionString: databaseUrl.toString() });
    await mvp.connect();
    await mvp.query(readMigrationSql(baselineName, 'migration'));
    await mvp.end();
    prisma = createPrisma(databaseUrl.toString(), { maxConnections: REHEARSAL_CONNECTIONS, applicationName: 'rehearsal' });
    say(`seeding ${investments} MVP investments in ${databaseName}`);
    await seedMvp(prisma, { investments, badQuantityRate: 0.002 });
    // As after restoring a copy of production: pg_restore brings no planner statistics.
    await prisma.$executeRaw`ANALYZE`;
    // Else the seed's dirty pages are written back during the baseline and
    // the first steps, which then measure the seed as much as the migration.
    await prisma.$executeRaw`CHECKPOINT`.catch((error: Error) =>
      say(`no CHECKPOINT after seeding (${error.message.split('\n').pop()}): the baseline may include writing the seed back`),
    );

    const app = await ApplicationProcess.start({
      databaseUrl: databaseUrl.toString(),
      rate,
      connections: APPLICATION_CONNECTIONS,
      applicationName: APPLICATION_NAME,
      cpus: options.appCpus,
    });
    cleanups.unshift(() => Promise.resolve(app.kill()));
    app.begin();
    say(`application traffic at ${rate} requests/s; baseline for ${options.baselineSeconds ?? 60} s`);
    /** The application alone for as long as the baseline; resolves to its window once every request of it has answered. */
    const alone = async (label: string) => {
      const from = Date.now();
      for (const until = from + (options.baselineSeconds ?? 60) * 1000; Date.now() < until;) await pause(Math.min(500, until - Date.now()));
      const to = Date.now();
      await app.settled(to);
      return { window: app.window(label, [[from, to]]), range: [from, to] as TimeRange };
    };
    const { window: baselineWindow, range: baselineRange } = await alone('baseline');
    const baseline = report('baseline', baselineWindow, baselineWindow.all.p99Ms, NO_FLEET, null);
    const baselineP99 = baselineWindow.all.p99Ms;
    const steps: StepReport[] = [];
    const step = async (name: string, family: string | null, work: (segment: (kind: SegmentKind) => void) => Promise<StepReport['fleet']>) => {
      options.signal?.throwIfAborted();
      const segments: Segment[] = [];
      let segmentFrom = Date.now();
      const segment = (kind: SegmentKind) => {
        const to = Date.now();
        segments.push({ kind, range: [segmentFrom, to] });
        segmentFrom = to;
      };
      const watch = watchStep(admin, redis, prefix, databaseName, family);
      const fleet = await work(segment);
      const watched = await watch.stop();
      segment('other');
      await app.settled(segmentFrom);
      const result = report(
        name,
        app.window(
          name,
          segments.filter((s) => s.kind !== 'catch-up').map((s) => s.range),
        ),
        baselineP99,
        watched,
        fleet,
        { alternation: alternationOf(segments, app), parts: partsOf(segments, app) },
      );
      steps.push(result);
      const alternation = result.alternation;
      say(
        `${name.padEnd(44)} app p99 ${result.app.p99Ms} ms (x${result.app.p99VsBaseline}), errors ${result.app.errors}` +
          (fleet ? `, fleet ${fleet.perSecond}/s${fleet.failed ? ` (${fleet.failed} FAILED)` : ''}` : '') +
          (result.parts ? ` (p99 ${result.parts.enqueue.p99Ms} ms while enqueueing, ${result.parts.run.p99Ms} ms after)` : '') +
          `, lock waiters max ${result.lockWaitersMax}, app waiting on the fleet ${result.appWaitsOnFleet}x${result.throttled ? ', throttled' : ''}` +
          (alternation ? `; working ${alternation.busy.p99Ms} ms against stopped ${alternation.quiet.p99Ms} ms, ${ratioText(alternation)}` : ''),
      );
    };

    for (const migration of listMigrationFiles()) {
      await step(`migrate ${migration.name}`, null, async () => {
        await deployMigrations(databaseUrl.toString(), { to: migration.name });
        return null;
      });
    }

    const config = { databaseUrl: databaseUrl.toString(), redisUrl: options.redisUrl, queuePrefix: prefix };
    const fleet = await openFleet(config);
    cleanups.unshift(async () => {
      await fleet.close();
      if (options.keep) return;
      for (let cursor = '0'; ;) {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        if ((cursor = next) === '0') break;
      }
    });
    const env = {
      ...process.env,
      DATABASE_URL: config.databaseUrl,
      REDIS_URL: options.redisUrl,
      TYS_QUEUE_PREFIX: prefix,
      TYS_LOG_LEVEL: 'warn',
      TYS_NICE: String(options.fleetNice ?? 0),
    };
    const workers = startWorkers(options.workers ?? 1, env, options.fleetCpus);
    cleanups.unshift(() => stopWorkers(workers));
    // Started before the steps are timed, as an operator's workers would be.
    for (const family of FAMILY_ORDER) {
      while ((await fleet.queue(family).getWorkersCount()) < (options.workers ?? 1)) await pause(100);
    }
    for (const family of FAMILY_ORDER) {
      await step(`${family.name} (fleet)`, family.name, async (segment) => {
        // The producer in a process of its own, as an operator runs it.
        const started = Date.now();
        const args = ['enqueue', family.name, '--all', ...(options.fleetRate ? ['--rate', options.fleetRate] : [])];
        const producer = spawnTys(args, env, 'pipe', options.fleetCpus);
        let output = '';
        producer.stdout!.on('data', (chunk) => (output += chunk));
        const code = await new Promise<number | null>((resolve) => producer.on('close', resolve));
        const runId = /^run (\S+):/m.exec(output)?.[1];
        if (code !== 0 || !runId) throw new Error(`tys enqueue ${family.name} ended with ${code}: ${output.trim()}`);
        segment('enqueue');
        let stoppedMs = 0;
        for (let pairAt = started + (options.alternate?.busySeconds ?? 0) * 1000; ;) {
          const run = await fleet.runs.get(runId);
          if (run?.finishedAt) {
            const seconds = (Date.now() - started - stoppedMs) / 1000;
            return { jobs: run.total, perSecond: Math.round(run.total / seconds), failed: run.failed };
          }
          if (options.alternate && Date.now() >= pairAt) {
            stoppedMs += await quietPair(workers, options.alternate.quietSeconds, segment, pause);
            pairAt = Date.now() + options.alternate.busySeconds * 1000;
          }
          await pause(200);
        }
      });
    }
    await step('validate constraints', null, async () => {
      await validateConstraints(prisma!);
      return null;
    });
    // The application alone again, as long as the baseline, on the migrated
    // schema and data: what the new schema costs its requests (the portfolio
    // read also reads lots), apart from anything the fleet does.
    const after = report('after, fleet idle', (await alone('after')).window, baselineP99, NO_FLEET, null);
    say(`${after.step.padEnd(44)} app p99 ${after.app.p99Ms} ms (x${after.app.p99VsBaseline}), errors ${after.app.errors}`);
    // Once all is measured: slicing the baseline for every step costs the rehearsal's process some CPU, on the application's cores.
    for (const measured of steps) {
      const windows = sameLengthWindows(app, baselineRange, measured.seconds, measured.app.p99Ms);
      if (windows) measured.baselineWindows = windows;
    }
    const appInvestments = await app.stop();
    const lots = await lotsFamily.verify!(prisma);
    const constraintsLeft = (await auditConstraints(prisma)).reduce((sum, audit) => sum + audit.violations, 0);
    return {
      investments,
      rate,
      fleetRate: options.fleetRate ?? null,
      fleetNice: options.fleetNice ?? 0,
      fleetCpus: options.fleetCpus ?? null,
      appCpus: options.appCpus ?? null,
      baseline,
      steps,
      after,
      verify: {
        lots: { ok: lots.ok, checked: lots.checked, problems: lots.problemCount, sample: lots.problems.slice(0, 5).map((p) => `${p.id}: ${p.problem}`) },
        constraintsLeft,
      },
      appInvestments: appInvestments.length,
      target: targetVerdict(steps),
    };
  } finally {
    for (const cleanup of cleanups) await cleanup().catch((error: Error) => say(`cleanup: ${error.message}`));
    await prisma?.$disconnect();
    redis.disconnect();
    await admin.end();
  }
}

/** The report as a table for a terminal or a README. */
export function reportTable(result: RehearsalReport): string {
  const rows = [result.baseline, ...result.steps, result.after].map(
    (s) =>
      `| ${s.step} | ${s.seconds} | ${s.app.requests} | ${s.app.p99Ms} | ${s.step === 'baseline' ? '1.00' : s.app.p99VsBaseline.toFixed(2)} | ${s.app.errors} | ${
        s.fleet ? `${s.fleet.jobs} at ${s.fleet.perSecond}/s${s.fleet.failed ? `, ${s.fleet.failed} failed` : ''}` : '-'
      } | ${s.parts ? `${s.parts.enqueue.p99Ms} / ${s.parts.run.p99Ms}` : '-'} | ${s.lockWaitersMax} | ${s.appWaitsOnFleet} | ${s.throttled ? 'yes' : 'no'} | ${s.app.loopDelayP99Ms} | ${
        s.alternation ? `${s.alternation.busy.p99Ms} / ${s.alternation.quiet.p99Ms}, ${ratioText(s.alternation)}` : '-'
      } | ${s.baselineWindows ? `x${s.baselineWindows.p99VsMedian} (${s.baselineWindows.medianP99Ms}; ${s.baselineWindows.maxP99Ms})` : '-'} |`,
  );
  return [
    '| step | s | app requests | app p99 ms | p99 / baseline | app errors | fleet jobs | app p99 ms, enqueueing / after | lock waiters (max) | app waiting on the fleet (looks) | throttled | app loop delay p99 ms | app p99 ms, workers working / stopped, their ratio (its 90% interval over pairs) | p99 / baseline windows of its length (their median; max ms) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}
