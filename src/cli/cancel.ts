import { openFleet } from '../fleet/context.js';
import { cancelRows, queuedRows } from '../fleet/runs/control.js';
import { defineCommand, UsageError } from './command.js';
import { cliOperator } from './operator.js';
import { MAX_KEYS, requireKeys, requireRun, requireRunId, sampleText } from './run-args.js';
import { controlFromCli } from './run-control.js';

const help = `Usage: tys cancel --run ID [--note TEXT] [--json]
       tys cancel --run ID --key KEY... [--yes] [--note TEXT] [--json]

Without --key: removes the run's jobs that have not started; its active jobs
finish, and the run ends CANCELLED with its counts. The rows it did not
reach are picked up by the next enqueue.

With --key: cancels just the jobs of those rows that have not started yet.
First it shows how many that is and changes nothing; --yes does it. Each
is removed and counted skipped ("cancelled by user@host"), for the run and
for any run that follows it: the run goes on with its other jobs and ends
as usual. A job that started meanwhile is left to finish. Cancelling the
same rows again finds nothing left to cancel.

An unknown run, or one in a state the action does not apply to, is refused
(exit 2). The action goes into the run's history (tys status --run ID) with
who took it (user@host) and the note.

Options:
  --run ID      the run (as tys status lists them)
  --key KEY     the job of this row; repeat for more (at most ${MAX_KEYS})
  --yes         with --key: do it (without it: only show what it would do)
  --note TEXT   why, for the run's history
  --json        machine-readable output
  -h, --help    this help`;

export const cancelCommand = defineCommand({
  name: 'cancel',
  summary: 'cancel a run, or just its jobs of some rows that have not started',
  help,
  options: { run: { type: 'string' }, key: { type: 'string', multiple: true }, yes: { type: 'boolean' }, note: { type: 'string' }, json: { type: 'boolean' } },
  positionals: false,
  async run({ values, config, json }, io) {
    const runId = requireRunId('cancel', values.run);
    if (values.yes && !values.key) throw new UsageError('tys cancel: --yes goes with --key');
    const fleet = await openFleet(config);
    try {
      if (!values.key) return await controlFromCli(fleet, 'cancel', runId, values, json, io);
      const { family } = await requireRun(fleet, 'cancel', runId);
      const keys = requireKeys('cancel', family, values.key);
      const deps = { prisma: fleet.prisma, runs: fleet.runs, family: family.name, queues: fleet.shardQueues(family) };
      const rows = await queuedRows(deps, family, runId, keys);
      const queued = rows.map((row) => row.key);
      if (!values.yes) {
        if (values.json) json({ runId, queued, notQueued: keys.filter((key) => !queued.includes(key)) });
        else {
          io.out(
            `${queued.length} of ${keys.length} row(s) have a job of ${runId} that has not started${queued.length > 0 ? `: ${sampleText(queued, queued.length)}` : ''}`,
          );
          io.out(queued.length > 0 ? 'nothing changed: the same command with --yes cancels them' : 'nothing to cancel');
        }
        return 0;
      }
      const cancelled = await cancelRows(deps, runId, rows, { operator: cliOperator(), note: values.note });
      if (values.json) json({ runId, cancelled });
      else
        io.out(
          `cancelled ${cancelled.length} job(s) of ${runId}${cancelled.length < rows.length ? ` (${rows.length - cancelled.length} started meanwhile, left to finish)` : ''}`,
        );
      return 0;
    } finally {
      await fleet.close();
    }
  },
});
