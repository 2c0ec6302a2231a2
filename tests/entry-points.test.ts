import { getPriority } from 'node:os';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../src/project-root.js';
import { seedMvp } from '../src/demo/seed.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { fleetEnv, killOnExit, killSpawnedWorkers, runTys, threadNiceness, until, type TysResult } from './support/processes.js';

/** A process entry point as the image's services start it: node dist/<folder>/index.js. */
function spawnEntry(folder: 'workers' | 'dashboard', env: NodeJS.ProcessEnv) {
  const child = killOnExit(spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist', folder, 'index.js')], { env, cwd: PROJECT_ROOT }));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<TysResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return Object.assign(child, { exited, stdout: () => stdout });
}

describe('the process entry points (the image runs them without the CLI)', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: 40 });
    fleet = await testFleet(db);
    env = fleetEnv(fleet.config);
  });
  afterEach(() => killSpawnedWorkers());
  afterAll(async () => {
    await fleet?.close();
    await db?.drop();
  });

  it.each([
    ['workers', { TYS_FAMILIES: 'lots,mystery' }, /^error: TYS_FAMILIES names unknown family "mystery" \(expected some of: lots, /],
    ['workers', { TYS_THROTTLE_CONNECTIONS: '2' }, /^error: TYS_THROTTLE_CONNECTIONS must be a number from 0.01 to 1, got "2"$/],
    [
      'workers',
      { TYS_REPLICA_URL: 'mysql://admin:hunter2@replica/x' },
      /^error: TYS_REPLICA_URL must be a URL starting with postgres:\/\/ or postgresql:\/\/$/,
    ],
    ['dashboard', { DASHBOARD_USER: '', DASHBOARD_PASSWORD: '' }, /^error: set DASHBOARD_USER and DASHBOARD_PASSWORD/],
    [
      'dashboard',
      { DASHBOARD_USER: 'ops', DASHBOARD_PASSWORD: 'long enough', METRICS_TOKEN: 'hunter2' },
      /^error: METRICS_TOKEN must be at least 24 characters$/,
    ],
  ] as const)('%s refuses %j at start: one line, exit 2, no secret echoed', async (folder, settings, message) => {
    const result = await spawnEntry(folder, { ...env, ...settings }).exited;
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr.trim()).toMatch(message);
    expect(result.stderr).not.toContain('hunter2');
  });

  it('the worker process opens its connections, carries out a run and stops cleanly on SIGTERM', async () => {
    const worker = spawnEntry('workers', { ...env, TYS_FAMILIES: 'lots,constraints', TYS_CONCURRENCY: '5', TYS_LOG_LEVEL: 'info', TYS_NICE: '10' });
    await until('the worker to start', () => worker.stdout().includes('"msg":"workers started"'), 30_000);
    // Its connections are open before its first job: as many as one family's jobs can use at once (5 constraints jobs; lots
    // jobs go 250 to a connection). Without that it holds one, its health probe's.
    const [opened] = await db.prisma.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tys worker'`;
    expect(opened!.n).toBeGreaterThanOrEqual(5);
    const run = await runTys(['enqueue', 'lots', '--all', '--wait', '--timeout', '60s'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(await db.prisma.taxLot.count()).toBe(40);
    // TYS_NICE: the worker yields the CPU to what shares its machine (Postgres, the application).
    expect(getPriority(worker.pid)).toBe(10);
    expect(new Set(threadNiceness(worker.pid!))).toEqual(new Set([10]));
    // Its sessions name it, for the database's operators (pg_stat_activity, lock holders).
    const sessions = await db.prisma.$queryRaw<{ name: string }[]>`
      SELECT DISTINCT application_name AS name FROM pg_stat_activity WHERE datname = current_database()`;
    expect(sessions.map((session) => session.name)).toContain('tys worker');
    worker.kill('SIGTERM');
    const stopped = await worker.exited;
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout + stopped.stderr).toMatch(/workers stopped/);
  });

  it('the dashboard process serves with the settings of its environment and stops cleanly on SIGTERM', async () => {
    const dashboard = spawnEntry('dashboard', { ...env, PORT: '0', DASHBOARD_HOST: '127.0.0.1', DASHBOARD_USER: 'ops', DASHBOARD_PASSWORD: 'long enough' });
    let address = '';
    await until('the dashboard to listen', () => {
      address = /dashboard on (http:\/\/127\.0\.0\.1:\d+)\/ \(1 account\(s\)\)/.exec(dashboard.stdout())?.[1] ?? '';
      return address !== '';
    });
    expect((await fetch(`${address}/healthz`)).status).toBe(200);
    expect((await fetch(`${address}/runs`)).status).toBe(401);
    const signedIn = await fetch(`${address}/api/runs`, { headers: { authorization: `Basic ${Buffer.from('ops:long enough').toString('base64')}` } });
    expect(signedIn.status).toBe(200);
    dashboard.kill('SIGTERM');
    expect((await dashboard.exited).code).toBe(0);
  });
});
