import type { FleetContext } from '../fleet/context.js';
import type { JobFamily } from '../fleet/family.js';
import type { EnqueueResult } from '../fleet/producer.js';
import { describeScope, type Scope } from '../fleet/scope.js';
import type { CommandIo } from './command.js';
import { waitForRun, type WaitResult } from './progress.js';

/** How a command adds a run: what `tys enqueue` and a filtered `tys retry` share. */
export interface AddRunFlags {
  /** Who starts the run, and how: kept as the run's origin. */
  origin: string;
  /** Rows read per source page. */
  pageSize: number;
  dryRun?: boolean;
  /** The run's pace, and how the operator wrote it (for its first line). */
  rate?: { max: number; windowMs: number; text: string };
  /** Show progress until the run ends; the exit status says how it ended. */
  wait?: boolean;
  /** With `wait`: give up after this long, and how the operator wrote it. */
  timeout?: { ms: number; text: string };
  /** Told the run's id once it exists, before a job is added. */
  onRun?: (runId: string) => Promise<void> | void;
}

/**
 * Adds one run of the family over the scope, its id said first; Ctrl-C or
 * SIGTERM stops the adding (the run keeps what it has) and returns 130.
 * Then, with `wait`, follows the run to its end. Resolves to the exit status.
 */
export async function addRunAndReport(fleet: FleetContext, family: JobFamily, scope: Scope, flags: AddRunFlags, io: CommandIo): Promise<number> {
  // A line of its own, past the progress line a terminal shows.
  const say = (line: string) => io.out(io.isTty ? `\r\x1b[K${line}` : line);
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => interrupt.abort(new Error(`interrupted by ${signal}`));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result: EnqueueResult;
  const told: Promise<void>[] = [];
  try {
    result = await fleet.enqueue(family, scope, {
      pageSize: flags.pageSize,
      dryRun: flags.dryRun,
      origin: flags.origin,
      rate: flags.rate,
      signal: interrupt.signal,
      onProgress: io.isTty ? (p) => process.stdout.write(`\rreading rows: ${p.found} found, ${p.added} to add\x1b[K`) : undefined,
      // The id first, before any job is added: adding a million takes a minute, a paced run's as long as
      // it runs, and the operator may want to pause or cancel the run meanwhile.
      onRun: (runId) => {
        say(
          `run ${runId}: ${family.name} over ${describeScope(scope)}${flags.rate ? `, paced at ${flags.rate.text}: adding its jobs as it goes` : ': adding its jobs'} (tys status --run ${runId})`,
        );
        if (flags.onRun) told.push(Promise.resolve(flags.onRun(runId)));
      },
      onPaused: (paused) => say(paused ? 'the run is paused: adding waits until it is resumed' : 'the run is resumed: adding goes on'),
    });
  } catch (error) {
    await Promise.all(told);
    if (!interrupt.signal.aborted) throw error;
    if (io.isTty) process.stdout.write('\r\x1b[K');
    io.err((error as Error).message);
    return 130;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  await Promise.all(told);
  if (io.isTty) process.stdout.write('\r\x1b[K');
  const already = `${result.alreadyQueued} already queued by an earlier run`;
  if (flags.dryRun) {
    io.out(`dry run: ${family.name} over ${describeScope(scope)}: ${result.found} rows need work, would add ${result.added} jobs (${already})`);
    return 0;
  }
  io.out(
    `run ${result.runId}: ${family.name} over ${describeScope(scope)}: added ${result.added} jobs ` +
      `(${already}, followed by this run; ${result.requeued} re-added after an earlier failure)`,
  );
  return flags.wait && result.runId ? waitAndReport(fleet, family, result.runId, flags.timeout, io) : 0;
}

/** Follows the run to its end: 0 when every job succeeded, 1 when one failed or the wait gave up, 130 on Ctrl-C. */
async function waitAndReport(fleet: FleetContext, family: JobFamily, runId: string, timeout: AddRunFlags['timeout'], io: CommandIo): Promise<number> {
  const stop = new AbortController();
  const onInterrupt = () => stop.abort();
  process.on('SIGINT', onInterrupt);
  let outcome: WaitResult;
  try {
    // Every worker process of the family listens on each of its shards: the first one counts them.
    const queue = fleet.shardQueues(family)[0]!;
    outcome = await waitForRun(fleet.runs, family.name, runId, io, {
      timeoutMs: timeout?.ms,
      signal: stop.signal,
      workers: { family: family.name, count: () => queue.getWorkersCount() },
    });
  } finally {
    process.off('SIGINT', onInterrupt);
  }
  const background = `run ${runId} goes on in the background while workers run: watch it with tys status --run ${runId}`;
  if (outcome.ended === 'stopped') {
    io.err(`stopped waiting; ${background}`);
    return 130;
  }
  if (outcome.ended === 'timed-out') {
    io.err(`gave up waiting after ${timeout?.text}; ${background}`);
    return 1;
  }
  if (outcome.ended === 'interrupted') {
    io.err(`run ${runId} interrupted: Redis lost its jobs and counters. Enqueue again to pick up what is missing.`);
    return 1;
  }
  const { completed, skipped, failed, stats } = outcome.counters;
  io.out(`run ${runId} finished: ${completed} completed, ${skipped} skipped, ${failed} failed`);
  const figures = Object.entries(stats).map(([name, n]) => `${name} ${n}`);
  if (figures.length > 0) io.out(`  ${figures.join(', ')}`);
  if (failed > 0) io.out(`see the reasons with: tys status --run ${runId}`);
  return failed > 0 ? 1 : 0;
}
