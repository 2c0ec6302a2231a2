import { setTimeout as delay } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connection.js';
import type { PrismaClient } from '../db/prisma.js';
import { DEFAULT_PAGE_SIZE } from '../../bin/heap-limit.js';
import { jobIdFor, type JobData, type JobFamily } from './family.js';
import { rowSource, type RowSource } from './row-source.js';
import { AddingSchedule } from './runs/pace.js';
import { DEFAULT_PRODUCER_LEASE_MS, ProducerRun } from './runs/producer-run.js';
import type { RunStore } from './runs/store.js';
import type { Scope } from './scope.js';
import { addShardPage, countShardPage, type NewJob, type ShardPage } from './shard-page.js';

export interface EnqueueOptions {
  /** Keys read from the source query per page. Default DEFAULT_PAGE_SIZE. */
  pageSize?: number;
  /** Count what would be enqueued, add nothing. Default false. */
  dryRun?: boolean;
  /** Called after each page with the totals so far. */
  onProgress?: (progress: EnqueueProgress) => void;
  /** Called once the run exists, before its first job is added. */
  onRun?: (runId: string) => void;
  /**
   * Called when the producer finds its paced run paused by an operator
   * (true), and when it goes on adding once the run is resumed (false).
   */
  onPaused?: (paused: boolean) => void;
  /**
   * Keep the record of a run that found no row to work on. Default true;
   * the schedule runner says false, or every firing that finds nothing
   * (every 5 minutes, say) would fill the run history with empty runs.
   */
  keepEmpty?: boolean;
  /** Who starts the run, recorded with it: "cli user@host", "schedule NAME". Default none. */
  origin?: string;
  /**
   * At most `max` of the run's jobs start per `windowMs`, spread evenly,
   * across every worker process; the family's other runs are not held.
   * Default none (the workers' own limits only).
   */
  rate?: { max: number; windowMs: number };
  /**
   * Stops the enqueue before its next page: the run is sealed with the jobs
   * already added, which still run, and the call rejects with the reason.
   * Default none.
   */
  signal?: AbortSignal;
  /**
   * How long, in ms, the run is held for this producer without word from
   * it; it renews the hold every quarter of that while it adds jobs. Should
   * it stop without sealing the run (killed, its machine lost), the workers
   * seal the run with the jobs it added once the hold lapses
   * (reconcileRuns). Default 60,000.
   */
  leaseMs?: number;
}

export interface EnqueueProgress {
  /** Rows the source query returned: they still need the work. */
  found: number;
  /** New jobs added by this run. */
  added: number;
  /**
   * Rows whose job was already waiting, delayed or active (from an earlier
   * run). The run follows those jobs: their outcomes count for it too.
   */
  alreadyQueued: number;
  /**
   * Rows whose earlier job had finished (failed, or completed while the row
   * still needs work) or was left broken by a loss of Redis: re-added.
   */
  requeued: number;
}

export interface EnqueueResult extends EnqueueProgress {
  runId: string | null;
}

/** Where a family's jobs go: its shards' queues, in shard order, and the shard of a job id. */
export interface FamilyQueues {
  queues: Queue<JobData>[];
  shardOf(jobId: string): number;
}

/** What the producer reads from and writes to. */
export interface ProducerDeps {
  prisma: PrismaClient;
  redis: RedisClient;
  queues: FamilyQueues;
  runs: RunStore;
}

/**
 * Streams the scope's rows page by page (the family's source query, or the
 * jobs a retry takes up: see rowSource) and turns every key into a job of
 * one run, in the shard its job id hashes to. A key whose job is still
 * pending is left alone; a key whose job already finished but which the
 * source still selects (it failed, or its row was changed back) gets a
 * fresh job.
 */
