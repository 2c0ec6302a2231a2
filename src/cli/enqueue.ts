import { DEFAULT_PAGE_SIZE } from '../../bin/heap-limit.js';
import { parseDuration } from '../config/duration.js';
import { familyNames } from '../families/index.js';
import { openFleet } from '../fleet/context.js';
import { missingScopeRows } from '../fleet/scope.js';
import { addRunAndReport } from './add-run.js';
import { cliOperator } from './operator.js';
import { defineCommand, integerFlag, rateFlag, UsageError } from './command.js';
import { parseScope, requireFamily } from './families.js';

const help = `Usage: tys enqueue <family> (--all | --changed | --investment ID... | --portfolio ID | --user ID) [options]

Adds one job per row that still needs the family's work, as one run.
Enqueuing again adds nothing for rows whose job is still queued.

Families: ${familyNames().join(', ')}

Options:
  --all                 every row of the database that needs the work
  --changed             the rows the application changed since the fleet
                        last brought them in step (lots: positions the MVP
                        code bought, sold or corrected), read from the
                        family's change log: nothing read when nothing
                        changed. Recurring catch-ups use this
  --investment ID       one investment; repeat the flag for more
  --portfolio ID        the investments of one portfolio
  --user ID             the investments of one user
  --dry-run             count the rows and jobs, add nothing
  --wait                show progress until every row of the run is done,
                        rows whose job an earlier run still holds included;
                        exit 0 only then, exit 1 if any job failed. Ctrl-C
                        stops waiting and leaves the run going
  --timeout DURATION    with --wait: give up after DURATION (like 30s, 10m,
                        2h), exit 1; the run goes on
  --rate N/DURATION     start at most N of this run's jobs per DURATION
                        (like 500/1s or 100/1m), spread evenly across every
                        worker; other runs of the family are not held. The
                        jobs are then added at most twice that fast and
                        about a minute ahead of their starts, which spares
                        the database a burst and bounds what Redis holds:
                        the command lasts as long as the run, less a minute
                        (half the run for a run under two minutes).
                        Default: as fast as the workers go
  --page-size N         rows read per source page (default ${DEFAULT_PAGE_SIZE})
  -h, --help            this help

Ctrl-C (or SIGTERM) while jobs are being added stops adding: the run keeps
the jobs already added, which still run, and the command exits 130; enqueue
again for the rest. Should the command die without a word (SIGKILL, its
machine lost), the workers seal its run the same way once it has not been
heard from for TYS_PRODUCER_LEASE (default 60s). A paced run's id is printed
as soon as the run exists; pausing it (tys pause) holds the adding too, until
it is resumed.

The enqueue runs in a node process of its own with a heap limit of 96 MB
plus 8 MB per 1,000 rows of --page-size, which keeps its memory flat at any
number of rows; a --max-old-space-size in NODE_OPTIONS overrides it.`;

export const enqueueCommand = defineCommand({
  name: 'enqueue',
  summary: 'enqueue the jobs of a family as one run',
  help,
  options: {
    all: { type: 'boolean' },
    changed: { type: 'boolean' },
    investment: { type: 'string', multiple: true },
    portfolio: { type: 'string' },
    user: { type: 'string' },
    'dry-run': { type: 'boolean' },
    wait: { type: 'boolean' },
    'page-size': { type: 'string' },
    timeout: { type: 'string' },
    rate: { type: 'string' },
  },
  async run({ values, positionals, config }, io) {
    if (positionals.length > 1) throw new UsageError(`tys enqueue: unexpected argument "${positionals[1]}"`);
    const family = requireFamily('enqueue', positionals[0]);
    const scope = parseScope(family, values);
    const pageSize = integerFlag('enqueue', 'page-size', values['page-size'], 1, 100_000) ?? DEFAULT_PAGE_SIZE;
    if (values['dry-run'] && values.wait) throw new UsageError('tys enqueue: --dry-run and --wait exclude each other');
    const timeoutMs = values.timeout === undefined ? undefined : parseDuration(values.timeout);
    if (timeoutMs === null || (timeoutMs !== undefined && !values.wait)) {
      throw new UsageError(`tys enqueue: --timeout takes a duration like 30s, 10m or 2h, with --wait (got "${values.timeout}")`);
    }

    const rate = rateFlag('enqueue', values.rate);

    const fleet = await openFleet(config);
    try {
      const missing = await missingScopeRows(fleet.prisma, scope);
      if (missing.length > 0) {
        const more = missing.length > 3 ? ` and ${missing.length - 3} more` : '';
        throw new UsageError(`tys enqueue: no ${missing.slice(0, 3).join(', ')}${more}; nothing enqueued`);
      }
      return await addRunAndReport(
        fleet,
        family,
        scope,
        {
          origin: cliOperator(),
          pageSize,
          dryRun: values['dry-run'],
          rate: rate && { ...rate, text: values.rate! },
          wait: values.wait,
          timeout: timeoutMs === undefined ? undefined : { ms: timeoutMs, text: values.timeout! },
        },
        io,
      );
    } finally {
      await fleet.close();
    }
  },
});
