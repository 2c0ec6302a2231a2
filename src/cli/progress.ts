import { durationText } from '../config/duration.js';
import { isDone } from '../fleet/runs/lifecycle.js';
import type { RunCounters, RunStore } from '../fleet/runs/store.js';
import type { CommandIo } from './command.js';

export interface WaitOptions {
  /** Poll interval in ms. Default 250. */
  intervalMs?: number;
  /** Plain progress lines (non-TTY) at most this often, in ms. Default 5,000. */
  lineEveryMs?: number;
  /** Give up after this many ms. Default: wait as long as it takes. */
  timeoutMs?: number;
  /** Silence, in ms, after which the absence of workers is pointed out. Default 15,000. */
  idleHintMs?: number;
  /** The family's name and how many workers its queue has now, for the hint when none runs. */
  workers?: { family: string; count(): Promise<number> };
  /** Stops the waiting (Ctrl-C); the run goes on. */
  signal?: AbortSignal;
}

export type WaitResult =
  | { ended: 'finished'; counters: RunCounters }
  | { ended: 'interrupted'; counters: RunCounters | null }
  | { ended: 'timed-out'; counters: RunCounters | null }
  | { ended: 'stopped'; counters: RunCounters | null };

/** Jobs per second over the last `windowMs`: the first seconds of a run say nothing about the rest. */
export class MovingRate {
  private readonly samples: { at: number; done: number }[] = [];
  constructor(private readonly windowMs = 10_000) {}

  /** Adds a sample; the rate once the samples span a second, else null. */
  add(at: number, done: number): number | null {
    this.samples.push({ at, done });
    while (this.samples.length > 2 && at - this.samples[1]!.at >= this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    return at - first.at >= 1_000 ? ((done - first.done) * 1_000) / (at - first.at) : null;
  }
}

/**
 * Polls the run's counters until every job has an outcome, showing progress
 * on the way; or until the timeout, or the signal. A run whose counters
 * vanished ends as interrupted only when this Redis shows that it lost them.
 */
export async function waitForRun(runs: RunStore, family: string, runId: string, io: CommandIo, options: WaitOptions = {}): Promise<WaitResult> {
  const intervalMs = options.intervalMs ?? 250;
  const lineEveryMs = options.lineEveryMs ?? 5_000;
  const idleHintMs = options.idleHintMs ?? 15_000;
  const started = Date.now();
  const rate = new MovingRate();
  let lastLine = 0;
  let last: RunCounters | null = null;
  let lastProgressAt = started;
  let hinted = false;
  const endLine = () => io.isTty && process.stdout.write('\n');
  for (;;) {
    if (options.signal?.aborted) {
      endLine();
      return { ended: 'stopped', counters: last };
    }
    const counters = await runs.counters(family, runId);
    const now = Date.now();
    if (!counters) {
      if ((await runs.liveness(family, runId)) === 'lost') {
        await runs.markInterrupted(runId);
        endLine();
        return { ended: 'interrupted', counters: last };
      }
    } else {
      const done = counters.completed + counters.skipped + counters.failed;
      if (!last || done !== last.completed + last.skipped + last.failed) lastProgressAt = now;
      last = counters;
      const finished = isDone(counters);
      const line = progressLine(counters, rate.add(now, done));
      if (io.isTty) {
        process.stdout.write(`\r${line}\x1b[K`);
        if (finished) process.stdout.write('\n');
      } else if (finished || now - lastLine >= lineEveryMs) {
        io.out(line);
        lastLine = now;
      }
      if (finished) {
        await runs.finishIfDone(family, runId);
        return { ended: 'finished', counters };
      }
    }
    if (!hinted && options.workers && now - lastProgressAt >= idleHintMs && (await options.workers.count()) === 0) {
      hinted = true;
      endLine();
      const { family } = options.workers;
      io.err(`no worker is processing "${family}": start one with tys worker --families ${family}`);
    }
    if (options.timeoutMs !== undefined && now - started >= options.timeoutMs) {
      endLine();
      return { ended: 'timed-out', counters: last };
    }
    await pause(intervalMs, options.signal);
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * One line of progress; `ratePerSecond` null while there is no rate to tell
 * yet. A finished run gives `tookMs`, its duration, said instead of an ETA.
 */
export function progressLine(counters: RunCounters, ratePerSecond: number | null, tookMs?: number): string {
  const done = counters.completed + counters.skipped + counters.failed;
  const total = Math.max(counters.total, done);
  const fraction = total === 0 ? 1 : done / total;
  const width = 30;
  const filled = Math.round(fraction * width);
  const rate = ratePerSecond === null ? null : Math.round(ratePerSecond);
  let eta = '';
  if (tookMs !== undefined) eta = `, took ${durationText(tookMs)}`;
  else if (rate && counters.enqueued) eta = `, ETA ${Math.ceil((total - done) / rate)}s`;
  return (
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(1)}% ` +
    `${done}/${total}${counters.enqueued ? '' : '+'} (completed ${counters.completed}, skipped ${counters.skipped}, failed ${counters.failed}) ` +
    `${rate === null ? '-' : rate}/s${eta}`
  );
}
