export interface BudgetLimits {
  /** Calls allowed in any window of `windowMs` (a sliding window, not fixed slots). */
  max: number;
  windowMs: number;
  /** Calls allowed per UTC day, if the plan caps them. */
  daily?: number;
}

/** The most calls a rate may allow per window. */
const MAX_COUNT = 1_000_000_000;
/** The longest window: what a Node timer can wait (about 24.8 days). */
const MAX_WINDOW_MS = 2 ** 31 - 1;

/**
 * Parses "5/60s", "75/1m", "1000/1h": calls per window. The count is from 1
 * to a billion and the window from 1 ms to what a timer can wait, so that
 * the pause between two calls is a time the fleet can keep.
 */
export function parseRate(text: string): { max: number; windowMs: number } {
  const match = /^(\d+)\s*\/\s*(\d+)?\s*(ms|s|m|h)$/.exec(text.trim());
  const unit = match ? { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[3] as 'ms' | 's' | 'm' | 'h'] : 0;
  const max = Number(match?.[1]);
  const windowMs = Number(match?.[2] ?? 1) * unit;
  if (!match || !(max >= 1 && max <= MAX_COUNT) || !(windowMs >= 1 && windowMs <= MAX_WINDOW_MS)) {
    throw new Error(`rate "${text}" must look like 5/60s, 75/1m or 1000/1h: 1 to 1,000,000,000 per 1ms to 24 days`);
  }
  return { max, windowMs };
}
