import { retryTransient } from '../../db/transient.js';
import { newJobKey } from '../job-seal.js';
import type { Scope } from '../scope.js';
import { newRunId, type RunStore } from './store.js';

/** How long a run is held for its producer without word from it, by default: a minute. */
export const DEFAULT_PRODUCER_LEASE_MS = 60_000;

export interface ProducerRunOptions {
  /** Who starts the run: "cli user@host", "schedule NAME". */
  origin: string | null;
  /** The ms between job starts of a paced run; null when not paced. */
  paceMs: number | null;
  /** How long, in ms, the run is held for this producer without word from it. */
  leaseMs: number;
}

/**
 * A producer's hold on the run it adds jobs to: the run's record, made when
 * it opens; a lease the producer renews every quarter of `leaseMs` while it
 * adds (should it stop without a word, killed or its machine lost, the
 * workers seal the run with what it added once the lease lapses, and one
 * only cut off from Redis that long finds its run sealed when it is back);
 * and what the producer writes of its run, each Postgres write tried again
 * through a dropped connection, so that a database blip costs a pause and
 * not the run.
 */
export class ProducerRun {
  private readonly lapsed = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly runs: RunStore,
    private readonly family: string,
    readonly id: string,
    /** The key the run's jobs are sealed with (see job-seal.ts). */
    readonly jobKey: string,
  ) {}

  /** Creates the run (ENQUEUEING) and holds it for this producer. */
  static async open(runs: RunStore, family: string, scope: Scope, options: ProducerRunOptions): Promise<ProducerRun> {
    const run = new ProducerRun(runs, family, newRunId(), newJobKey());
    await retryTransient(() => runs.create(run.id, family, scope, { origin: options.origin, paceMs: options.paceMs, jobKey: run.jobKey }));
    await run.hold(options.leaseMs);
    return run;
  }

  /** Aborted once the workers have sealed the run (the lease lapsed): the producer must add nothing more. */
  get signal(): AbortSignal {
    return this.lapsed.signal;
  }

  private async hold(leaseMs: number): Promise<void> {
    const sealed = () => this.lapsed.abort(new Error(`the workers sealed it after ${leaseMs / 1000} s without word from this command`));
    if (!(await this.runs.holdProducer(this.family, this.id, leaseMs))) sealed();
    this.timer = setInterval(() => {
      this.runs.holdProducer(this.family, this.id, leaseMs).then(
        (held) => held || sealed(),
        // Redis out of reach: the producer's own adds fail too, and say so.
        () => undefined,
      );
    }, leaseMs / 4);
    this.timer.unref();
  }

  /** Stops renewing the lease; it then lapses on its own, which matters only to a run left unsealed. */
  release(): void {
    clearInterval(this.timer);
  }

  /** What an operator has done to the run: what the producer must heed before its next page. */
  operatorHold(): Promise<'cancelled' | 'paused' | null> {
    return retryTransient(() => this.runs.operatorHold(this.id));
  }

  /** The jobs of a page that Redis has accepted in `shard` are noted as the run's (RunStore.noteAdded). */
  noteAdded(shard: number): Promise<void> {
    return this.runs.noteAdded(this.family, shard, this.id);
  }

  /** Seals the run with its jobs in each shard, in shard order. */
  seal(totals: number[], alreadyQueued: number): Promise<void> {
    return retryTransient(() => this.runs.markEnqueued(this.family, this.id, totals, alreadyQueued));
  }

  /** Forgets the run: it found no row to work on. */
  discard(): Promise<void> {
    return retryTransient(() => this.runs.discard(this.family, this.id));
  }
}
