import { seededRandom } from './seeded-random.js';
import { percentile } from './traffic.js';

/** The application's latencies (ms) in one working spell and in the stopped spell right after it. */
export interface LatencyPair {
  busy: readonly number[];
  quiet: readonly number[];
}

export interface RatioInterval {
  /** The share of resampled ratios between `low` and `high`. */
  confidence: number;
  low: number;
  high: number;
}

export interface IntervalOptions {
  /** Resamplings. Default 2,000. */
  rounds?: number;
  /** Default 0.9. */
  confidence?: number;
  /** Seeds the resampling, so that the same latencies always give the same interval. Default 1. */
  seed?: number;
}

const p99 = (values: number[]) =>
  percentile(
    values.sort((a, b) => a - b),
    99,
  );

/**
 * How far the p99 of the working spells over the p99 of the stopped ones
 * may lie from what one run read, judged by how much it moves when the
 * run's pairs are drawn again, with replacement (a bootstrap over pairs).
 * A pair is resampled whole: its two spells met the same moment of the
 * machine, and a stall of the machine lasts longer than a request, so the
 * requests of one spell are not independent draws. A step whose interval
 * holds 1 showed no effect of the fleet that its own noise could not make;
 * one stall in one spell (a p99 read from a few hundred requests is the
 * worst few) moves the ratio a lot and the interval's low end little.
 * Null with fewer than two pairs, or no latency on either side.
 */
export function pairedP99RatioInterval(pairs: readonly LatencyPair[], options: IntervalOptions = {}): RatioInterval | null {
  const usable = pairs.filter((pair) => pair.busy.length > 0 && pair.quiet.length > 0);
  if (usable.length < 2) return null;
  const rounds = options.rounds ?? 2_000;
  const confidence = options.confidence ?? 0.9;
  const random = seededRandom(options.seed ?? 1);
  const ratios: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const busy: number[] = [];
    const quiet: number[] = [];
    for (let i = 0; i < usable.length; i += 1) {
      const pair = usable[Math.floor(random() * usable.length)]!;
      for (const ms of pair.busy) busy.push(ms);
      for (const ms of pair.quiet) quiet.push(ms);
    }
    const quietP99 = p99(quiet);
    if (quietP99 > 0) ratios.push(p99(busy) / quietP99);
  }
  if (ratios.length === 0) return null;
  ratios.sort((a, b) => a - b);
  const tail = (1 - confidence) / 2;
  return {
    confidence,
    low: ratios[Math.floor(tail * ratios.length)]!,
    high: ratios[Math.min(ratios.length - 1, Math.ceil((1 - tail) * ratios.length) - 1)]!,
  };
}
