import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, type FleetConfig } from '../config/env.js';
import { describeTarget, targetLine, type Target } from '../config/target.js';
import { parseRate } from '../config/rate.js';
import { InputError } from '../config/settings.js';

/** Bad input on the command line: reported in one line, exit status 2. */
export class UsageError extends InputError {
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

type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>;

export interface CommandSpec<O extends Options> {
  name: string;
  summary: string;
  help: string;
  /** The command's flags; --help / -h is added to every command. */
  options: O;
  /** Whether the command takes positional arguments. Default true. */
  positionals?: boolean;
  /** Whether the command works on a database and Redis, and so names them first. Default true. */
  target?: boolean;
  run(args: CommandArgs<O>, io: CommandIo): Promise<number>;
}

export interface CommandArgs<O extends Options> {
  values: Parsed<O>['values'];
  positionals: string[];
  /** The environment's configuration, validated before the command runs. */
  config: FleetConfig;
  target: Target;
  /** Prints a JSON report, with the target it was made on. */
  json: (report: object) => void;
}

/**
 * A command whose flags are parsed before it runs: a parse failure is a
 * UsageError naming the command, and --help prints the help and exits 0.
 * Otherwise its first line (or its JSON report's `target`) names the
 * Postgres database, the Redis database and the queue prefix it works on,
 * so nobody acts on the wrong database without seeing it.
 */
export function defineCommand<O extends Options>(spec: CommandSpec<O>): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    help: spec.help,
    async run(argv, io) {
      let parsed: Parsed<O>;
      try {
        // parseArgs infers its result from a literal config; the spec's options are generic here.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
        parsed = parseArgs({
          args: argv,
          options: { ...spec.options, help: { type: 'boolean', short: 'h' } },
          allowPositionals: spec.positionals ?? true,
          strict: true,
        }) as Parsed<O>;
      } catch (error) {
        const message = (error as Error).message
          .split('\n')[0]!
          .split('. To specify')[0]!
          .replace(/^Unknown/, 'unknown');
        throw new UsageError(`tys ${spec.name}: ${message}. See "tys ${spec.name} --help".`);
      }
      if ((parsed.values as { help?: boolean }).help) {
        io.out(spec.help);
        return 0;
      }
      const config = loadConfig();
      const target = describeTarget(config);
      const json = (report: object) => io.out(JSON.stringify({ target, ...report }, null, 2));
      if (spec.target !== false && !(parsed.values as { json?: boolean }).json) io.out(targetLine(target));
      return spec.run({ values: parsed.values, positionals: parsed.positionals, config, target, json }, io);
    },
  };
}

/** An integer within [min, max], or undefined when not given; `label` names the option or variable in the error. */
export function integerSetting(label: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new UsageError(`${label} must be an integer from ${min} to ${max}, got "${raw}"`);
  return value;
}

/** A rate flag such as `--rate 500/1s`: N per window, or undefined when the flag is absent. */
export function rateFlag(command: string, raw: string | undefined): { max: number; windowMs: number } | undefined {
  if (raw === undefined) return undefined;
  try {
    return parseRate(raw);
  } catch {
    throw new UsageError(`tys ${command}: --rate must look like 500/1s or 100/1m (1 to 1,000,000,000 per 1ms to 24 days), got "${raw}"`);
  }
}

/** An integer flag within bounds, or a UsageError that names the flag; undefined when not given. */
export function integerFlag(command: string, flag: string, raw: string | undefined, min: number, max: number): number | undefined {
  return integerSetting(`tys ${command}: --${flag}`, raw, min, max);
}
