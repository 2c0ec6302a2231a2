import { InputError } from './config/settings.js';
import { MigrationError } from './db/migration-error.js';

/**
 * Prints what ended a command or a process as one line, and gives its exit
 * status: 2 for bad input (arguments, settings), 1 for anything else.
 */
export function reportFailure(error: unknown, printLine: (line: string) => void): number {
  if (error instanceof InputError) {
    printLine(`error: ${error.message}`);
    return 2;
  }
  printLine(`error: ${error instanceof MigrationError ? error.message : describeError(error)}`);
  return 1;
}

/** Runs the main function of a process entry point and exits with its status. */
export async function runMain(main: () => Promise<number>): Promise<never> {
  const status = await main().catch((error: unknown) => reportFailure(error, (line) => process.stderr.write(`${line}\n`)));
  process.exit(status);
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: string }).code;
    const lines = error.message
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    const last = lines[lines.length - 1] ?? '';
    const wrapped = /Message: `(.*)`$/.exec(last)?.[1];
    const line = error.name.startsWith('PrismaClient') ? (wrapped ?? last) : lines[0];
    const hint = code === 'P2021' ? ' (apply the migrations first: tys migrate)' : '';
    return `${code && !wrapped ? `${code}: ` : ''}${line ?? error.name}${hint}`;
  }
  return String(error);
}
