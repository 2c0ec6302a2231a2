import { openFleet, type FleetContext } from '../fleet/context.js';
import { controlRun, RunControlError, type RunAction } from '../fleet/runs/control.js';
import { defineCommand, UsageError, type Command, type CommandIo } from './command.js';
import { cliOperator } from './operator.js';
import { requireRun, requireRunId } from './run-args.js';

const WHAT: Record<'pause' | 'resume', { summary: string; detail: string }> = {
  pause: {
    summary: 'pause a run: no new job of it starts',
    detail: `No new job of the run starts, in any worker process, within about a
second; its active jobs finish, and the run is PAUSED once none is active.
Other runs of the same family go on. Resume it with tys resume --run ID.`,
  },
  resume: {
    summary: 'resume a paused run',
    detail: `The run's jobs flow again from where they stopped; the run is RUNNING
(or ends at once if every job had already ended).`,
  },
};

function runControlCommand(action: 'pause' | 'resume'): Command {
  return defineCommand({
    name: action,
    summary: WHAT[action].summary,
    help: `Usage: tys ${action} --run ID [--note TEXT] [--json]

${WHAT[action].detail}

An unknown run, or one in a state the action does not apply to, is
refused (exit 2).

The action goes into the run's history (tys status --run ID) with who took
it (user@host) and the note.

Options:
  --run ID      the run (as tys status lists them)
  --note TEXT   why, for the run's history
  --json        machine-readable output
  -h, --help    this help`,
    options: { run: { type: 'string' }, note: { type: 'string' }, json: { type: 'boolean' } },
    positionals: false,
    async run({ values, config, json }, io) {
      const runId = requireRunId(action, values.run);
      const fleet = await openFleet(config);
      try {
        return await controlFromCli(fleet, action, runId, values, json, io);
      } finally {
        await fleet.close();
      }
    },
  });
}

/** Takes the action on the run, recorded with the CLI's operator and the note; resolves to the exit status. */
export async function controlFromCli(
  fleet: FleetContext,
  action: RunAction,
  runId: string,
  values: { note?: string; json?: boolean },
  json: (report: object) => void,
  io: CommandIo,
): Promise<number> {
  const { run, family } = await requireRun(fleet, action, runId);
  let status;
  try {
    status = await controlRun({ prisma: fleet.prisma, runs: fleet.runs, family: family.name, queues: fleet.shardQueues(family) }, run.id, action, {
      onProgress: (line) => io.out(line),
      by: { operator: cliOperator(), note: values.note },
    });
  } catch (error) {
    if (error instanceof RunControlError) throw new UsageError(`tys ${action}: ${error.message}`);
    throw error;
  }
  const after = (await fleet.runs.get(run.id))!;
  if (values.json) json({ run: after });
  else io.out(`run ${run.id}: ${status} (completed ${after.completed}, skipped ${after.skipped}, failed ${after.failed} of ${after.total})`);
  return 0;
}

export const pauseCommand = runControlCommand('pause');
export const resumeCommand = runControlCommand('resume');
