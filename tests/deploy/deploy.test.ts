import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrisma } from '../../src/db/prisma.js';
import { seedMvp } from '../../src/demo/seed.js';
import { PROJECT_ROOT } from '../../src/project-root.js';
import { until } from '../support/processes.js';
import { freePort } from '../support/redis-server.js';

const exec = promisify(execFile);
const IMAGE = 'tys:latest';
const PROJECT = `tys-deploy-${randomBytes(3).toString('hex')}`;
const DEMO_INVESTMENTS = 2_000;
const MORE_INVESTMENTS = 20_000;

/** Closing figures, printed at the end: what the stack costs to build and start here. */
const figures: Record<string, string> = {};
const seconds = (since: number) => ((Date.now() - since) / 1000).toFixed(1);
let opensslWarnedAtBuild = false;

describe('the image and the compose stack, on a Docker engine', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tys-deploy-'));
  const envFile = path.join(dir, 'deploy.env');
  const ports = { postgres: 0, redis: 0, dashboard: 0, prometheus: 0 };
  const password = randomBytes(12).toString('hex');
  const metricsToken = randomBytes(16).toString('hex');
  const operator = { user: 'ops', password: randomBytes(12).toString('hex') };

  const resolvedFile = path.join(dir, 'compose.resolved.yml');
  /** docker-compose on the project's file as resolved in beforeAll. */
  const compose = async (args: string[], timeoutMs = 300_000) =>
    exec('docker-compose', ['-p', PROJECT, '-f', resolvedFile, ...args], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  /** A tys command in a container of the image, as an operator runs one. */
  const tys = async (args: string[], timeoutMs?: number) => {
    try {
      const { stdout } = await compose(['run', '--rm', '-T', 'tys', ...args], timeoutMs);
      return { code: 0, stdout };
    } catch (error) {
      const failed = error as { code?: number; stdout?: string; stderr?: string };
      return { code: failed.code ?? 1, stdout: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
    }
  };
  const docker = async (args: string[]) => (await exec('docker', args, { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
  /** The containers of one service, stopped ones included. */
  const containers = async (service: string) =>
    (await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--filter', `label=com.docker.compose.service=${service}`]))
      .split('\n')
      .filter(Boolean);
  const state = async (id: string) =>
    JSON.parse(await docker(['inspect', '--format', '{{json .State}}', id])) as { Status: string; ExitCode: number; Health?: { Status: string } };
  const runStatus = async (runId: string) => JSON.parse((await tys(['status', '--run', runId, '--json'])).stdout).run as RunJson;
  const prisma = () => createPrisma(`postgresql://postgres:${password}@127.0.0.1:${ports.postgres}/tys`);

  beforeAll(async () => {
    for (const name of Object.keys(ports) as (keyof typeof ports)[]) ports[name] = await freePort();
    writeFileSync(
      envFile,
      [
        `POSTGRES_PASSWORD=${password}`,
        `DASHBOARD_USER=${operator.user}`,
        `DASHBOARD_PASSWORD=${operator.password}`,
        `METRICS_TOKEN=${metricsToken}`,
        `POSTGRES_PORT=${ports.postgres}`,
        `REDIS_PORT=${ports.redis}`,
        `DASHBOARD_PORT=${ports.dashboard}`,
        `PROMETHEUS_PORT=${ports.prometheus}`,
        // Both bind every address by default; on the host's network, the test's bind the loopback only.
        'DASHBOARD_HOST=127.0.0.1',
        'PROMETHEUS_HOST=127.0.0.1',
      ].join('\n'),
    );
    // The project's own file with only tests/deploy/compose.host.yml over it, resolved once.
    const files = ['-f', path.join(PROJECT_ROOT, 'docker-compose.yml'), '-f', path.join(PROJECT_ROOT, 'tests', 'deploy', 'compose.host.yml')];
    const resolved = await exec('docker-compose', ['-p', PROJECT, '--project-directory', PROJECT_ROOT, ...files, '--env-file', envFile, 'config']);
    writeFileSync(resolvedFile, withoutPublishedPorts(resolved.stdout), { mode: 0o600 });
    const built = Date.now();
    const build = await exec('docker', ['build', '--network', 'host', '-t', IMAGE, PROJECT_ROOT], { timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
    figures['image build'] = `${seconds(built)} s`;
    // Prisma looks for OpenSSL when it generates the client, for a native engine this client does not use (engineType "client").
    opensslWarnedAtBuild = /openssl|libssl/i.test(`${build.stdout}${build.stderr}`);
    const started = Date.now();
    await compose(['up', '-d', '--no-build']);
    await until(
      'the dashboard to be healthy',
      async () => {
        const [id] = await containers('dashboard');
        return id !== undefined && (await state(id)).Health?.Status === 'healthy';
      },
      180_000,
      500,
    );
    figures['up to healthy'] = `${seconds(started)} s`;
  }, 1_200_000);

  afterAll(async () => {
    await compose(['--profile', 'cli', 'down', '--volumes', '--remove-orphans'], 180_000).catch((error: unknown) => console.error(error));
    await docker(['image', 'rm', '-f', IMAGE]).catch(() => undefined);
    // The build's leftovers: untagged layers, and BuildKit's cache when it built.
    await docker(['image', 'prune', '-f']).catch(() => undefined);
    await docker(['builder', 'prune', '-af']).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    console.log(
      `deploy figures: ${Object.entries(figures)
        .map(([name, value]) => `${name} ${value}`)
        .join(', ')}`,
    );
  }, 300_000);

  it('runs migrate and schedule once, each ending 0; the workers, the dashboard and Prometheus come up', async () => {
    for (const service of ['migrate', 'schedule']) {
      const ids = await containers(service);
      expect(ids, service).toHaveLength(1);
      await until(`${service} to end`, async () => (await state(ids[0]!)).Status === 'exited', 120_000, 500);
      expect((await state(ids[0]!)).ExitCode, service).toBe(0);
    }
    for (const service of ['postgres', 'redis', 'dashboard']) expect((await state((await containers(service))[0]!)).Health?.Status, service).toBe('healthy');
    const [worker] = await containers('worker');
    await until('the worker to start', async () => (await docker(['logs', worker!])).includes('"msg":"workers started"'), 60_000, 500);
    await until(
      'Prometheus to be ready',
      async () => (await fetch(`http://127.0.0.1:${ports.prometheus}/-/ready`).catch(() => null))?.ok === true,
      60_000,
      500,
    );
    expect((await tys(['schedule', 'list'])).stdout).toContain('lots-follow-every-minute');
  });

  it('is an image of production dependencies that runs as a user other than root', async () => {
    const [user, size] = (await docker(['image', 'inspect', '--format', '{{.Config.User}} {{.Size}}', IMAGE])).split(' ');
    expect(user).toBe('node');
    figures['image size'] = `${Math.round(Number(size) / 1_000_000)} MB`;
    // The test and lint tools, and the Prisma CLI, which only the build stage runs.
    const listing = 'id -u; ls node_modules | grep -x -e vitest -e eslint -e prettier -e prisma || true';
    const { stdout } = await compose(['run', '--rm', '-T', '--entrypoint', 'sh', 'tys', '-c', listing]);
    const [uid, ...unwanted] = stdout.trim().split('\n');
    expect(uid).not.toBe('0');
    expect(unwanted).toEqual([]);
  });

  it('runs the demo in a container: the lots of every investment, verified', async () => {
    const started = Date.now();
    const demo = await tys(['demo', '--investments', String(DEMO_INVESTMENTS)], 600_000);
    expect(demo.stdout).toMatch(/verify lots: OK/);
    // Whatever Prisma said of OpenSSL at build time, it says nothing at run time and the client works.
    expect(demo.stdout).not.toMatch(/openssl|libssl/i);
    figures['OpenSSL warning'] = opensslWarnedAtBuild ? 'at build only' : 'none';
    expect(demo.code).toBe(0);
    const runId = /(run-\d{8}T\d{6}Z-[0-9a-f]{6})/.exec(demo.stdout)![1]!;
    const run = await runStatus(runId);
    expect(run).toMatchObject({ status: 'COMPLETED', total: DEMO_INVESTMENTS, failed: 0 });
    const runSeconds = (Date.parse(run.finishedAt!) - Date.parse(run.startedAt)) / 1000;
    figures['demo'] =
      `${DEMO_INVESTMENTS} lots jobs in ${runSeconds.toFixed(1)} s (${Math.round(DEMO_INVESTMENTS / runSeconds)}/s; ${seconds(started)} s with the seed)`;
  });

  it('is scraped by Prometheus with the token: tys_ series are there', async () => {
    const query = async (expr: string) =>
      ((await (await fetch(`http://127.0.0.1:${ports.prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as PromAnswer).data.result;
    await until('a scrape of the dashboard', async () => (await query('up{job="tys"}'))[0]?.value[1] === '1', 90_000, 1_000);
    expect((await query('tys_queue_jobs')).length).toBeGreaterThan(0);
    // And the token is what opens /metrics: without it, 401.
    expect((await fetch(`http://127.0.0.1:${ports.dashboard}/metrics`)).status).toBe(401);
  });

  it('scales to three worker processes, which tys status counts', async () => {
    await compose(['up', '-d', '--no-build', '--no-recreate', '--scale', 'worker=3', 'worker']);
    await until('three workers on the lots queue', async () => /^lots +(\d+ +){5}3$/m.test((await tys(['status'])).stdout), 90_000, 1_000);
  });

  it('stops the workers mid-run with nothing lost, keeps the queues through a Redis restart, and finishes the run verified', async () => {
    const client = prisma();
    try {
      await seedMvp(client, { investments: MORE_INVESTMENTS });
    } finally {
      await client.$disconnect();
    }
    const enqueued = await tys(['enqueue', 'lots', '--all']);
    expect(enqueued.code).toBe(0);
    const runId = /^run (run-\S+):/m.exec(enqueued.stdout)![1]!;
    await until('the run to be under way', async () => (await runStatus(runId)).completed > 0, 60_000, 200);

    const stopping = Date.now();
    await compose(['stop', 'worker'], 120_000);
    figures['workers stopped'] = `${seconds(stopping)} s (grace period 90 s)`;
    const workers = await containers('worker');
    expect(workers).toHaveLength(3);
    for (const id of workers) {
      expect(await state(id)).toMatchObject({ Status: 'exited', ExitCode: 0 });
      expect(await docker(['logs', id])).toContain('"msg":"workers stopped"');
    }
    const halfway = await runStatus(runId);
    expect(halfway.finishedAt).toBeNull();
    expect(halfway.completed).toBeLessThan(MORE_INVESTMENTS);

    const waitingBefore = JSON.parse((await tys(['status', '--json'])).stdout).families.lots.waiting as number;
    expect(waitingBefore).toBeGreaterThan(0);
    await compose(['restart', 'redis']);
    await until('Redis to be healthy again', async () => (await state((await containers('redis'))[0]!)).Health?.Status === 'healthy', 60_000, 500);
    expect(JSON.parse((await tys(['status', '--json'])).stdout).families.lots.waiting).toBe(waitingBefore);

    await compose(['start', 'worker']);
    await until('the run to finish', async () => (await runStatus(runId)).finishedAt !== null, 300_000, 1_000);
    expect(await runStatus(runId)).toMatchObject({ status: 'COMPLETED', total: MORE_INVESTMENTS, completed: MORE_INVESTMENTS, failed: 0 });
    const verify = await tys(['verify', 'lots']);
    expect(verify.stdout).toMatch(new RegExp(`verify lots: OK, ${DEMO_INVESTMENTS + MORE_INVESTMENTS} rows checked`));
    expect(verify.code).toBe(0);
  }, 600_000);
});

/**
 * The resolved configuration without its published ports: on the host's
 * network a container's ports are the host's already, and docker-compose 1
 * refuses the two together, with no way for an override file to take list
 * entries away. Its output is regular: a service's keys sit 4 spaces in, a
 * list's entries at the same depth or deeper.
 */
function withoutPublishedPorts(config: string): string {
  const kept: string[] = [];
  let skipping = false;
  for (const line of config.split('\n')) {
    if (line === '    ports:') skipping = true;
    else if (skipping && !/^( {4}- | {6,})/.test(line)) skipping = false;
    if (!skipping) kept.push(line);
  }
  return kept.join('\n');
}

interface RunJson {
  status: string;
  total: number;
  completed: number;
  failed: number;
  startedAt: string;
  finishedAt: string | null;
}

interface PromAnswer {
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}
