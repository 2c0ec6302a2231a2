import { utcSecondText } from '../config/duration.js';
import { createPrisma } from '../db/prisma.js';
import { rowStory } from '../fleet/row-story.js';
import { defineCommand, UsageError } from './command.js';
import { requireFamily } from './families.js';

const help = `Usage: tys why <family> <key> [--json]

Tells what the fleet did to one row: every job of the row that failed or was
skipped, with its run and reason; every change the fleet made to it (the
audit log's before and after); the status of those runs now; and what to run
next. The key is what the family's jobs are for: an investment's id for lots,
a ticker for metadata (the part of a job's id after "<family>-").

Exit status 0 when the fleet has a record of the row, 1 when it has none.

Options:
  --json       machine-readable
  -h, --help   this help

Example:
  tys why lots cm3x0a1b20000abcd1234efgh`;

/** A key is at most this long: anything longer is no key of the fleet's. */
const MAX_KEY = 200;

export const whyCommand = defineCommand({
  name: 'why',
  summary: 'tell what the fleet did to one row, and what to do next',
  help,
  options: { json: { type: 'boolean' } },
  async run({ values, positionals, config, json }, io) {
    const family = requireFamily('why', positionals[0]);
    const key = positionals[1];
    if (!key) throw new UsageError(`tys why: name the row after the family (tys why ${family.name} KEY)`);
    if (positionals.length > 2) throw new UsageError(`tys why: unexpected argument "${positionals[2]}"`);
    if (key.length > MAX_KEY || /[\s\p{Cc}]/u.test(key)) throw new UsageError(`tys why: "${key.slice(0, 40)}" is not a key of the fleet's jobs`);
    const prisma = createPrisma(config.databaseUrl);
    try {
      const story = await rowStory(prisma, family, key);
      if (values.json) {
        json(story ?? { family: family.name, key, found: false });
        return story ? 0 : 1;
      }
      if (!story) {
        io.out(`${family.name} ${key}: the fleet has no record of it (no failed or skipped job, no change); is the key right?`);
        return 1;
      }
      io.out(`${family.name} ${key} (job ${story.jobId})`);
      if (story.runs.length > 0) io.out(`runs: ${story.runs.map((run) => `${run.id} ${run.status}`).join(', ')}`);
      for (const outcome of story.outcomes) {
        const retried = outcome.retriedBy ? ` (taken up again by ${outcome.retriedBy})` : '';
        io.out(`  ${utcSecondText(outcome.at)}  ${outcome.outcome} in ${outcome.runId} after ${outcome.attempts} attempt(s): ${outcome.reason}${retried}`);
      }
      for (const change of story.changes) {
        io.out(`  ${utcSecondText(change.at)}  ${change.action} ${change.entity} ${change.entityId} in ${change.runId ?? 'an unknown run'}`);
        if (change.before !== null) io.out(`      before ${JSON.stringify(change.before)}`);
        if (change.after !== null) io.out(`      after  ${JSON.stringify(change.after)}`);
      }
      io.out(`next: ${story.next}`);
      return 0;
    } finally {
      await prisma.$disconnect();
    }
  },
});
