import { createPrisma } from '../db/prisma.js';
import { families } from '../families/index.js';
import { revertRun } from '../fleet/revert.js';
import { RunActions } from '../fleet/runs/actions.js';
import { defineCommand, UsageError } from './command.js';
import { cliOperator } from './operator.js';
import { requireRunId } from './run-args.js';

const help = `Usage: tys revert --run ID [--note TEXT] [--json]

Restores the values a run changed, from its audit entries, newest first, and
deletes the rows it created: only where the row still holds exactly what the
run wrote. Restored values may break a phase 4 constraint (that is what a
constraints run fixed): such a constraint is put back NOT VALID. A row changed since is reported as a conflict and left as it is.
The revert writes audit entries of its own, under a new run id, so it can be
reverted in turn. Running it twice changes nothing the second time.
Exit status 0 when everything was restored, 1 when any conflict remains.
The revert goes into the run's history (tys status --run ID) with who ran it
(user@host) and the note.

Options:
  --run ID     the run to revert (see tys status)
  --note TEXT  why, for the run's history
  --json       machine-readable report
  -h, --help   this help`;

export const revertCommand = defineCommand({
  name: 'revert',
  summary: 'restore what a run changed, where nothing changed since',
  help,
  options: { run: { type: 'string' }, note: { type: 'string' }, json: { type: 'boolean' } },
  positionals: false,
  async run({ values, positionals, config, json }, io) {
    if (positionals.length > 0) throw new UsageError(`tys revert: unexpected argument "${positionals[0]}"`);
    const runId = requireRunId('revert', values.run);
    const prisma = createPrisma(config.databaseUrl);
    try {
      if (!(await prisma.fleetRun.findUnique({ where: { id: runId }, select: { id: true } }))) {
        throw new UsageError(`tys revert: no run ${runId}`);
      }
      const report = await revertRun(prisma, runId, families);
      await new RunActions(prisma).record(
        runId,
        'revert',
        { operator: cliOperator(), note: values.note },
        `${report.reverted} restored as ${report.revertRunId}, ${report.conflicts.length} conflicts`,
      );
      if (values.json) json(report);
      else {
        io.out(
          `revert of ${runId} (as ${report.revertRunId}): ${report.entries} audit entries, ${report.reverted} restored, ` +
            `${report.alreadyReverted} already reverted, ${report.conflicts.length} conflicts`,
        );
        for (const name of report.constraintsReopened) {
          io.out(`  constraint ${name} is NOT VALID again: the restored values break it (tys validate constraints once fixed)`);
        }
        for (const c of report.conflicts) {
          io.out(
            `  conflict ${c.entity} ${c.entityId}: ${c.reason}${c.found ? ` (expected ${JSON.stringify(c.expected)}, found ${JSON.stringify(c.found)})` : ''}`,
          );
        }
      }
      return report.conflicts.length === 0 ? 0 : 1;
    } finally {
      await prisma.$disconnect();
    }
  },
});
