import { findFamily } from '../families/index.js';
import type { FleetContext } from '../fleet/context.js';
import type { JobFamily } from '../fleet/family.js';
import { PREVIEW_SAMPLE, type ReasonCount } from '../fleet/runs/outcomes.js';
import { RUN_ID_PATTERN, type RunView } from '../fleet/runs/store.js';
import { UsageError } from './command.js';

/** Rows one command may name with --key: more is a job for a filter by reason, or for tys enqueue. */
export const MAX_KEYS = 1_000;

/** The run id a command was given, checked: a UsageError when it is missing or is not one. */
export function requireRunId(command: string, runId: string | undefined): string {
  if (!runId) throw new UsageError(`tys ${command}: --run ID is required`);
  if (!RUN_ID_PATTERN.test(runId)) throw new UsageError(`tys ${command}: "${runId.slice(0, 40)}" is not a run id (like run-20260101T000000Z-abcdef)`);
  return runId;
}

/** The run and its family, or a UsageError naming the command. */
export async function requireRun(fleet: FleetContext, command: string, runId: string): Promise<{ run: RunView; family: JobFamily }> {
  const run = await fleet.runs.get(runId);
  const family = run && findFamily(run.family);
  if (!run || !family) throw new UsageError(`tys ${command}: no run ${runId}`);
  return { run, family };
}

/** The --key values, each a key of the family's, without repeats; a UsageError for the first that is not. */
export function requireKeys(command: string, family: JobFamily, keys: readonly string[]): string[] {
  if (keys.length > MAX_KEYS) throw new UsageError(`tys ${command}: at most ${MAX_KEYS} --key (got ${keys.length})`);
  const bad = keys.find((key) => !family.isValidKey(key));
  if (bad !== undefined) throw new UsageError(`tys ${command}: "${bad.slice(0, 40)}" is not a key of ${family.name} (like ${family.exampleKey})`);
  return [...new Set(keys)];
}

/** Counts by reason as lines under a heading, the counts aligned: "  2,000  failed   provider answered 503". */
export function reasonLines(counts: readonly ReasonCount[]): string[] {
  const width = Math.max(...counts.map((count) => count.jobs.toLocaleString('en-US').length));
  return counts.map((count) => `  ${count.jobs.toLocaleString('en-US').padStart(width)}  ${count.outcome.padEnd(7)}  ${count.reason}`);
}

/** The first rows of `total`, as a preview names them: "a, b, c and 7 more". */
export function sampleText(rows: readonly string[], total: number): string {
  const shown = rows.slice(0, PREVIEW_SAMPLE);
  return `${shown.join(', ')}${total > shown.length ? ` and ${(total - shown.length).toLocaleString('en-US')} more` : ''}`;
}
