import type { Logger } from 'pino';
import { provesLoss, type RedisMarker } from './marker.js';
import { repeat } from '../repeat.js';
import type { RunProgress } from './progress.js';
import type { RunStore } from './store.js';

export interface ReconcileResult {
  /** Runs whose end is now written down. */
  finished: number;
  /** Failures BullMQ recorded and the fleet had missed, now counted (see RunStore.countMissedFailures). */
  recounted: number;
  /** Runs marked INTERRUPTED: this Redis is shown to have lost them. */
  interrupted: number;
  /** Runs wrongly marked INTERRUPTED earlier, put back: their counters are live. */
  recovered: number;
  /** Runs sealed for a producer that stopped without sealing them (killed, its machine lost): see RunStore.sealAbandoned. */
  abandoned: number;
  /** The runs still going, and how many of their jobs have an outcome. */
  running: { id: string; done: number }[];
}

const DEFAULT_INTERVAL_MS = 5_000;

export interface ReconcileOptions {
  /**
   * How long, in ms, a run must have made no progress, as the looks of any
   * worker process saw it, before the failures it missed are looked for:
   * reading the failed set job by job is too costly for every look at a
   * run that is moving. Default 5,000 (a reconciler's interval).
   */
  stillMs?: number;
}

/**
 * Brings the durable run records in line with what this Redis shows, the
 * one step that writes what reads only show: seals runs whose producer
 * stopped without a word and its lease lapsed, finishes runs whose last job
 * was counted while Postgres was unreachable, counts the failures a run
 * missed once it has stood still for `stillMs`, marks INTERRUPTED the runs
 * this Redis is shown to have lost, and puts back a run marked INTERRUPTED
 * while its counters were in fact live.
 */
export async function reconcileRuns(runs: RunStore, options: ReconcileOptions = {}): Promise<ReconcileResult> {
  const stillMs = options.stillMs ?? DEFAULT_INTERVAL_MS;
  const { records } = runs;
  const rows = await records.toReconcile();
  // Sealed first: the steps below then finish such a run like any other.
  let abandoned = 0;
  for (const row of rows) if (!row.enqueuedAt && !row.finishedAt && (await runs.sealAbandoned(row.family, row.id))?.fresh) abandoned += 1;
  // Each family's keys have a marker of their own: on a cluster, of the master that holds them.
  const markers = new Map<string, RedisMarker>();
  for (const family of new Set(rows.map((row) => row.family))) markers.set(family, await runs.marker(family));
  const result: ReconcileResult = { finished: 0, recounted: 0, interrupted: 0, recovered: 0, abandoned, running: [] };
  const present = await Promise.all(rows.map((row) => runs.has(row.family, row.id)));
  for (const [i, row] of rows.entries()) {
    if (present[i]) {
      if (row.status === 'INTERRUPTED' && (await records.restoreInterrupted(row.id))) result.recovered += 1;
      const counters = await runs.counters(row.family, row.id);
      if (await records.finish(row.id, counters)) result.finished += 1;
      else if (counters) {
        const done = counters.completed + counters.skipped + counters.failed;
        const standing = await runs.standing(row.family, row.id, done);
        const recounted = standing !== null && standing >= stillMs ? await runs.countMissedFailures(row.family, row.id, row.startedAt) : 0;
        result.recounted += recounted;
        // Counting them finished the run if they were all it lacked (see RunStore.record); otherwise the next look sees it again.
        if (recounted === 0) result.running.push({ id: row.id, done });
      }
    } else if (row.status !== 'INTERRUPTED' && provesLoss(markers.get(row.family)!, runs.address(row.family), row)) {
      await records.markInterrupted(row.id);
      result.interrupted += 1;
    }
  }
  return result;
}

export interface RunReconcilerOptions {
  /** How often, in ms, the durable run records are brought in line with Redis. Default 5,000; also the reconcile's `stillMs`. */
  intervalMs?: number;
  /** Where each running run's progress is sampled at every tick, for its moving rate. Default none. */
  progress?: RunProgress;
}

/**
 * Runs reconcileRuns on an interval in a long-running process: runs
 * whose end a Postgres outage kept from being written get finished, and runs
 * whose Redis is shown to have lost them get marked INTERRUPTED. Failures
 * are logged and tried again at the next tick. Each tick also samples the
 * progress of the runs still going. stop() waits for a tick in
 * progress.
 */
export function startRunReconciler(runs: RunStore, log: Logger, options: RunReconcilerOptions = {}): { stop(): Promise<void> } {
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const tick = async () => {
    try {
      const { running: going, ...counts } = await reconcileRuns(runs, { stillMs: intervalMs });
      if (Object.values(counts).some((n) => n > 0)) log.info(counts, 'run records reconciled');
      for (const run of going) await options.progress?.record(run.id, run.done);
    } catch (error) {
      log.warn({ err: error }, 'could not reconcile run records; trying again');
    }
  };
  return repeat(tick, intervalMs, { immediately: true });
}
