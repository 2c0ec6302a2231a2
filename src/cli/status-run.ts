import { utcSecondText } from '../config/duration.js';
import { redisLine } from '../config/target.js';
import { families } from '../families/index.js';
import { openFleet, type FleetContext } from '../fleet/context.js';
import { throttleReasons } from '../fleet/db-health.js';
import { AUXILIARY_QUEUES } from '../fleet/queues.js';
import { MarketGateway } from '../market/gateway.js';
import { RUN_ID_PATTERN, type RunView } from '../fleet/runs/store.js';
import { integerFlag, UsageError, type CommandIo } from './command.js';
import type { StatusArgs } from './status-options.js';
import { progressLine } from './progress.js';

const STATES = ['waiting', 'active', 'delayed', 'completed', 'failed'] as const;

/**
 * Jobs by state for each family, added up over its shards, and the worker
 * processes listening on it (null where Redis refuses CLIENT LIST, as some
 * managed services do).
 */
async function familyCounts(fleet: FleetContext) {
  const counts: Record<string, Record<string, number | null>> = {};
  for (const family of families) {
    const queues = fleet.shardQueues(family);
    const shards = await Promise.all(queues.map((queue) => queue.getJobCounts(...STATES)));
    // A worker process listens on every shard of its families: the first shard counts the processes.
    const workers = await queues[0]!.getWorkersCount().catch(() => null);
    counts[family.name] = { ...Object.fromEntries(STATES.map((state) => [state, shards.reduce((sum, c) => sum + (c[state] ?? 0), 0)])), workers };
  }
  return counts;
}

async function failuresOf(fleet: FleetContext, run: RunView, limit = 20) {
  const family = families.find((f) => f.name === run.family);
  if (!family) return [];
  const failed = (await Promise.all(fleet.shardQueues(family).map((queue) => queue.getFailed(0, 999)))).flat();
  return failed
    .filter((job) => job.data?.runId === run.id)
    .slice(0, limit)
    .map((job) => ({ jobId: job.id, key: job.data.key, attempts: job.attemptsMade, reason: job.failedReason }));
}

/** Column widths for the runs listed: the widest family name of the fleet, the widest status shown. */
function runColumns(runs: RunView[]) {
  return {
    family: Math.max(...families.map((f) => f.name.length), ...runs.map((run) => run.family.length)),
    state: Math.max(0, ...runs.map((run) => stateText(run).length)),
  };
}

function stateText(run: RunView): string {
  return run.finishedAt || run.live ? run.status : `${run.status} (no live counters)`;
}

function runLine(run: RunView, columns = runColumns([run])): string {
  const elapsedMs = (run.finishedAt ?? new Date()).getTime() - run.startedAt.getTime();
  const done = run.completed + run.skipped + run.failed;
  const figures = Object.entries(run.stats).map(([name, n]) => `${name} ${n}`);
  const progress = progressLine(run, elapsedMs > 0 ? (done * 1_000) / elapsedMs : null, run.finishedAt ? elapsedMs : undefined);
  return (
    `${run.id}  ${run.family.padEnd(columns.family)}  ${stateText(run).padEnd(columns.state)}  started ${run.startedAt.toISOString()}  ` +
    `${progress}${figures.length ? `  [${figures.join(', ')}]` : ''}`
  );
}

/** Jobs by state and workers per family, each column as wide as its widest entry. */
function countsTable(counts: Record<string, Record<string, number | null>>): string[] {
  const columns = [...STATES, 'workers'];
  const rows = [['family', ...columns], ...Object.entries(counts).map(([name, c]) => [name, ...columns.map((column) => String(c[column] ?? '?'))])];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  // Names to the left, counts to the right, two spaces between columns.
  return rows.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[column]! + 2))).join(''));
}

/** What `tys status` prints, for the arguments it was given. */
export async function showStatus({ values, positionals, config, target, json }: StatusArgs, io: CommandIo): Promise<number> {
  if (positionals.length > 0) throw new UsageError(`tys status: unexpected argument "${positionals[0]}"`);
  if (values.run !== undefined && !RUN_ID_PATTERN.test(values.run)) {
    throw new UsageError(`tys status: "${values.run.slice(0, 40)}" is not a run id (like run-20260101T000000Z-abcdef)`);
  }
  const limit = integerFlag('status', 'limit', values.limit, 1, 1_000) ?? 10;

  const fleet = await openFleet(config, { readOnly: true });
  try {
    const run = values.run ? await fleet.runs.get(values.run) : null;
    if (values.run && !run) throw new UsageError(`tys status: no run ${values.run}`);
    // Runs are told lost only on evidence from their own Redis; a Redis
    // without any fleet data is most likely not the fleet's Redis at all.
    const fleetData = await fleet.runs.hasFleetData(
      families.map((f) => f.name),
      AUXILIARY_QUEUES,
    );
    if (!fleetData) io.err(`no fleet data in redis ${redisLine(target)} under prefix "${target.queuePrefix}": is REDIS_URL right?`);
    const throttled = await throttleReasons(
      fleet.redis,
      fleet.layout.shared,
      families.map((f) => f.name),
    );
    if (!values.json) for (const [family, reason] of Object.entries(throttled)) io.out(`throttled: ${family}: ${reason}`);
    const quotaSpentSeconds = await MarketGateway.quotaSpentSeconds(fleet.redis, fleet.layout.shared);
    if (quotaSpentSeconds > 0 && !values.json) {
      io.out(`market-data provider: the key's daily quota is spent; metadata and alerts jobs are held until its reset in ${Math.ceil(quotaSpentSeconds)} s`);
    }
    if (run) {
      const failures = await failuresOf(fleet, run);
      const actions = (await fleet.runs.actions.ofRuns([run.id])).get(run.id) ?? [];
      if (values.json) json({ run, failures, actions, fleetDataInRedis: fleetData, quotaSpentSeconds, throttled });
      else {
        io.out(runLine(run));
        for (const failure of failures) io.out(`  failed ${failure.jobId} (${failure.attempts} attempts): ${failure.reason}`);
        if (actions.length > 0) io.out('history:');
        for (const action of actions) {
          io.out(`  ${utcSecondText(action.at)}  ${action.action} by ${action.operator}: ${action.result}${action.note ? ` (${action.note})` : ''}`);
        }
      }
      return 0;
    }
    const counts = await familyCounts(fleet);
    const runs = await fleet.runs.list({ limit });
    if (values.json) {
      json({ families: counts, runs, fleetDataInRedis: fleetData, quotaSpentSeconds, throttled });
      return 0;
    }
    for (const line of countsTable(counts)) io.out(line);
    io.out('');
    io.out(runs.length ? 'latest runs:' : 'no runs yet');
    const columns = runColumns(runs);
    for (const run of runs) io.out(runLine(run, columns));
    return 0;
  } finally {
    await fleet.close();
  }
}
