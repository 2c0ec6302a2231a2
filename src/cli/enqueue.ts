import { familyNames } from '../families/index.js';
import { openFleet } from '../fleet/context.js';
import { enqueue } from '../fleet/producer.js';
import { describeScope, missingScopeRows } from '../fleet/scope.js';
import { defineCommand, integerFlag, UsageError } from './command.js';
import { parseScope, requireFamily } from './families.js';
import { waitForRun } from './progress.js';

const help = `Usage: tys enqueue <family> (--all | --investment ID... | --portfolio ID | --user ID) [options]

Adds one job per row that still needs the family's work, as one run.
Enqueuing again adds nothing for rows whose job is still queued.

Families: ${familyNames().join(', ')}

Options:
  --all                 every row of the database
  --investment ID       one investment; repeat the flag for more
  --portfolio ID        the investments of one portfolio
  --user ID             the investments of one user
  --dry-run             count the rows and jobs, add nothing
  --wait                show progress until every job of the run has ended;
                        exit 1 if any failed
  --page-size N         rows read per source page (default 1000)
  -h, --help            this help

The enqueue runs in a node process of its own with a heap limit of 96 MB
plus 8 MB per 1,000 rows of --page-size, which keeps its memory flat at any
number of rows; a --max-old-space-size in NODE_OPTIONS overrides it.`;

export const enqueueCommand = defineCommand({
  name: 'enqueue',
  summary: 'enqueue the jobs of a family as one run',
  help,
  options: {
      all: { type: 'boolean' },
      investment: { type: 'string', multiple: true },
      portfolio: { type: 'string' },
      user: { type: 'string' },
      'dry-run': { type: 'boolean' },
      wait: { type: 'boolean' },
      'page-size': { type: 'string' },
    },
  async run({ values, positionals, config }, io) {
    if (positionals.length > 1) throw new UsageError(`tys enqueue: unexpected argument "${positionals[1]}"`);
    const family = requireFamily('enqueue', positionals[0]);
    const scope = parseScope(family, values);
    const pageSize = integerFlag('enqueue', 'page-size', values['page-size'], 1, 100_000) ?? 1_000;
    if (values['dry-run'] && values.wait) throw new UsageError('tys enqueue: --dry-run and --wait exclude each other');

    const fleet = await openFleet(config);
    try {
      const missing = await missingScopeRows(fleet.prisma, scope);
      if (missing.length > 0) {
        const more = missing.length > 3 ? ` and ${missing.length - 3} more` : '';
        throw new UsageError(`tys enqueue: no ${missing.slice(0, 3).join(', ')}${more}; nothing enqueued`);
      }
      const result = await enqueue(
        { prisma: fleet.prisma, redis: fleet.redis, queue: fleet.queue(family), runs: fleet.runs, prefix: fleet.config.queuePrefix },
        family,
        scope,
        {
          pageSize,
          dryRun: values['dry-run'],
          onProgress: io.isTty ? (p) => process.stdout.write(`\rreading rows: ${p.found} found, ${p.added} to add\x1b[K`) : undefined,
        },
      );
      if (io.isTty) process.stdout.write('\r\x1b[K');
      const already = `${result.alreadyQueued} already queued`;
      if (values['dry-run']) {
        io.out(`dry run: ${family.name} over ${describeScope(scope)}: ${result.found} rows need work, would add ${result.added} jobs (${already})`);
        return 0;
      }
      io.out(`run ${result.runId}: ${family.name} over ${describeScope(scope)}: added ${result.added} jobs (${already}, ${result.requeued} re-added after an earlier failure)`);
      if (!values.wait) return 0;
      const outcome = await waitForRun(fleet.runs, result.runId!, io);
      if (outcome.ended === 'interrupted') {
        io.err(`run ${result.runId} interrupted: Redis lost its jobs and counters. Enqueue again to pick up what is missing.`);
        return 1;
      }
      const { completed, skipped, failed, stats } = outcome.counters;
      io.out(`run ${result.runId} finished: ${completed} completed, ${skipped} skipped, ${failed} failed`);
      const figures = Object.entries(stats).map(([name, n]) => `${name} ${n}`);
      if (figures.length > 0) io.out(`  ${figures.join(', ')}`);
      if (failed > 0) io.out(`see the reasons with: tys status --run ${result.runId}`);
      return failed > 0 ? 1 : 0;
    } finally {
      await fleet.close();
    }
  },
});
