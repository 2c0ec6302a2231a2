import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../src/project-root.js';
import { ScriptFolder } from '../src/redis/scripts.js';
import { flushPrefix, REDIS_URL, testPrefix } from './support/fleet.js';

describe('a folder of Lua scripts', () => {
  const prefix = testPrefix();
  const dir = ['tests', '.artifacts', `lua-${prefix}`];
  const folder = path.join(PROJECT_ROOT, ...dir);
  const redis = new Redis(REDIS_URL);
  mkdirSync(folder, { recursive: true });

  afterAll(async () => {
    redis.disconnect();
    rmSync(folder, { recursive: true, force: true });
    await flushPrefix(prefix);
  });

  it('runs each script with its keys and arguments, its shared parts included, sent to the server once', async () => {
    const stamp = `redis.call('SET', KEYS[1], ARGV[1] .. ':' .. nowMs())\nreturn #KEYS`;
    writeFileSync(path.join(folder, 'stamp.lua'), `-- @include "nowMs"\n${stamp}`);
    const folderScripts = new ScriptFolder(dir, ['stamp'], 'testStamp');
    const scripts = folderScripts.on(redis);
    const before = Date.now();
    expect(await scripts.stamp([`${prefix}:a`, `${prefix}:b`], ['x'])).toBe(2);
    const [tag, at] = (await redis.get(`${prefix}:a`))!.split(':');
    expect(tag).toBe('x');
    expect(Math.abs(Number(at) - before)).toBeLessThan(60_000);
    // Defined once per connection, and held by the server under the hash of its whole text.
    expect(folderScripts.on(redis)).toBe(scripts);
    const whole = `${readFileSync(path.join(PROJECT_ROOT, 'src', 'redis', 'lua', 'nowMs.lua'), 'utf8')}\n${stamp}`;
    expect(await redis.script('EXISTS', createHash('sha1').update(whole).digest('hex'))).toEqual([1]);
  });

  it('refuses a script nothing names, and a name without its script', () => {
    writeFileSync(path.join(folder, 'orphan.lua'), 'return 1');
    expect(() => new ScriptFolder(dir, ['stamp'], 'x')).toThrow(/orphan\.lua is used by nothing/);
    expect(() => new ScriptFolder(dir, ['stamp', 'orphan', 'gone'], 'x')).toThrow(/gone\.lua is missing/);
  });

  it("holds every script of the project's folders, and every shared part is used", async () => {
    // Each folder's module names its scripts when it loads: a stray or a missing file would throw here.
    const { runScripts } = await import('../src/fleet/runs/scripts.js');
    await import('../src/market/budget.js');
    expect(Object.keys(runScripts.on(redis))).toContain('recordOutcomes');
    const scripts = ['src/fleet/runs/lua', 'src/market/lua'].flatMap((dir) =>
      readdirSync(path.join(PROJECT_ROOT, dir)).map((file) => readFileSync(path.join(PROJECT_ROOT, dir, file), 'utf8')),
    );
    const parts = readdirSync(path.join(PROJECT_ROOT, 'src', 'redis', 'lua')).map((file) => file.replace(/\.lua$/, ''));
    expect(parts.length).toBeGreaterThan(0);
    for (const part of parts)
      expect(
        scripts.some((lua) => lua.includes(`-- @include "${part}"`)),
        part,
      ).toBe(true);
  });
});
