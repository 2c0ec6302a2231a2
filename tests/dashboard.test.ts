import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { lotsFamily } from '../src/families/lots.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { ADMIN, basic, startDashboard, VIEWER } from './support/dashboard.js';
import { testFleet } from './support/fleet.js';

const INVESTMENTS = 400; // every 100th has a bad quantity: 4 failed lot jobs
const SCREENSHOTS = path.join(process.cwd(), 'tests', '.artifacts');

describe('dashboard in a real browser', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let dashboard: Awaited<ReturnType<typeof startDashboard>>;
  let browser: Browser;
  let runId: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: INVESTMENTS, badQuantityRate: 0.01 });
    fleet = await testFleet(db);
    fleet.startWorkers([lotsFamily]);
    runId = (await fleet.enqueue(lotsFamily)).runId!;
    await fleet.waitForRun(runId);
    dashboard = await startDashboard(fleet.config, { metricsToken: 'scrape-token-123' });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
    await fleet?.close();
    await db?.drop();
  });

  it('answers 401 without credentials, and to wrong ones', async () => {
    // The browser itself, with no credentials: the server answers 401 and asks for Basic auth.
    const context = await browser.newContext();
    const page = await context.newPage();
    const seen = page.waitForResponse(`${dashboard.url}/board`);
    await page.goto(`${dashboard.url}/board`).catch(() => undefined); // headless Chromium cannot show the login prompt
    const response = await seen;
    expect(response.status()).toBe(401);
    expect(response.headers()['www-authenticate']).toMatch(/^Basic/);
    await context.close();
    const wrong = await fetch(`${dashboard.url}/board`, { headers: { authorization: basic({ ...ADMIN, password: 'guess' }) } });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toBe('{"error":"authentication required"}');
  });

  it('shows each family queue with its counts, and a failed job with its reason', async () => {
    const context = await browser.newContext({ httpCredentials: { username: ADMIN.user, password: ADMIN.password } });
    const page = await context.newPage();
    await page.goto(`${dashboard.url}/board`);
    await expect.poll(() => page.getByText('lots', { exact: true }).count(), { timeout: 15_000 }).toBeGreaterThan(0);
    await expect.poll(() => page.getByText('constraints', { exact: true }).count()).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-overview.png'), fullPage: true });

    const api = await (await context.request.get(`${dashboard.url}/board/api/queues`)).json();
    const lots = api.queues.find((q: { name: string }) => q.name === 'lots');
    expect(lots.counts.failed).toBe(INVESTMENTS / 100);

    await page.goto(`${dashboard.url}/board/queue/lots?status=failed`);
    await expect.poll(() => page.getByText(/run the constraints family first/).count(), { timeout: 15_000 }).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-failed.png'), fullPage: true });

    await page.goto(`${dashboard.url}/runs`);
    await expect(page.locator(`tr[data-run="${runId}"] .status`).textContent()).resolves.toBe('FAILED');
    await context.close();
  });

  it('lets the read-only account see everything and change nothing, enforced by the server', async () => {
    const failed = await fleet.context.queue(lotsFamily).getFailed(0, 0);
    const jobId = failed[0]!.id!;
    const viewer = { authorization: basic(VIEWER) };
    expect((await fetch(`${dashboard.url}/board/api/queues`, { headers: viewer })).status).toBe(200);
    for (const [method, route] of [
      ['PUT', `/board/api/queues/lots/${jobId}/retry`],
      ['PUT', '/board/api/queues/lots/retry/failed'],
      ['DELETE', `/board/api/queues/lots/${jobId}`],
      ['PUT', '/board/api/queues/lots/clean/failed'],
      ['PUT', '/board/api/queues/pause'],
    ] as const) {
      const response = await fetch(`${dashboard.url}${route}`, { method, headers: viewer });
      expect(response.status, `${method} ${route}`).toBe(403);
    }
    expect(await fleet.context.queue(lotsFamily).getFailedCount()).toBe(INVESTMENTS / 100);
    expect(await (await fleet.context.queue(lotsFamily).getJob(jobId))!.getState()).toBe('failed');

    // The administrator can.
    const retry = await fetch(`${dashboard.url}/board/api/queues/lots/${jobId}/retry`, { method: 'PUT', headers: { authorization: basic(ADMIN) } });
    expect(retry.status).toBe(204);
  });

  it('serves health without authentication and security headers everywhere', async () => {
    const health = await fetch(`${dashboard.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', redis: 'up', postgres: 'up' });
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
    expect(health.headers.get('x-frame-options')).toBe('DENY');
    expect(health.headers.get('x-powered-by')).toBeNull();
  });

  it('exposes Prometheus metrics after a run, to the dashboard accounts or the scrape token', async () => {
    expect((await fetch(`${dashboard.url}/metrics`)).status).toBe(401);
    const response = await fetch(`${dashboard.url}/metrics`, { headers: { authorization: 'Bearer scrape-token-123' } });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('tys_queue_jobs{family="lots",state="failed"} ');
    expect(text).toContain(`tys_jobs_total{family="lots",outcome="completed"} ${INVESTMENTS - INVESTMENTS / 100}`);
    expect(text).toContain(`tys_jobs_total{family="lots",outcome="failed"} ${INVESTMENTS / 100}`);
    expect(text).toContain('tys_runs{family="lots",status="FAILED"} 1');
    expect(text).toMatch(new RegExp(`tys_job_duration_seconds_count\\{family="lots"\\} ${INVESTMENTS}\\b`));
    expect(text).toContain('tys_job_duration_seconds_bucket{family="lots",le="+Inf"}');
    expect(text).toContain('# TYPE tys_job_duration_seconds histogram');
    const other = await fetch(`${dashboard.url}/board`, { headers: { authorization: 'Bearer scrape-token-123' } });
    expect(other.status).toBe(401);
  });

  it('limits failed logins per client', async () => {
    const own = await startDashboard(fleet.config, { accounts: [ADMIN] });
    try {
      const bad = { authorization: basic({ ...ADMIN, password: 'nope nope' }) };
      const statuses: number[] = [];
      for (let i = 0; i < 12; i += 1) statuses.push((await fetch(`${own.url}/board`, { headers: bad })).status);
      expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
      expect(statuses.slice(10)).toEqual([429, 429]);
      expect((await fetch(`${own.url}/board`, { headers: { authorization: basic(ADMIN) } })).status).toBe(429);
    } finally {
      await own.close();
    }
  });
});
