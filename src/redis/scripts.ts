import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../project-root.js';
import type { RedisClient } from './connection.js';

/** Runs a script: the keys it touches (all in one hash slot on a cluster), then its arguments. */
export type Script = (keys: readonly string[], args?: readonly (string | number)[]) => Promise<unknown>;

/** Parts that scripts of every folder share: a line `-- @include "name"` stands for the file `name.lua` here. */
const INCLUDE_DIR = path.join(PROJECT_ROOT, 'src', 'redis', 'lua');
const INCLUDE = /^--\s*@include\s+"([\w-]+)"\s*$/gm;

function luaOf(dir: string, name: string): string {
  return readFileSync(path.join(dir, `${name}.lua`), 'utf8').replace(INCLUDE, (_, part: string) => readFileSync(path.join(INCLUDE_DIR, `${part}.lua`), 'utf8'));
}

/**
 * A folder of Lua scripts, `name.lua` each, read once and defined on each
 * connection that runs one (ioredis `defineCommand`, which sends EVALSHA and
 * the script's text only when the server does not hold it yet). Every
 * script of the folder must be named by the caller, and every name must be
 * a script of the folder: neither a dead script nor a missing one passes
 * the first use.
 */
export class ScriptFolder<Name extends string> {
  private readonly sources: ReadonlyMap<Name, string>;
  private readonly bound = new WeakMap<RedisClient, Record<Name, Script>>();

  /** `dir`: a folder under the project root; `commandPrefix` keeps the commands apart from ioredis's own methods and from other folders'. */
  constructor(
    dir: readonly string[],
    names: readonly Name[],
    private readonly commandPrefix: string,
  ) {
    const folder = path.join(PROJECT_ROOT, ...dir);
    const files = readdirSync(folder)
      .filter((file) => file.endsWith('.lua'))
      .map((file) => file.slice(0, -'.lua'.length));
    const unnamed = files.filter((file) => !names.includes(file as Name));
    const missing = names.filter((name) => !files.includes(name));
    if (unnamed.length > 0 || missing.length > 0) {
      throw new Error(
        `Lua scripts in ${dir.join('/')}: ${[...unnamed.map((f) => `${f}.lua is used by nothing`), ...missing.map((n) => `${n}.lua is missing`)].join('; ')}`,
      );
    }
    this.sources = new Map(names.map((name) => [name, luaOf(folder, name)]));
  }

  /** The scripts, defined on `redis` the first time they are asked for there. */
  on(redis: RedisClient): Record<Name, Script> {
    let scripts = this.bound.get(redis);
    if (!scripts) {
      const commands = redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>;
      scripts = {} as Record<Name, Script>;
      for (const [name, lua] of this.sources) {
        const command = `${this.commandPrefix}${name[0]!.toUpperCase()}${name.slice(1)}`;
        // No fixed number of keys: each call passes its own count first.
        redis.defineCommand(command, { lua });
        scripts[name] = (keys, args = []) => commands[command]!(keys.length, ...keys, ...args);
      }
      this.bound.set(redis, scripts);
    }
    return scripts;
  }
}
