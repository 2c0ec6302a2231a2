import { utcSecondText } from '../config/duration.js';
import { createPrisma, type PrismaClient } from '../db/prisma.js';
import { families } from '../families/index.js';
import type { JobFamily } from '../fleet/family.js';
import { rowStory, type RowStory } from '../fleet/row-story.js';
import { isRowId } from '../fleet/scope.js';
import { defineCommand, UsageError, type CommandIo } from './command.js';
import { requireFamily } from './families.js';

const help = `Usage: tys why <family> <key> [--json]
       tys why investment <id> [--json]

Tells what the fleet did to one row: every job of the row that failed or was
skipped, with its run and reason; every change the fleet made to it (the
audit log's before and after); the status of those runs now; and what to run
next. The key is what the family's jobs are for: an investment's id for lots,
a ticker for metadata (the part of a job's id after "<family>-").

"investment <id>" asks every family whose jobs concern an investment: its
lots, its constraint fixes (the investment's and its lots'), its corporate
actions, its ticker's metadata.

Exit status 0 when the fleet has a record of the row, 1 when it has none.

Options:
  --json       machine-readable
  -h, --help   this help

Examples:
  tys why lots cm3x0a1b20000abcd1234efgh
  tys why investment cm3x0a1b20000abcd1234efgh`;

/** A key is at most this long: anything longer is no key of the fleet's. */
const MAX_KEY = 200;

export const whyCommand = defineCommand({
  name: 'why',
  summary: 'tell what the fleet did to one row, and what to do next',
  help,
  options: { json: { type: 'boolean' } },
  async run({ values, positionals, config, json }, io) {
    const acrossFamilies = positionals[0] === 'investment';
    const family = acrossFamilies ? null : requireFamily('why', positionals[0]);
    const key = positionals[1];
    if (!key) throw new UsageError(`tys why: name the row after the family (tys why ${family?.name ?? 'investment'} KEY)`);
    if (positionals.length > 2) throw new UsageError(`tys why: unexpected argument "${positionals[2]}"`);
    const shown = key.slice(0, 40);
    if (key.length > MAX_KEY || /[\s\p{Cc}]/u.test(key)) throw new UsageError(`tys why: "${shown}" is not a key of the fleet's jobs`);
    if (acrossFamilies && !isRowId(key)) throw new UsageError(`tys why: "${shown}" is not an investment id`);
    const prisma = createPrisma(config.databaseUrl);
    try {
      const asked = family ? [{ family, key, investmentId: await investmentNamed(prisma, family, key) }] : await investmentRows(prisma, key);
      const stories = (await Promise.all(asked.map(({ family, key, investmentId }) => rowStory(prisma, family, key, { investmentId })))).filter(
        (story) => story !== null,
      );
      if (values.json) {
        if (family) json(stories[0] ?? { family: family.name, key, found: false });
        else json({ investment: key, found: stories.length > 0, stories });
        return stories.length > 0 ? 0 : 1;
      }
      if (stories.length === 0) {
        const what = family ? `${family.name} ${key}` : `investment ${key}`;
        io.out(`${what}: the fleet has no record of it (no failed or skipped job, no change); is the key right?`);
        return 1;
      }
      for (const story of stories) printStory(story, io);
      return 0;
    } finally {
      await prisma.$disconnect();
    }
  },
});

/** The rows of every family whose jobs concern the investment. */
async function investmentRows(prisma: PrismaClient, investmentId: string): Promise<{ family: JobFamily; key: string; investmentId: string }[]> {
  const rows = await Promise.all(
    families.map(async (family) =>
      (await (family.investmentKeys?.(prisma, investmentId) ?? Promise.resolve([]))).map((key) => ({ family, key, investmentId })),
    ),
  );
  return rows.flat();
}

/** The key itself, when it is the id of an investment the family's jobs are for (lots, corporate actions). */
async function investmentNamed(prisma: PrismaClient, family: JobFamily, key: string): Promise<string | undefined> {
  if (!isRowId(key) || !family.investmentKeys) return undefined;
  return (await family.investmentKeys(prisma, key)).includes(key) ? key : undefined;
}

function printStory(story: RowStory, io: CommandIo): void {
  io.out(`${story.family} ${story.key} (job ${story.jobId})`);
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
  if (story.needsWork !== null)
    io.out(`now: ${story.needsWork ? `still needs the ${story.family} family's work` : `nothing left for the ${story.family} family to do`}`);
  io.out(`next: ${story.next}`);
}
