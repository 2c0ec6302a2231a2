import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Bad input on the command line: reported in one line, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** True when stdout is a terminal, so progress can redraw one line. */
  isTty: boolean;
}

export interface Command {
  name: string;
  summary: string;
  /** Full help text, printed by `tys <name> --help`. */
  help: string;
  /** Resolves to the exit status. */
  run(argv: string[], io: CommandIo): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs that turns every parse failure into a UsageError naming the command. */
export function parseCommandArgs<T extends Options>(command: string, argv: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (error) {
    const message = (error as Error).message.split('\n')[0]!.split('. To specify')[0]!.replace(/^Unknown/, 'unknown');
    throw new UsageError(`tys ${command}: ${message}. See "tys ${command} --help".`);
  }
}
