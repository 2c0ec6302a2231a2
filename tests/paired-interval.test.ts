import { describe, expect, it } from 'vitest';
import { pairedP99RatioInterval, type LatencyPair } from '../bench/paired-interval.js';

/** `count` latencies spread evenly from `min` to `max` ms, shuffled by a fixed stride. */
function spread(count: number, min: number, max: number): number[] {
  return Array.from({ length: count }, (_, i) => min + (((i * 37) % count) / (count - 1)) * (max - min));
}

describe('the interval of a working/stopped p99 ratio', () => {
  it('holds 1 when working and stopped spells are alike, and not when every working spell is twice as slow', () => {
    const alike: LatencyPair[] = Array.from({ length: 10 }, (_, i) => ({ busy: spread(80, 1, 10 + i), quiet: spread(80, 1, 10 + ((i + 3) % 10)) }));
    const same = pairedP99RatioInterval(alike)!;
    expect(same.confidence).toBe(0.9);
    expect(same.low).toBeLessThanOrEqual(1);
    expect(same.high).toBeGreaterThanOrEqual(1);

    const slower = alike.map((pair) => ({ busy: pair.quiet.map((ms) => ms * 2), quiet: pair.quiet }));
    const doubled = pairedP99RatioInterval(slower)!;
    expect(doubled.low).toBeGreaterThan(1.5);
    expect(doubled.high).toBeLessThan(2.5);
  });

  it('leaves one stall in one working spell inconclusive, where the plain ratio reads it as the fleet tripling the p99', () => {
    const pairs: LatencyPair[] = Array.from({ length: 10 }, () => ({ busy: spread(80, 1, 20), quiet: spread(80, 1, 20) }));
    pairs[4] = { busy: [...spread(70, 1, 20), ...Array.from({ length: 10 }, () => 80)], quiet: spread(80, 1, 20) };
    const busy = pairs.flatMap((pair) => pair.busy).sort((a, b) => a - b);
    const quiet = pairs.flatMap((pair) => pair.quiet).sort((a, b) => a - b);
    const plain = busy[Math.ceil(0.99 * busy.length) - 1]! / quiet[Math.ceil(0.99 * quiet.length) - 1]!;
    expect(plain).toBeGreaterThan(3);
    const interval = pairedP99RatioInterval(pairs)!;
    expect(interval.low).toBeLessThanOrEqual(1.05);
    expect(interval.high).toBeGreaterThan(3);
  });

  it('gives the same interval for the same latencies, and none from fewer than two pairs', () => {
    const pairs: LatencyPair[] = Array.from({ length: 6 }, (_, i) => ({ busy: spread(50, 1, 12 + i), quiet: spread(50, 1, 11) }));
    expect(pairedP99RatioInterval(pairs)).toEqual(pairedP99RatioInterval(pairs));
    expect(pairedP99RatioInterval(pairs.slice(0, 1))).toBeNull();
    expect(pairedP99RatioInterval([pairs[0]!, { busy: [], quiet: [3] }])).toBeNull();
  });
});
