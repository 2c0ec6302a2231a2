import { DEFAULT_PAGE_SIZE } from '../../bin/heap-limit.js';
import { openFleet, type FleetContext } from '../fleet/context.js';
import { retryFilter, type RetryPreview } from '../fleet/runs/outcomes.js';
import { describeScope, type RetryScope } from '../fleet/scope.js';
import { addRunAndReport } from './add-run.js';
import { defineCommand, rateFlag, UsageError, type CommandIo } from './command.js';
import { cliOperator } from './operator.js';
import { MAX_KEYS, reasonLines, requireKeys, requireRun, requireRunId, sampleText } from './run-args.js';
import { controlFromCli } from './run-control.js';

const help = `Usage: tys retry --run ID [--note TEXT] [--json]
       tys retry --run ID [--outcome failed|skipped] [--reason TEXT] [--key KEY]...
                 [--yes] [--rate N/DURATION] [--wait] [--note TEXT] [--json]

Without a filter: queues the failed jobs of a FAILED run again, in that run
(fix what they failed on first: their reasons are in tys jobs --run ID).
Each that succeeds moves from the run's failures to its successes; the run
ends COMPLETED once none is left failed.

With a filter (--outcome, --reason or --key): takes up again just the jobs
of the run, in any state, that failed or were skipped and match, as a new
run whose origin names the command. First it shows how many jobs match,
counted by reason, and some of their rows, and changes nothing; --yes does
it. Each job is taken up once: the same command again finds nothing new
(tys why shows which run took a row up). A job whose row needs nothing any
more changes nothing: every job is idempotent.

The action goes into the run's history (tys status --run ID) with who took
it (user@host) and the note.

Options:
  --run ID             the run (as tys status lists them)
  --outcome KIND       failed or skipped jobs only
  --reason TEXT        jobs whose reason contains TEXT, in any case; a reason
                       as tys jobs counts it (with <key>, <value>) matches too
  --key KEY            the job of this row; repeat for more (at most ${MAX_KEYS})
  --yes                do it (without it: only show what it would do)
  --rate N/DURATION    with --yes: start at most N of the jobs per DURATION
                       (like 50/1s), across every worker
  --wait               with --yes: show progress until the new run ends
  --note TEXT          why, for the run's history
  --json               machine-readable (with a filter: the preview)
  -h, --help           this help

Ctrl-C while the jobs are being added stops adding (exit 130): the jobs
added so far run; the same command again takes up the rest.

Examples:
  tys jobs --run run-20261207T101500Z-3f9a1c
  tys retry --run run-20261207T101500Z-3f9a1c --reason "no price"
  tys retry --run run-20261207T101500Z-3f9a1c --reason "no price" --yes --rate 5/1s`;

export const retryCommand = defineCommand({
  name: 'retry',
  summary: "run a FAILED run's failed jobs again, or just those a filter names (a new run)",
  help,
  options: {
    run: { type: 'string' },
    note: { type: 'string' },
    json: { type: 'boolean' },
    outcome: { type: 'string' },
    reason: { type: 'string' },
    key: { type: 'string', multiple: true },
    yes: { type: 'boolean' },
    rate: { type: 'string' },
    wait: { type: 'boolean' },
  },
  positionals: false,
  async run({ values, config, json }, io) {
    const runId = requireRunId('retry', values.run);
    const filtered = values.outcome !== undefined || values.reason !== undefined || values.key !== undefined;
    if (!filtered) {
      const stray = (['yes', 'rate', 'wait'] as const).find((flag) => values[flag] !== undefined);
      if (stray) throw new UsageError(`tys retry: --${stray} goes with a filter (--outcome, --reason or --key)`);
    }
    if (values.outcome !== undefined && values.outcome !== 'failed' && values.outcome !== 'skipped') {
      throw new UsageError(`tys retry: --outcome takes failed or skipped (got "${values.outcome}")`);
    }
    if (values.reason !== undefined && values.reason.trim() === '') throw new UsageError('tys retry: --reason needs some text');
    if ((values.key?.length ?? 0) > MAX_KEYS)
      throw new UsageError(`tys retry: at most ${MAX_KEYS} --key (got ${values.key!.length}); filter by --reason instead`);
    if (!values.yes && (values.rate !== undefined || values.wait)) throw new UsageError(`tys retry: --${values.wait ? 'wait' : 'rate'} goes with --yes`);
    if (values.yes && values.json) throw new UsageError('tys retry: --json shows the preview; leave it out with --yes');
    const rate = rateFlag('retry', values.rate);

    const fleet = await openFleet(config);
    try {
      if (!filtered) return await controlFromCli(fleet, 'retry', runId, values, json, io);
      const { family } = await requireRun(fleet, 'retry', runId);
      const scope: RetryScope = {
        kind: 'retry',
        runId,
        ...(values.outcome ? { outcome: values.outcome } : {}),
        ...(values.reason !== undefined ? { reason: values.reason } : {}),
        ...(values.key ? { keys: requireKeys('retry', family, values.key) } : {}),
      };
      const preview = await fleet.runs.outcomes.previewRetry(scope);
      if (!values.yes || preview.jobs === 0) return await showPreview(fleet, scope, preview, json, values.json ? undefined : io);
      return await addRunAndReport(
        fleet,
        family,
        scope,
        {
          origin: `${cliOperator()}: tys retry ${retryArgs(scope)}`,
          pageSize: DEFAULT_PAGE_SIZE,
          rate: rate && { ...rate, text: values.rate! },
          wait: values.wait,
          onRun: (newRunId) =>
            fleet.runs.actions.record(runId, 'retry', { operator: cliOperator(), note: values.note }, `${preview.jobs} job(s) taken up by ${newRunId}`),
        },
        io,
      );
    } finally {
      await fleet.close();
    }
  },
});

/** Says what the retry would take up (or that it has nothing to), changing nothing; exit 0. `io` undefined: as JSON. */
async function showPreview(
  fleet: FleetContext,
  scope: RetryScope,
  preview: RetryPreview,
  json: (report: object) => void,
  io: CommandIo | undefined,
): Promise<number> {
  const counts = await fleet.runs.outcomes.countByReason({ ...retryFilter(scope), notRetried: true });
  if (!io) {
    json({ scope, ...preview, counts });
    return 0;
  }
  const earlier = `${preview.alreadyRetried} matching job(s) were taken up already, by ${preview.retriedBy.join(', ')}`;
  if (preview.jobs === 0) {
    io.out(`nothing to retry: ${preview.alreadyRetried > 0 ? `the ${earlier}` : `no job matches (${describeScope(scope)})`}`);
    return 0;
  }
  io.out(`${preview.jobs.toLocaleString('en-US')} job(s) to retry, ${describeScope(scope)}; by reason:`);
  for (const line of reasonLines(counts)) io.out(line);
  io.out(`rows: ${sampleText(preview.sample, preview.jobs)}`);
  if (preview.alreadyRetried > 0) io.out(`${earlier} (left out)`);
  io.out('nothing changed: the same command with --yes retries them as a new run');
  return 0;
}

/** The filter as the command's flags, for the new run's origin. */
function retryArgs(scope: RetryScope): string {
  return [
    `--run ${scope.runId}`,
    scope.outcome ? `--outcome ${scope.outcome}` : '',
    scope.reason !== undefined ? `--reason ${JSON.stringify(scope.reason)}` : '',
    scope.keys ? (scope.keys.length === 1 ? `--key ${scope.keys[0]}` : `--key (${scope.keys.length} rows)`) : '',
  ]
    .filter(Boolean)
    .join(' ');
}
