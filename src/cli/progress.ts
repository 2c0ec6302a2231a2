import type { RunCounters, RunStore } from '../fleet/runs.js';
import type { CommandIo } from './command.js';

export interface WaitOptions {
  /** Poll interval in ms. Default 250. */
  intervalMs?: number;
  /** Plain progress lines (non-TTY) at most this often, in ms. Default 5,000. */
  lineEveryMs?: number;
}

export type WaitResult = { ended: 'finished'; counters: RunCounters } | { ended: 'interrupted'; counters: RunCounters | null };

/** Polls the run's counters until every job has an outcome, showing progress on the way. */
export async function waitForRun(runs: RunStore, runId: string, io: CommandIo, options: WaitOptions = {}): Promise<WaitResult> {
  const intervalMs = options.intervalMs ?? 250;
  const lineEveryMs = options.lineEveryMs ?? 5_000;
  const started = Date.now();
  let lastLine = 0;
  let last: RunCounters | null = null;
  for (;;) {
    const counters = await runs.counters(runId);
    if (!counters) {
      await runs.markInterrupted(runId);
      if (io.isTty) process.stdout.write('\n');
      return { ended: 'interrupted', counters: last };
    }
    last = counters;
    const done = counters.completed + counters.skipped + counters.failed;
    const finished = counters.enqueued && done >= counters.total;
    const now = Date.now();
    if (io.isTty) {
      process.stdout.write(`\r${progressLine(counters, now - started)}\x1b[K`);
      if (finished) process.stdout.write('\n');
    } else if (finished || now - lastLine >= lineEveryMs) {
      io.out(progressLine(counters, now - started));
      lastLine = now;
    }
    if (finished) {
      await runs.finishIfDone(runId);
      return { ended: 'finished', counters };
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export function progressLine(counters: RunCounters, elapsedMs: number): string {
  const done = counters.completed + counters.skipped + counters.failed;
  const total = Math.max(counters.total, done);
  const fraction = total === 0 ? 1 : done / total;
  const width = 30;
  const filled = Math.round(fraction * width);
  const rate = elapsedMs > 0 ? Math.round((done * 1000) / elapsedMs) : 0;
  const eta = rate > 0 && counters.enqueued ? `, ETA ${Math.ceil((total - done) / rate)}s` : '';
  return (
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(1)}% ` +
    `${done}/${total}${counters.enqueued ? '' : '+'} (completed ${counters.completed}, skipped ${counters.skipped}, failed ${counters.failed}) ` +
    `${rate}/s${eta}`
  );
}