export async function enqueue(deps: ProducerDeps, family: JobFamily, scope: Scope, options: EnqueueOptions = {}): Promise<EnqueueResult> {
  const schedule = options.rate ? new AddingSchedule(options.rate.windowMs / options.rate.max) : null;
  const source = rowSource(deps.prisma, family, scope);
  if (options.dryRun) return { runId: null, ...(await countRun(deps, family, source, options, schedule)) };
  const run = await ProducerRun.open(deps.runs, family.name, scope, {
    origin: options.origin ?? null,
    paceMs: schedule?.intervalMs ?? null,
    leaseMs: options.leaseMs ?? DEFAULT_PRODUCER_LEASE_MS,
  });
  options.onRun?.(run.id);
  try {
    const signal = AbortSignal.any([run.signal, ...(options.signal ? [options.signal] : [])]);
    return await addRun(deps, family, source, run, { ...options, signal }, schedule);
  } finally {
    run.release();
  }
}

/** What a run would add, page by page, adding nothing (a dry run). */
async function countRun(
  deps: ProducerDeps,
  family: JobFamily,
  source: RowSource,
  options: EnqueueOptions,
  schedule: AddingSchedule | null,
): Promise<EnqueueProgress> {
  const progress: EnqueueProgress = { found: 0, added: 0, alreadyQueued: 0, requeued: 0 };
  for await (const groups of plannedPages(deps, family, source, options, schedule, progress)) {
    for (const [i, group] of groups.entries()) {
      if (group.length === 0) continue;
      const counted = await countShardPage(deps.redis, deps.queues.queues[i]!, group);
      progress.added += counted.added;
      progress.alreadyQueued += counted.alreadyQueued;
    }
    options.onProgress?.({ ...progress });
  }
  return progress;
}

/** The run's pages, added one after another; sealed with what was added, whether it ends or stops. */
async function addRun(
  deps: ProducerDeps,
  family: JobFamily,
  source: RowSource,
  run: ProducerRun,
  options: EnqueueOptions,
  schedule: AddingSchedule | null,
): Promise<EnqueueResult> {
  const tally = new RunTally(run, deps.queues.queues.length);
  try {
    for await (const groups of plannedPages(deps, family, source, options, schedule, tally.progress, () => heedOperator(run, schedule, options))) {
      // The previous page's adds overlap this page's source query; at most one page is in flight.
      await tally.settled();
      const keys = groups.flatMap((group) => group.map((job) => job.key));
      tally.note(
        await Promise.allSettled(
          groups.map((group, i) => (group.length === 0 ? Promise.resolve(null) : addShardPage({ ...deps, queue: deps.queues.queues[i]! }, family, run, group))),
        ),
        // Only once every job of the page is in Redis: a page cut short is taken up again by the next try.
        () => source.taken(keys, run.id),
      );
      options.onProgress?.({ ...tally.progress });
    }
    await tally.settled();
  } catch (error) {
    throw await tally.sealStopped(error);
  }
  if (tally.progress.found === 0 && options.keepEmpty === false) {
    await run.discard();
    return { runId: null, ...tally.progress };
  }
  await tally.seal();
  return { runId: run.id, ...tally.progress };
}

/**
 * The source's keys, a page at a time, planned over the family's
 * shards (each job in the shard its id hashes to, with its delay when the
 * run is paced). Before each page after the first, `beforePage` may end the
 * run (an operator cancelled it: false); a paced run's pages are read a
 * little ahead of their starts, not all at once.
 */
async function* plannedPages(
  deps: ProducerDeps,
  family: JobFamily,
  source: RowSource,
  options: EnqueueOptions,
  schedule: AddingSchedule | null,
  progress: EnqueueProgress,
  beforePage?: () => Promise<boolean>,
): AsyncGenerator<NewJob[][]> {
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  let after = '';
  for (let page = 0; ; page++) {
    options.signal?.throwIfAborted();
    if (page > 0 && beforePage && !(await beforePage())) return;
    if (schedule && !options.dryRun) await waitUnlessStopped(schedule.waitBeforePage(progress.found), options.signal);
    const keys = await source.page(after, pageSize);
    if (keys.length === 0) return;
    after = keys[keys.length - 1]!;
    const now = Date.now();
    const groups = deps.queues.queues.map((): NewJob[] => []);
    for (const [i, key] of keys.entries()) {
      const id = jobIdFor(family, key);
      groups[deps.queues.shardOf(id)]!.push({ id, key, delayMs: schedule?.delayOf(progress.found + i, now) ?? 0 });
    }
    progress.found += keys.length;
    yield groups;
  }
}

