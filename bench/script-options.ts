import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * What a script's user gets wrong is said in one line, with the script's
 * name, and exits with status 2; never a stack trace.
 */
export function refuse(script: string, message: string): never {
  console.error(`${script}: ${message} (--help lists the options)`);
  process.exit(2);
}

/**
 * The script's options from its command line. `--help` (or `-h`) prints
 * `usage` and exits 0; an unknown option or a missing value is refused (see
 * refuse).
 */
export function scriptOptions<O extends Options>(script: string, usage: string, options: O, argv = process.argv.slice(2)) {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage);
    process.exit(0);
  }
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    refuse(script, (error as Error).message);
  }
}

/** A whole number within bounds, or the script refuses it, naming the option. */
export function integerOption(script: string, name: string, raw: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    refuse(script, `--${name} must be an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}, got "${raw}"`);
  }
  return value;
}
