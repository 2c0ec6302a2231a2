import { reportFailure } from '../process-exit.js';
import { UsageError, type Command, type CommandIo } from './command.js';

// Each command's module is loaded only when it runs: `tys status` does not
// pay for the dashboard's or the migrations' dependencies.
const commands: { name: string; load: () => Promise<Command> }[] = [
  { name: 'migrate', load: async () => (await import('./migrate.js')).migrateCommand },
  { name: 'families', load: async () => (await import('./families-command.js')).familiesCommand },
  { name: 'enqueue', load: async () => (await import('./enqueue.js')).enqueueCommand },
  { name: 'worker', load: async () => (await import('./worker.js')).workerCommand },
  { name: 'status', load: async () => (await import('./status.js')).statusCommand },
  { name: 'pause', load: async () => (await import('./run-control.js')).pauseCommand },
  { name: 'resume', load: async () => (await import('./run-control.js')).resumeCommand },
  { name: 'cancel', load: async () => (await import('./cancel.js')).cancelCommand },
  { name: 'retry', load: async () => (await import('./retry.js')).retryCommand },
  { name: 'verify', load: async () => (await import('./verify.js')).verifyCommand },
  { name: 'jobs', load: async () => (await import('./jobs.js')).jobsCommand },
  { name: 'why', load: async () => (await import('./why.js')).whyCommand },
  { name: 'audit', load: async () => (await import('./audit.js')).auditCommand },
  { name: 'validate', load: async () => (await import('./validate.js')).validateCommand },
  { name: 'revert', load: async () => (await import('./revert.js')).revertCommand },
  { name: 'schedule', load: async () => (await import('./schedule.js')).scheduleCommand },
  { name: 'dashboard', load: async () => (await import('./dashboard.js')).dashboardCommand },
  { name: 'demo', load: async () => (await import('./demo.js')).demoCommand },
];

async function usage(): Promise<string> {
  const loaded = await Promise.all(commands.map((c) => c.load()));
  const width = Math.max(...loaded.map((c) => c.name.length));
  return [
    'Usage: tys <command> [options]',
    '',
    'Track Your Stack data-migration fleet.',
    '',
    'Commands:',
    ...loaded.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run "tys <command> --help" for the options of a command.',
  ].join('\n');
}

/** The line-clearing prefix of a progress line the CLI itself writes to a terminal. */
const CLEAR_LINE = '\r\x1b[K';

/**
 * A line as it may reach a terminal: run and job ids, reasons and keys can
 * come from Redis or from an argument, where anyone can put control
 * characters that move the cursor, clear the screen or retitle the window.
 * Each is shown escaped (\x1b); tabs, newlines and the CLI's own
 * line-clearing prefix are kept.
 */
export function printable(line: string): string {
  const own = line.startsWith(CLEAR_LINE) ? CLEAR_LINE : '';
  // eslint-disable-next-line no-control-regex
  const rest = line.slice(own.length).replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return own + rest;
}

export const defaultIo: CommandIo = {
  out: (line) => process.stdout.write(`${printable(line)}\n`),
  err: (line) => process.stderr.write(`${printable(line)}\n`),
  isTty: Boolean(process.stdout.isTTY),
};

/** Runs one CLI invocation and resolves to its exit status. */
export async function main(argv: string[], io: CommandIo = defaultIo): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(await usage());
    return name ? 0 : 2;
  }
  const entry = commands.find((c) => c.name === name);
  try {
    if (!entry) throw new UsageError(`tys: unknown command "${name}" (expected one of: ${commands.map((c) => c.name).join(', ')})`);
    return await (await entry.load()).run(rest, io);
  } catch (error) {
    return reportFailure(error, io.err);
  }
}