/**
 * What the producer has added to its run, shard by shard: jobs Redis has
 * accepted, and jobs of earlier runs the run follows. Noted in Redis as they
 * are confirmed, for the workers to seal the run with should this producer
 * die; the run is sealed with them here.
 */
class RunTally {
  readonly progress: EnqueueProgress = { found: 0, added: 0, alreadyQueued: 0, requeued: 0 };
  private readonly confirmed: number[];
  private readonly followed: number[];
  private inFlight: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly run: ProducerRun,
    shards: number,
  ) {
    this.confirmed = new Array<number>(shards).fill(0);
    this.followed = new Array<number>(shards).fill(0);
  }

  /**
   * Counts a page's shards, and notes each shard's adds once Redis has them,
   * then tells `whenAdded` once all have them. Every shard is accounted for
   * even when another failed (the jobs it added belong to the run); then the
   * first failure is thrown.
   */
  note(pages: PromiseSettledResult<ShardPage | null>[], whenAdded: () => Promise<void>): void {
    const adds: Promise<unknown>[] = [];
    for (const [i, settled] of pages.entries()) {
      const page = settled.status === 'fulfilled' ? settled.value : null;
      if (!page) continue;
      this.progress.added += page.added;
      this.progress.alreadyQueued += page.alreadyQueued;
      this.progress.requeued += page.requeued;
      this.followed[i]! += page.alreadyQueued;
      adds.push(
        page.adding.then((n) => {
          this.confirmed[i]! += n;
          return this.run.noteAdded(i);
        }),
      );
    }
    const failed = pages.find((settled) => settled.status === 'rejected');
    this.inFlight = Promise.all(adds).then(() => (failed ? undefined : whenAdded()));
    if (failed) throw failed.reason;
  }

  /** Waits for the adds in flight. */
  async settled(): Promise<void> {
    await this.inFlight;
  }

  /** Seals the run with its jobs in each shard. */
  seal(): Promise<void> {
    const totals = this.confirmed.map((n, i) => n + this.followed[i]!);
    return this.run.seal(totals, this.progress.alreadyQueued);
  }

  /**
   * Seals a run whose adding stopped (`error`) with the jobs already added,
   * which run and count under it, so that it can finish and nobody waits for
   * it forever; the error to throw says so.
   */
  async sealStopped(error: unknown): Promise<Error> {
    await this.inFlight.catch(() => undefined);
    await this.seal().catch(() => undefined);
    const added = this.confirmed.reduce((sum, n) => sum + n, 0);
    return new Error(`run ${this.run.id} stopped enqueuing after ${added} jobs (they still run): ${(error as Error).message}; enqueue again for the rest`, {
      cause: error,
    });
  }
}

/** Waits `ms`; stopped by `signal`, rejects with its reason (what the caller reports). */
async function waitUnlessStopped(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms > 0) await delay(ms, undefined, { signal }).catch(() => signal!.throwIfAborted());
}

/** How often a producer whose run is paused looks whether it has been resumed. */
const PAUSED_LOOK_MS = 1_000;

/**
 * Before a page: false when an operator has cancelled the run (its workers
 * would only refuse more jobs). A paced run that is paused gets no more
 * until it is resumed, and its schedule moves on by the pause: its jobs
 * would only pile up in Redis, then all be due at once. An unpaced run is
 * added whole, its adds brief (a scheduled enqueue among them, which must
 * not hold its worker's shutdown).
 */
async function heedOperator(run: ProducerRun, schedule: AddingSchedule | null, options: EnqueueOptions): Promise<boolean> {
  let hold = await run.operatorHold();
  if (hold !== 'paused' || !schedule) return hold !== 'cancelled';
  const from = Date.now();
  options.onPaused?.(true);
  while (hold === 'paused') {
    await waitUnlessStopped(PAUSED_LOOK_MS, options.signal);
    hold = await run.operatorHold();
  }
  if (hold === 'cancelled') return false;
  options.onPaused?.(false);
  schedule.moveOn(Date.now() - from);
  return true;
}
