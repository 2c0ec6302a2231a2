import type { RunStore } from './store.js';

/** How long a run is held for its producer without word from it, by default: a minute. */
export const DEFAULT_PRODUCER_LEASE_MS = 60_000;

export interface ProducerLease {
  /** Aborted once the run turns out sealed by the workers: the producer must add nothing more. */
  signal: AbortSignal;
  /** Stops renewing; the hold then lapses on its own, which matters only to a run left unsealed. */
  release(): void;
}

/**
 * Holds a run for the producer adding its jobs (RunStore.holdProducer),
 * renewed every quarter of `leaseMs`. A producer that stops without a word
 * (killed, its machine lost) stops renewing, and the workers seal its run
 * once the hold lapses; one that was only cut off from Redis that long
 * finds its run sealed when it is back, and stops.
 */
export async function holdRunForProducer(runs: RunStore, family: string, runId: string, leaseMs: number): Promise<ProducerLease> {
  const controller = new AbortController();
  const sealed = () => controller.abort(new Error(`the workers sealed it after ${leaseMs / 1000} s without word from this command`));
  if (!(await runs.holdProducer(family, runId, leaseMs))) sealed();
  const timer = setInterval(() => {
    runs.holdProducer(family, runId, leaseMs).then(
      (held) => held || sealed(),
      // Redis out of reach: the producer's own adds fail too, and say so.
      () => undefined,
    );
  }, leaseMs / 4);
  timer.unref();
  return { signal: controller.signal, release: () => clearInterval(timer) };
}
