const DURATION_PATTERN = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Milliseconds of a duration written like 500ms, 30s, 5m, 1h or 90d; null when it is not one. */
export function parseDuration(text: string): number | null {
  const match = DURATION_PATTERN.exec(text);
  return match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : null;
}

const SPOKEN_UNITS: [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['min', 60_000],
  ['s', 1_000],
];

/**
 * A span of time as a person reads it: its largest `parts` units, rounded
 * down ("3 min 12 s", "2 h 5 min", "45 s"; "0 s" below a second).
 */
export function durationText(ms: number, parts = 2): string {
  let rest = Math.max(0, Math.floor(ms / 1_000) * 1_000);
  const spoken: string[] = [];
  for (const [unit, size] of SPOKEN_UNITS) {
    if (spoken.length === parts) break;
    const count = Math.floor(rest / size);
    if (count === 0 && spoken.length === 0) continue;
    // "2 h 0 min" says nothing the "2 h" does not.
    if (count > 0) spoken.push(`${count} ${unit}`);
    else break;
    rest -= count * size;
  }
  return spoken.length ? spoken.join(' ') : '0 s';
}

/** A moment in UTC to the second, as command lines print it: 2026-12-07T10:15:02Z. */
export function utcSecondText(at: Date): string {
  return at.toISOString().replace(/\.\d+Z$/, 'Z');
}
