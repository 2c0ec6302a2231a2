import { ConfigError } from '../config/env.js';
import { MigrationError } from '../db/migrations.js';
import { UsageError, type Command, type CommandIo } from './command.js';
import { auditCommand } from './audit.js';
import { dashboardCommand } from './dashboard.js';
import { demoCommand } from './demo.js';
import { enqueueCommand } from './enqueue.js';
import { familiesCommand } from './families-command.js';
import { migrateCommand } from './migrate.js';
import { revertCommand } from './revert.js';
import { cancelCommand, pauseCommand, resumeCommand, retryCommand } from './run-control.js';
import { scheduleCommand } from './schedule.js';
import { statusCommand } from './status.js';
import { validateCommand } from './validate.js';
import { verifyCommand } from './verify.js';
import { workerCommand } from './worker.js';

const commands: Command[] = [migrateCommand, familiesCommand, enqueueCommand, workerCommand, statusCommand, pauseCommand, resumeCommand, cancelCommand, retryCommand, verifyCommand, auditCommand, validateCommand, revertCommand, scheduleCommand, dashboardCommand, demoCommand];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: tys <command> [options]',
    '',
    'Track Your Stack data-migration fleet.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run "tys <command> --help" for the options of a command.',
  ].join('\n');
}

export const defaultIo: CommandIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  isTty: Boolean(process.stdout.isTTY),
};

/** Runs one CLI invocation and resolves to its exit status. */
export async function main(argv: string[], io: CommandIo = defaultIo): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage());
    return name ? 0 : 2;
  }
  const command = commands.find((c) => c.name === name);
  try {
    if (!command) throw new UsageError(`tys: unknown command "${name}" (expected one of: ${commands.map((c) => c.name).join(', ')})`);
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      io.err(`error: ${error.message}`);
      return 2;
    }
    const message = error instanceof MigrationError ? error.message : describeError(error);
    io.err(`error: ${message}`);
    return 1;
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: string }).code;
    const lines = error.message.split('\n').map((l) => l.trim()).filter(Boolean);
    // Prisma's messages open with the call site; what went wrong is the last line.
    const last = lines[lines.length - 1] ?? '';
    // A raw query's failure wraps the server's own words: "... Message: `...`".
    const wrapped = /Message: `(.*)`$/.exec(last)?.[1];
    const line = error.name.startsWith('PrismaClient') ? (wrapped ?? last) : lines[0];
    // A missing table means a database the migrations have not reached yet.
    const hint = code === 'P2021' ? ' (apply the migrations first: tys migrate)' : '';
    return `${code && !wrapped ? `${code}: ` : ''}${line ?? error.name}${hint}`;
  }
  return String(error);
}
