import { defineCommand } from './command.js';
import { statusOptions } from './status-options.js';

const help = `Usage: tys status [--run ID] [--json]

Without --run: job counts per family (waiting, active, delayed, completed,
failed), the worker processes listening on each (? where Redis does not
say), and the latest runs. With --run: that run's progress and the reasons
of its failed jobs.

Options:
  --run ID      one run
  --limit N     runs listed (default 10)
  --json        machine-readable output
  -h, --help    this help`;

export const statusCommand = defineCommand({
  name: 'status',
  summary: 'job counts per family and progress per run',
  help,
  options: statusOptions,
  // The queues, Prisma and the families load only when the command runs, not for --help.
  run: async (args, io) => (await import('./status-run.js')).showStatus(args, io),
});
