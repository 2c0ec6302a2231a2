import { parseDuration, utcSecondText } from '../config/duration.js';
import { createPrisma } from '../db/prisma.js';
import { DEFAULT_OUTCOME_RETENTION_MS, JobOutcomes, type NotedOutcome, type OutcomeFilter } from '../fleet/runs/outcomes.js';
import { RUN_ID_PATTERN } from '../fleet/runs/store.js';
import { defineCommand, integerFlag, UsageError } from './command.js';
import { requireFamily } from './families.js';
import { reasonLines } from './run-args.js';

const help = `Usage: tys jobs [--run ID] [--family NAME] [--outcome failed|skipped]
                [--reason TEXT] [--key KEY] [--limit N] [--json]
       tys jobs --purge [--older-than DURATION]

Lists the jobs that failed or were skipped, with their reasons: how many
ended with each reason (the most common first), then the latest of them,
newest first. Every filter narrows; --reason matches any part of a reason,
in any case. Kept in Postgres for 90 days, long after Redis has dropped the
jobs themselves; completed jobs are in the audit log (tys why).

Options:
  --run ID             one run's jobs
  --family NAME        one family's jobs
  --outcome KIND       failed or skipped
  --reason TEXT        jobs whose reason contains TEXT
  --key KEY            one row's jobs (an investment's id, a ticker)
  --limit N            jobs listed after the counts (default 20, at most 10000)
  --json               machine-readable: {counts, jobs}
  --purge              delete what is older than --older-than (default 90d)
  --older-than D       with --purge: a duration like 30d, 12h
  -h, --help           this help

Examples:
  tys jobs --run run-20261207T101500Z-3f9a1c --outcome failed
  tys jobs --family lots --reason "quantity"
  tys jobs --purge --older-than 30d`;

export const jobsCommand = defineCommand({
  name: 'jobs',
  summary: 'search the jobs that failed or were skipped, counted by reason',
  help,
  options: {
    run: { type: 'string' },
    family: { type: 'string' },
    outcome: { type: 'string' },
    reason: { type: 'string' },
    key: { type: 'string' },
    limit: { type: 'string' },
    purge: { type: 'boolean' },
    'older-than': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ values, positionals, config, json }, io) {
    if (positionals.length > 0) throw new UsageError(`tys jobs: unexpected argument "${positionals[0]}"`);
    const filter: OutcomeFilter = {};
    if (values.run !== undefined) {
      if (!RUN_ID_PATTERN.test(values.run)) throw new UsageError(`tys jobs: --run "${values.run.slice(0, 40)}" is not a run id (run-YYYYMMDDTHHMMSSZ-xxxxxx)`);
      filter.runId = values.run;
    }
    if (values.family !== undefined) filter.family = requireFamily('jobs', values.family).name;
    if (values.outcome !== undefined) {
      if (values.outcome !== 'failed' && values.outcome !== 'skipped')
        throw new UsageError(`tys jobs: --outcome takes failed or skipped (got "${values.outcome}")`);
      filter.outcome = values.outcome;
    }
    if (values.reason !== undefined) filter.reason = values.reason;
    if (values.key !== undefined) filter.key = values.key;
    const limit = integerFlag('jobs', 'limit', values.limit, 1, 10_000) ?? 20;
    const olderThanMs = values['older-than'] === undefined ? DEFAULT_OUTCOME_RETENTION_MS : parseDuration(values['older-than']);
    if (olderThanMs === null) throw new UsageError(`tys jobs: --older-than takes a duration like 30d or 12h (got "${values['older-than']}")`);
    if (values['older-than'] !== undefined && !values.purge) throw new UsageError('tys jobs: --older-than goes with --purge');
    if (values.purge && Object.keys(filter).length > 0) throw new UsageError('tys jobs: --purge takes no filter but --older-than');

    const prisma = createPrisma(config.databaseUrl);
    try {
      const outcomes = new JobOutcomes(prisma);
      if (values.purge) {
        const before = new Date(Date.now() - olderThanMs);
        const deleted = await outcomes.purge(before, (n) => io.err(`purging: ${n.toLocaleString('en-US')} deleted so far`));
        if (values.json) json({ deleted, before: before.toISOString() });
        else io.out(`deleted ${deleted.toLocaleString('en-US')} job outcome(s) from before ${before.toISOString()}`);
        return 0;
      }
      const [counts, jobs] = await Promise.all([outcomes.countByReason(filter), outcomes.find(filter, limit)]);
      if (values.json) {
        json({ counts, jobs });
        return 0;
      }
      const total = counts.reduce((sum, count) => sum + count.jobs, 0);
      if (total === 0) {
        io.out('no failed or skipped job matches');
        return 0;
      }
      io.out(`${total.toLocaleString('en-US')} job(s), by reason:`);
      for (const line of reasonLines(counts)) io.out(line);
      io.out(jobs.length < total ? `the latest ${jobs.length}:` : 'each:');
      for (const job of jobs) io.out(`  ${jobLine(job)}`);
      return 0;
    } finally {
      await prisma.$disconnect();
    }
  },
});

function jobLine(job: NotedOutcome): string {
  const attempts = `${job.attempts} attempt${job.attempts === 1 ? '' : 's'}`;
  return `${utcSecondText(job.at)}  ${job.outcome.padEnd(7)}  ${job.family} ${job.key}  ${job.runId}  ${attempts}  ${job.reason}`;
}
