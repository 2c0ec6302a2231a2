export interface BudgetLimits {
  /** Calls allowed in any window of `windowMs` (a sliding window, not fixed slots). */
  max: number;
  windowMs: number;
  /** Calls allowed per UTC day, if the plan caps them. */
  daily?: number;
}

/**
 * Parses "5/60s", "75/1m", "1000/1h": calls per window.
 */
export function parseRate(text: string): { max: number; windowMs: number } {
  const match = /^(\d+)\s*\/\s*(\d+)?\s*(ms|s|m|h)$/.exec(text.trim());
  if (!match || Number(match[1]) < 1) throw new Error(`rate "${text}" must look like 5/60s, 75/1m or 1000/1h`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[3] as 'ms' | 's' | 'm' | 'h'];
  return { max: Number(match[1]), windowMs: Number(match[2] ?? 1) * unit };
}
