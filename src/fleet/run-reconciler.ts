import type { Logger } from 'pino';
import type { RunProgress } from './run-progress.js';
import type { RunStore } from './runs.js';

export interface RunReconcilerOptions {
  /** How often, in ms, the durable run records are brought in line with Redis. Default 5,000. */
  intervalMs?: number;
  /** Where each running run's progress is sampled at every tick, for its moving rate. Default none. */
  progress?: RunProgress;
}

/**
 * Runs RunStore.reconcile on an interval in a long-running process: runs
 * whose end a Postgres outage kept from being written get finished, and runs
 * whose Redis is shown to have lost them get marked INTERRUPTED. Failures
 * are logged and tried again at the next tick. Each tick also samples the
 * progress of the runs still going. stop() waits for a tick in
 * progress.
 */
export function startRunReconciler(runs: RunStore, log: Logger, options: RunReconcilerOptions = {}): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const tick = async () => {
    try {
      const { running: going, ...counts } = await runs.reconcile();
      if (counts.finished + counts.interrupted + counts.recovered > 0) log.info(counts, 'run records reconciled');
      for (const run of going) await options.progress?.record(run.id, run.done);
    } catch (error) {
      log.warn({ err: error }, 'could not reconcile run records; trying again');
    }
  };
  running = tick();
  const timer = setInterval(() => {
    running = running.then(tick);
  }, options.intervalMs ?? 5_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
