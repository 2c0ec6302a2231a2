import { z } from 'zod';
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

export interface TextSettingOptions {
  /** Whether an error may quote the value. Default true; false for secrets and for URLs, which carry passwords. */
  quote?: boolean;
}

/**
 * A setting written as text and read into a value by `parse`, which returns
 * undefined for text it does not take; `rule` completes the error "NAME ...".
 */
export function textSetting<T>(rule: string, parse: (text: string) => T | undefined, options: TextSettingOptions = {}) {
  return z.string().transform((text, ctx): T => {
    const value = parse(text.trim());
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: `${rule}${options.quote === false ? '' : `, got "${text.slice(0, 80)}"`}` });
      return z.NEVER;
    }
    return value;
  });
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
  return textSetting('must look like 5/60s, 75/1m or 1000/1h', (text) => {
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

/** Unset, empty or blank: the setting's default (`fallback`, or none). */
export function optional<T extends z.ZodType>(schema: T) {
  return z.preprocess((value) => (typeof value === 'string' && value.trim() === '' ? undefined : value), schema.optional());
}

/**
 * Reads the variables of `shape` from the environment: each through its
 * schema, the first problem a ConfigError naming the variable. Variables
 * outside the shape are ignored.
 */
export function readSettings<Shape extends z.ZodRawShape>(shape: Shape, env: NodeJS.ProcessEnv): z.output<z.ZodObject<Shape>> {
  const result = z.object(shape).safeParse(env);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new ConfigError(`${issue.path.join('.')} ${issue.message}`);
}
