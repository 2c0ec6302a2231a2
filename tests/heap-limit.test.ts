import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueHeapLimitMb, heapLimitFlags } from '../bin/heap-limit.js';
import { PROJECT_ROOT } from '../src/project-root.js';
import { seedMvp } from '../src/demo/seed.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { fleetEnv, killOnExit, until } from './support/processes.js';

describe('the heap limit of tys enqueue', () => {
  it('caps enqueue by its page size, leaves every other command and a limit the user set alone', () => {
    expect(heapLimitFlags(['enqueue', 'lots', '--all'], [])).toEqual(['--max-old-space-size=104']);
    expect(heapLimitFlags(['enqueue', 'lots', '--all', '--page-size', '10000'], [])).toEqual(['--max-old-space-size=176']);
    expect(heapLimitFlags(['enqueue', 'lots', '--all', '--page-size=2500'], [])).toEqual([`--max-old-space-size=${enqueueHeapLimitMb(2500)}`]);
    // A bad page size is the command's to refuse; the launcher assumes the default.
    expect(heapLimitFlags(['enqueue', 'lots', '--page-size', 'lots'], [])).toEqual(['--max-old-space-size=104']);
    expect(heapLimitFlags(['worker', '--families', 'lots'], [])).toBeNull();
    expect(heapLimitFlags([], [])).toBeNull();
    expect(heapLimitFlags(['enqueue', 'lots', '--all'], ['--max-old-space-size=512'])).toBeNull();
    expect(heapLimitFlags(['enqueue', 'lots', '--all'], [], '--enable-source-maps --max_old_space_size=64')).toBeNull();
  });

  describe('a real enqueue', () => {
    let db: TestDatabase;
    let fleet: Awaited<ReturnType<typeof testFleet>>;
    beforeAll(async () => {
      db = await createTestDatabase();
      await seedMvp(db.prisma, { investments: 50 });
      fleet = await testFleet(db);
    });
    afterAll(async () => {
      await fleet?.close();
      await db?.drop();
    });

    it('runs under the cap, and a SIGTERM to tys reaches it', async () => {
      // --wait with no worker running: the command waits until told to stop.
      const tys = killOnExit(
        spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'tys.js'), 'enqueue', 'lots', '--all', '--wait'], {
          env: fleetEnv(fleet.config),
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      let output = '';
      tys.stdout.on('data', (chunk) => (output += chunk));
      tys.stderr.on('data', (chunk) => (output += chunk));
      const exited = new Promise<number | null>((resolve) => tys.on('exit', (code) => resolve(code)));
      await until('the run to be enqueued', () => /added 50 jobs/.test(output), 30_000);
      const children = execFileSync('pgrep', ['-P', String(tys.pid)])
        .toString()
        .trim()
        .split('\n');
      expect(children).toHaveLength(1);
      const enqueuePid = Number(children[0]);
      const commandLine = readFileSync(`/proc/${enqueuePid}/cmdline`, 'utf8').split('\0');
      expect(commandLine).toContain('--max-old-space-size=104');
      expect(commandLine).toContain('enqueue');

      tys.kill('SIGTERM');
      expect(await exited).toBe(128 + 15);
      await until('the enqueue process to end', () => !isAlive(enqueuePid), 10_000);
    });
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
