import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../src/project-root.js';
import type { FleetConfig } from '../../src/config/env.js';

const TYS = path.join(PROJECT_ROOT, 'bin', 'tys.js');

export function fleetEnv(config: FleetConfig, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: config.databaseUrl,
    REDIS_URL: config.redisUrl,
    TYS_QUEUE_PREFIX: config.queuePrefix,
    ...(config.redisCluster ? { REDIS_CLUSTER_NODES: config.redisCluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',') } : {}),
    TYS_LOG_LEVEL: 'warn',
    ...extra,
  };
}

export interface TysResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `tys ...` as a real child process and collects its output. */
export function runTys(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<TysResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TYS, ...args], { env, cwd: PROJECT_ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const spawned = new Set<ChildProcess>();

/** Registers a child process for killSpawnedWorkers. */
export function killOnExit<T extends ChildProcess>(child: T): T {
  spawned.add(child);
  return child;
}

/** Kills every worker process a test started and did not stop, so a failed test leaves none running. */
export function killSpawnedWorkers(): void {
  for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  spawned.clear();
}

/** A `tys worker` child process; output() is what it has printed so far. */
export function spawnWorker(env: NodeJS.ProcessEnv, args: string[] = []): ChildProcess & { exited: Promise<TysResult>; output(): string } {
  return spawnTys(['worker', ...args], env);
}

/** Starts `tys ...` as a real child process that the test watches while it runs; killed if the test process exits. */
export function spawnTys(args: string[], env: NodeJS.ProcessEnv): ChildProcess & { exited: Promise<TysResult>; output(): string } {
  const child = killOnExit(spawn(process.execPath, [TYS, ...args], { env, cwd: PROJECT_ROOT }));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<TysResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return Object.assign(child, { exited, output: () => stdout + stderr });
}

/** Polls `check` until it returns true, failing after the deadline with `what`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, deadlineMs = 60_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** The niceness of every thread of a process (Linux keeps one per thread). */
export function threadNiceness(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((thread) => Number(readFileSync(`/proc/${pid}/task/${thread}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]));
}
