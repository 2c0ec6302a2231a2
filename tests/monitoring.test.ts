import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../src/project-root.js';
import { seedMvp } from '../src/demo/seed.js';
import { newRunId } from '../src/fleet/runs/store.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { startDashboard } from './support/dashboard.js';
import { testFleet } from './support/fleet.js';
import { writeLegacyRows } from './support/legacy.js';
import { killOnExit, until } from './support/processes.js';
import { freePort } from './support/redis-server.js';

const run = promisify(execFile);
const RULES = path.join(PROJECT_ROOT, 'monitoring', 'prometheus', 'alerts.yml');
const RULE_TESTS = path.join(PROJECT_ROOT, 'monitoring', 'prometheus', 'alerts.test.yml');
const TOKEN = 'prometheus-scrape-token-0123456789';

describe('alert rules', () => {
  it('pass promtool check rules, and every alert passes its unit tests (firing and not firing)', async () => {
    const checked = await run('promtool', ['check', 'rules', RULES]);
    expect(checked.stdout).toContain('SUCCESS: 7 rules found');
    const tested = await run('promtool', ['test', 'rules', RULE_TESTS]);
    expect(tested.stdout).toContain('SUCCESS');
    // Each alert has a test case that makes it fire.
    const alerts = [...readFileSync(RULES, 'utf8').matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    expect(alerts).toHaveLength(7);
    const testText = readFileSync(RULE_TESTS, 'utf8');
    for (const alert of alerts) expect(testText, alert).toMatch(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`));
  });
});

interface PromAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

describe('a real Prometheus scraping the dashboard', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function startPrometheus(target: string): Promise<string> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tys-prometheus-'));
    const port = await freePort();
    writeFileSync(
      path.join(dir, 'prometheus.yml'),
      JSON.stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [RULES],
        scrape_configs: [
          { job_name: 'tys', metrics_path: '/metrics', authorization: { type: 'Bearer', credentials: TOKEN }, static_configs: [{ targets: [target] }] },
        ],
      }),
    );
    const child: ChildProcess = killOnExit(
      spawn(
        'prometheus',
        [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
        { stdio: 'ignore' },
      ),
    );
    cleanups.push(async () => {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      rmSync(dir, { recursive: true, force: true });
    });
    const url = `http://127.0.0.1:${port}`;
    await until('Prometheus to be ready', async () => (await fetch(`${url}/-/ready`).catch(() => null))?.ok === true, 30_000);
    return url;
  }

  it('fires IntegrityViolations and MigrationRunTooLong on planted faults, and resolves them once they are fixed', async () => {
    const db: TestDatabase = await createTestDatabase();
    await seedMvp(db.prisma, { investments: 10 });
    const fleet = await testFleet(db);
    cleanups.push(async () => {
      await fleet.close();
      await db.drop();
    });
    // A constraints run has ended; a lots run has been going for 20 minutes.
    const finished = new Date(Date.now() - 60_000);
    await db.prisma.fleetRun.create({
      data: {
        id: newRunId(),
        family: 'constraints',
        scope: { kind: 'all' },
        status: 'COMPLETED',
        startedAt: new Date(finished.getTime() - 5_000),
        finishedAt: finished,
      },
    });
    const longRun = newRunId(new Date(Date.now() - 20 * 60_000));
    await db.prisma.fleetRun.create({
      data: { id: longRun, family: 'lots', scope: { kind: 'all' }, status: 'RUNNING', startedAt: new Date(Date.now() - 20 * 60_000) },
    });
    // The application writes a row the phase 4 constraint forbids (as the MVP could).
    const broken = (await db.prisma.investment.findFirstOrThrow({ select: { id: true } })).id;
    await writeLegacyRows(db.prisma, [`UPDATE "Investment" SET "totalQuantity" = -5 WHERE id = '${broken}'`]);

    const dashboard = await startDashboard(fleet.config, { metricsToken: TOKEN, auditRefreshMs: 1_000 });
    cleanups.push(() => dashboard.close());
    const prometheus = await startPrometheus(new URL(dashboard.url).host);
    const alerts = async (): Promise<PromAlert[]> =>
      ((await (await fetch(`${prometheus}/api/v1/alerts`)).json()) as { data: { alerts: PromAlert[] } }).data.alerts;
    const firing = async (name: string) => (await alerts()).filter((a) => a.labels.alertname === name && a.state === 'firing');

    await until(
      'both alerts to fire',
      async () => (await firing('IntegrityViolations')).length > 0 && (await firing('MigrationRunTooLong')).length > 0,
      60_000,
      500,
    );
    expect((await firing('IntegrityViolations')).map((a) => a.labels.check)).toEqual(['Investment_totalQuantity_positive (Investment)']);
    expect((await firing('MigrationRunTooLong')).map((a) => a.labels.family)).toEqual(['lots']);

    // Every query of the Grafana dashboard parses and runs against this Prometheus.
    const grafana = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'monitoring', 'grafana', 'dashboards', 'tys.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const expressions = grafana.panels.flatMap((panel) => panel.targets.map((target) => ({ panel: panel.title, expr: target.expr })));
    expect(expressions.length).toBeGreaterThanOrEqual(10);
    for (const { panel, expr } of expressions) {
      const answer = (await (await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as { status: string; error?: string };
      expect(answer, `${panel}: ${expr}`).toMatchObject({ status: 'success' });
    }
    const violations = (await (
      await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(expressions.find((e) => e.panel.startsWith('Integrity'))!.expr)}`)
    ).json()) as {
      data: { result: { metric: { check: string }; value: [number, string] }[] };
    };
    expect(violations.data.result.find((r) => r.metric.check === 'Investment_totalQuantity_positive (Investment)')?.value[1]).toBe('1');

    await db.prisma.investment.update({ where: { id: broken }, data: { totalQuantity: '1' } });
    await db.prisma.fleetRun.update({ where: { id: longRun }, data: { status: 'CANCELLED', finishedAt: new Date() } });
    await until(
      'both alerts to resolve',
      async () => (await alerts()).filter((a) => ['IntegrityViolations', 'MigrationRunTooLong'].includes(a.labels.alertname!)).length === 0,
      60_000,
      500,
    );
  }, 150_000);
});

/** One service's block of `docker-compose config` output. */
function service(config: string, name: string): string {
  const start = config.indexOf(`\n  ${name}:\n`);
  if (start === -1) throw new Error(`no service ${name} in the compose configuration`);
  const rest = config.slice(start + 1);
  const end = rest.slice(1).search(/\n {0,2}[a-z-]+:\n/);
  return end === -1 ? rest : rest.slice(0, end + 1);
}

describe('docker-compose.yml', () => {
  const compose = async (envFile: string) => {
    const { stdout } = await run('docker-compose', [
      '--project-directory',
      PROJECT_ROOT,
      '-f',
      path.join(PROJECT_ROOT, 'docker-compose.yml'),
      '--env-file',
      envFile,
      'config',
    ]);
    return stdout;
  };

  it('is valid with the example environment, which reaches every service that needs it', async () => {
    const config = await compose(path.join(PROJECT_ROOT, '.env.example'));
    expect(service(config, 'worker')).toContain('ALPHA_VANTAGE_API_KEY: change-me\n');
    // Longer than the worker's own 60 s shutdown deadline, and restarted when it dies.
    expect(service(config, 'worker')).toMatch(/stop_grace_period: (90s|1m30s)/);
    expect(service(config, 'worker')).toContain('restart: unless-stopped');
    // On the one host it shares with Postgres, the worker yields the CPU: by its container's share, which niceness cannot lower.
    expect(service(config, 'worker')).toContain('cpu_shares: 128\n');
    expect(service(config, 'worker')).not.toContain('TYS_NICE');
    expect(service(config, 'dashboard')).toContain('DASHBOARD_USER: ops\n');
    expect(service(config, 'dashboard')).toContain('METRICS_TOKEN: change-me-a-token-of-24-characters-or-more\n');
    expect(service(config, 'dashboard')).toMatch(/healthcheck:[\s\S]*\/healthz/);
    expect(service(config, 'prometheus')).toContain('METRICS_TOKEN: change-me-a-token-of-24-characters-or-more\n');
    expect(service(config, 'schedule')).toMatch(/command:\n\s+- schedule\n\s+- apply/);
    for (const name of ['migrate', 'worker', 'dashboard', 'schedule']) {
      expect(service(config, name), name).toContain('DATABASE_URL: postgresql://postgres:change-me-postgres@postgres:5432/tys\n');
    }
    expect(config).toMatch(/GF_SECURITY_ADMIN_PASSWORD: change-me-grafana/);
  });

  it('is valid without any environment: Postgres and Redis start without secrets', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tys-compose-'));
    try {
      writeFileSync(path.join(dir, 'empty.env'), '');
      const config = await compose(path.join(dir, 'empty.env'));
      expect(config).toMatch(/POSTGRES_PASSWORD: postgres/);
      expect(config).toMatch(/--maxmemory-policy\n\s+- noeviction/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has a Prometheus configuration that promtool accepts', async () => {
    const { stdout } = await run('promtool', ['check', 'config', '--syntax-only', path.join(PROJECT_ROOT, 'monitoring', 'prometheus', 'prometheus.yml')]);
    expect(stdout).toContain('SUCCESS');
  });
});
