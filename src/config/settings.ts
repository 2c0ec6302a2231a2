import { parseDuration } from './duration.js';
import { parseRate } from './rate.js';

/** Bad input (an argument, a setting): one line for whoever gave it, exit status 2. */
export class InputError extends Error {
  override name = 'InputError';
}

/** A setting of the environment that is missing or malformed; the message names it. */
export class ConfigError extends InputError {
  override name = 'ConfigError';
}

/** Thrown by a setting whose text breaks its rule; the message completes "NAME ...". */
class BrokenRule extends Error {}

/**
 * Reads a variable's text into its value, or throws when the text breaks the
 * setting's rule. It is only given text that is set and not blank: a setting
 * left unset or blank takes its default, which its reader's caller decides.
 */
export type Setting<T> = (text: string) => T;

export interface TextSettingOptions {
  /** Whether an error may quote the value. Default true; false for secrets and for URLs, which carry passwords. */
  quote?: boolean;
}

/**
 * A setting read from its text, trimmed, by `parse`, which returns undefined
 * for text it does not take; `rule` completes the error "NAME ...".
 */
export function textSetting<T>(rule: string, parse: (text: string) => T | undefined, options: TextSettingOptions = {}): Setting<T> {
  return (text) => {
    const value = parse(text.trim());
    if (value === undefined) throw new BrokenRule(`${rule}${options.quote === false ? '' : `, got "${text.slice(0, 80)}"`}`);
    return value;
  };
}

/** `setting`, whose value must also pass `check`; `rule` completes the error when it does not. */
export function refine<T>(setting: Setting<T>, rule: string, check: (value: T) => boolean): Setting<T> {
  return (text) => {
    const value = setting(text);
    if (!check(value)) throw new BrokenRule(rule);
    return value;
  };
}

/**
 * Text taken as it is, spaces included, and never quoted in errors: such
 * settings hold names, passwords and tokens. Default minimum length 1.
 */
export function verbatim(minLength = 1): Setting<string> {
  return (value) => {
    if (value.length < minLength) throw new BrokenRule(`must be at least ${minLength} characters`);
    return value;
  };
}

export function integer(min: number, max: number) {
  return textSetting(`must be an integer from ${min} to ${max}`, (text) => {
    const value = /^-?\d+$/.test(text) ? Number(text) : NaN;
    return value >= min && value <= max ? value : undefined;
  });
}

export function decimal(min: number, max: number) {
  return textSetting(`must be a number from ${min} to ${max}`, (text) => {
    const value = /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
    return value >= min && value <= max ? value : undefined;
  });
}

/** Milliseconds, written like 500ms, 30s, 15m or 24h. */
export function duration() {
  return textSetting('must look like 30s, 15m or 24h', (text) => parseDuration(text) ?? undefined);
}

/** Calls per window, written like 5/60s. */
export function rate() {
  return textSetting('must look like 5/60s, 75/1m or 1000/1h (1 to 1,000,000,000 per 1ms to 24 days)', (text) => {
    try {
      return parseRate(text);
    } catch {
      return undefined;
    }
  });
}

/** A URL of one of `protocols`; never quoted in errors, as it may carry a password. */
export function url(protocols: readonly string[]) {
  return textSetting(
    `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
    (text) => {
      try {
        return protocols.includes(new URL(text).protocol) ? text : undefined;
      } catch {
        return undefined;
      }
    },
    { quote: false },
  );
}

/** Settings by the name of their variable. */
export type SettingsShape = Record<string, Setting<unknown>>;

/** What readSettings found: each variable's value, undefined where it is unset or blank. */
export type SettingsValues<Shape extends SettingsShape> = { [Name in keyof Shape]: ReturnType<Shape[Name]> | undefined };

/**
 * Reads the variables of `shape` from the environment, in the shape's order:
 * the first that breaks its rule is a ConfigError naming it. Variables
 * outside the shape are ignored.
 */
export function readSettings<Shape extends SettingsShape>(shape: Shape, env: NodeJS.ProcessEnv): SettingsValues<Shape> {
  const values: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(shape)) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    try {
      values[name] = setting(raw);
    } catch (error) {
      if (error instanceof BrokenRule) throw new ConfigError(`${name} ${error.message}`);
      throw error;
    }
  }
  return values as SettingsValues<Shape>;
}
