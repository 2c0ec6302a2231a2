import { mkdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { metadataFamily } from '../src/families/metadata.js';
import { controlRun } from '../src/fleet/runs/control.js';
import { JobOutcomes } from '../src/fleet/runs/outcomes.js';
import { RunProgress } from '../src/fleet/runs/progress.js';
import { lotsFamily } from '../src/families/lots.js';
import { throttleKey } from '../src/fleet/db-health.js';
import { FailedLogins } from '../dashboard/auth.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { ADMIN, basic, startDashboard, VIEWER } from './support/dashboard.js';
import { testFleet } from './support/fleet.js';
import { until } from './support/processes.js';

/** A request with a Host header of our choosing (fetch always sends the URL's own). */
function statusWithHost(base: string, method: string, route: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${base}${route}`, { method, headers: { host, origin: `http://${host}` } }, (response) => {
      response.resume();
      resolve(response.statusCode!);
    });
    request.on('error', reject);
    request.end();
  });
}

const INVESTMENTS = 400; // every 100th has a bad quantity: 4 failed lot jobs
const SCRAPE_TOKEN = 'scrape-token-0123456789abcdef';

/** A lots run over `investments` rows of which every 100th fails, its workers, and a dashboard on them. */
async function failedLotsRun(investments: number) {
  const db = await createTestDatabase();
  await seedMvp(db.prisma, { investments, badQuantityRate: 0.01 });
  const fleet = await testFleet(db);
  fleet.startWorkers([lotsFamily]);
  const runId = (await fleet.enqueue(lotsFamily)).runId!;
  await fleet.waitForRun(runId);
  // A run counts an outcome before BullMQ files the job as failed.
  await until('the failed jobs to be filed', async () => (await fleet.context.queue(lotsFamily).getFailedCount()) === investments / 100, 10_000);
  const dashboard = await startDashboard(fleet.config, { metricsToken: SCRAPE_TOKEN });
  return {
    db,
    fleet,
    runId,
    dashboard,
    async close() {
      await dashboard.close();
      await fleet.close();
      await db.drop();
    },
  };
}
const SCREENSHOTS = path.join(process.cwd(), 'tests', '.artifacts');

/** The reason the failed jobs of the run share, as the runs page counts it. */
async function reasonOf(db: TestDatabase, runId: string): Promise<string> {
  const [top] = await new JobOutcomes(db.prisma).countByReason({ runId });
  return top!.reason;
}

// One failed lots run made before the tests; a test that retries one of its failed jobs waits until it has failed
// again, and the test that repairs the run works on a run of its own.
describe('dashboard in a real browser', () => {
  let shared: Awaited<ReturnType<typeof failedLotsRun>>;
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let dashboard: Awaited<ReturnType<typeof startDashboard>>;
  let browser: Browser;
  let runId: string;

  /** Retries a failed job whose row is still broken, as the administrator; it fails again. */
  const retryUntilFailedAgain = async (jobId: string, headers: Record<string, string>) => {
    const response = await fetch(`${dashboard.url}/board/api/queues/lots/${jobId}/retry`, {
      method: 'PUT',
      headers: { authorization: basic(ADMIN), ...headers },
    });
    expect(response.status).toBe(204);
    await until('the retried job to fail again', async () => (await (await fleet.context.queue(lotsFamily).getJob(jobId))!.getState()) === 'failed', 10_000);
  };

  beforeAll(async () => {
    shared = await failedLotsRun(INVESTMENTS);
    ({ db, fleet, dashboard, runId } = shared);
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await shared?.close();
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
    // No cache between the browser and the dashboard keeps a refusal, nor a page behind the login.
    expect(wrong.headers.get('cache-control')).toBe('no-store');
    const viewerWrite = await fetch(`${dashboard.url}/board/api/queues/lots/pause`, {
      method: 'PUT',
      headers: { authorization: basic(VIEWER), origin: dashboard.url },
    });
    expect(viewerWrite.status).toBe(403);
    expect(viewerWrite.headers.get('cache-control')).toBe('no-store');
  });

  it('keeps every view of a queue answering while it holds a job whose fields BullMQ cannot read', async () => {
    const metadata = fleet.context.queue(metadataFamily);
    await metadata.add('metadata', { runId: 'run-20260101T000000Z-abcdef', key: 'ABC' }, { jobId: 'unreadable-opts' });
    await fleet.context.redis.hset(`${fleet.prefix}:metadata:unreadable-opts`, 'opts', '{not json', 'progress', '{nor this');
    try {
      for (const status of ['latest', 'waiting', 'active', 'failed']) {
        const view = await fetch(`${dashboard.url}/board/api/queues?activeQueue=metadata&status=${status}&page=1&jobsPerPage=10`, {
          headers: { authorization: basic(ADMIN) },
        });
        expect(view.status, status).toBe(200);
      }
      const job = await fetch(`${dashboard.url}/board/api/queues/metadata/unreadable-opts`, { headers: { authorization: basic(ADMIN) } });
      expect(job.status).toBe(200);
      expect(await job.text()).toContain('its options are not JSON');
    } finally {
      await metadata.remove('unreadable-opts');
    }
  });

  it('answers a URL that does not decode with 400 and one line, no stack trace', async () => {
    const malformed = await fetch(`${dashboard.url}/runs/%ZZ/pause`, { method: 'POST', headers: { authorization: basic(ADMIN), origin: dashboard.url } });
    expect(malformed.status).toBe(400);
    expect(await malformed.text()).toBe('{"error":"bad request"}');
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
      const response = await fetch(`${dashboard.url}${route}`, { method, headers: { ...viewer, origin: dashboard.url } });
      expect(response.status, `${method} ${route}`).toBe(403);
    }
    expect(await fleet.context.queue(lotsFamily).getFailedCount()).toBe(INVESTMENTS / 100);
    expect(await (await fleet.context.queue(lotsFamily).getJob(jobId))!.getState()).toBe('failed');

    // The administrator can.
    await retryUntilFailedAgain(jobId, { origin: dashboard.url });
  });

  it('serves health without authentication and security headers everywhere', async () => {
    const health = await fetch(`${dashboard.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', redis: 'up', postgres: 'up' });
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
    expect(health.headers.get('x-frame-options')).toBe('DENY');
    expect(health.headers.get('x-powered-by')).toBeNull();
    const board = await fetch(`${dashboard.url}/board/api/queues`, { headers: { authorization: basic(ADMIN) } });
    expect(board.status).toBe(200);
    expect(board.headers.get('x-powered-by')).toBeNull();
    expect(board.headers.get('cache-control')).toBe('no-store');
    expect(board.headers.get('content-security-policy')).toMatch(/script-src 'self';/);
    expect(board.headers.get('content-security-policy')).not.toMatch(/script-src[^;]*unsafe-inline/);
  });

  it("refuses writes that another site makes with the operator's credentials", async () => {
    const failed = (await fleet.context.queue(lotsFamily).getFailed(0, 0))[0]!;
    const admin = { authorization: basic(ADMIN) };
    const routes: [string, string, string?][] = [
      ['POST', '/board/api/queues/lots/add', '{"name":"x","data":{}}'],
      ['PUT', `/board/api/queues/lots/${failed.id}/retry`],
      ['PUT', '/board/api/queues/notifications/pause'],
      ['DELETE', `/board/api/queues/lots/${failed.id}`],
      ['PATCH', '/board/api/queues/lots/clean/failed'],
    ];
    for (const [method, route, body] of routes) {
      const foreign: Record<string, string>[] = [
        { origin: 'https://evil.example' },
        { referer: 'https://evil.example/page' },
        {},
        { 'sec-fetch-site': 'cross-site' },
      ];
      for (const headers of foreign) {
        const response = await fetch(`${dashboard.url}${route}`, { method, body, headers: { ...admin, 'content-type': 'text/plain', ...headers } });
        expect(response.status, `${method} ${route} ${JSON.stringify(headers)}`).toBe(403);
      }
    }
    expect(await fleet.context.queue(lotsFamily).getJobCounts('waiting')).toEqual({ waiting: 0 });
    expect(await (await fleet.context.queue(lotsFamily).getJob(failed.id!))!.getState()).toBe('failed');
    // The dashboard's own page: the browser sends its Origin, or says same-origin.
    await retryUntilFailedAgain(failed.id!, { 'sec-fetch-site': 'same-origin' });
  });

  it('without authentication (--insecure) answers only to the loopback names', async () => {
    const local = await startDashboard(fleet.config, { insecure: true, accounts: [] });
    try {
      const port = new URL(local.url).port;
      expect(await statusWithHost(local.url, 'GET', '/api/runs', `127.0.0.1:${port}`)).toBe(200);
      expect(await statusWithHost(local.url, 'GET', '/api/runs', `localhost:${port}`)).toBe(200);
      for (const host of ['evil.attacker.example', `evil.attacker.example:${port}`]) {
        expect(await statusWithHost(local.url, 'PUT', '/board/api/queues/notifications/pause', host), host).toBe(421);
        expect(await statusWithHost(local.url, 'GET', '/api/runs', host), host).toBe(421);
      }
      expect(await fleet.context.queue(lotsFamily).isPaused()).toBe(false);
    } finally {
      await local.close();
    }
  });

  it('exposes Prometheus metrics after a run, to the dashboard accounts or the scrape token', async () => {
    expect((await fetch(`${dashboard.url}/metrics`)).status).toBe(401);
    const response = await fetch(`${dashboard.url}/metrics`, { headers: { authorization: `Bearer ${SCRAPE_TOKEN}` } });
    expect(response.status).toBe(200);
    let text = await response.text();
    expect(text).toContain('tys_queue_jobs{family="lots",state="failed"} ');
    // The workers add their counts to Redis once a second.
    const scrape = async () => (text = await (await fetch(`${dashboard.url}/metrics`, { headers: { authorization: `Bearer ${SCRAPE_TOKEN}` } })).text());
    await expect.poll(scrape).toContain(`tys_jobs_total{family="lots",outcome="completed"} ${INVESTMENTS - INVESTMENTS / 100}`);
    // Every failed attempt counts: the run's own, and those of the jobs the two retry tests sent back without a fix.
    const failures = Number(/^tys_jobs_total\{family="lots",outcome="failed"\} (\d+)$/m.exec(text)![1]);
    expect(failures).toBeGreaterThanOrEqual(INVESTMENTS / 100);
    expect(failures).toBeLessThanOrEqual(INVESTMENTS / 100 + 2);
    expect(text).toContain('# TYPE tys_jobs_total counter');
    expect(text).toMatch(/^tys_run_last_duration_seconds\{family="lots"\} \d/m);
    expect(text).toMatch(/^tys_run_last_ended_timestamp_seconds\{family="lots"\} \d{10}/m);
    expect(text).toMatch(/^tys_run_oldest_running_seconds\{family="lots"\} 0$/m);
    expect(text).toMatch(/^tys_workers\{family="lots"\} \d+$/m);
    // The constraints family's audit, per phase 4 constraint: the investments planted to make lots fail break one.
    await expect
      .poll(scrape, { timeout: 10_000 })
      .toContain(`tys_audit_findings{family="constraints",check="Investment_totalQuantity_positive (Investment)"} ${INVESTMENTS / 100}`);
    expect(text).toContain('tys_audit_findings{family="constraints",check="Investment_currentPrice_positive (Investment)"} 0');
    // What tys verify lots lists: the investments the failed jobs left without lots.
    expect(text).toContain(`tys_verify_problems{family="lots"} ${INVESTMENTS / 100}`);
    expect(text).toContain('tys_runs{family="lots",status="FAILED"} 1');
    // Every job once, and the failed ones the other tests retried once more.
    const durations = Number(/tys_job_duration_seconds_count\{family="lots"\} (\d+)/.exec(text)![1]);
    expect(durations).toBeGreaterThanOrEqual(INVESTMENTS);
    expect(durations).toBeLessThanOrEqual(INVESTMENTS + INVESTMENTS / 100);
    expect(text).toContain('tys_job_duration_seconds_bucket{family="lots",le="+Inf"}');
    expect(text).toContain('# TYPE tys_job_duration_seconds histogram');
    const other = await fetch(`${dashboard.url}/board`, { headers: { authorization: `Bearer ${SCRAPE_TOKEN}` } });
    expect(other.status).toBe(401);
  });

  it('delays failed logins per client and user: one attacker cannot lock out anyone else', async () => {
    const own = await startDashboard(fleet.config, { accounts: [ADMIN, VIEWER], trustProxy: 'loopback' });
    try {
      const attempt = (account: typeof ADMIN, forwardedFor: string) =>
        fetch(`${own.url}/board`, { headers: { authorization: basic(account), 'x-forwarded-for': forwardedFor } }).then((r) => r.status);
      const wrong = { ...ADMIN, password: 'nope nope' };
      const statuses: number[] = [];
      for (let i = 0; i < 7; i += 1) statuses.push(await attempt(wrong, '203.0.113.7'));
      expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 429]);
      // The attacker's address and user wait; the real operator elsewhere, and another user, do not.
      expect(await attempt(ADMIN, '203.0.113.7')).toBe(429);
      expect(await attempt(ADMIN, '198.51.100.20')).toBe(200);
      expect(await attempt(VIEWER, '203.0.113.7')).toBe(200);
      // A bearer token is guessed under the same rules.
      for (let i = 0; i < 6; i += 1) await fetch(`${own.url}/metrics`, { headers: { authorization: 'Bearer guess', 'x-forwarded-for': '203.0.113.9' } });
      expect((await fetch(`${own.url}/metrics`, { headers: { authorization: 'Bearer guess', 'x-forwarded-for': '203.0.113.9' } })).status).toBe(429);
    } finally {
      await own.close();
    }
  });

  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    const own = await startDashboard(fleet.config, { accounts: [ADMIN] });
    try {
      const wrong = { authorization: basic({ ...ADMIN, password: 'nope nope' }) };
      const statuses: number[] = [];
      for (let i = 0; i < 7; i += 1) statuses.push((await fetch(`${own.url}/board`, { headers: { ...wrong, 'x-forwarded-for': `10.0.0.${i}` } })).status);
      expect(statuses.at(-1)).toBe(429);
    } finally {
      await own.close();
    }
  });

  it("searches failed and skipped jobs by a row's id and by words of a reason, and shows a run's failures by reason", async () => {
    const notes = await db.prisma.fleetJobOutcome.findMany({ where: { runId }, orderBy: { key: 'asc' } });
    expect(notes.length).toBe(INVESTMENTS / 100);
    const context = await browser.newContext({ httpCredentials: { username: VIEWER.user, password: VIEWER.password } });
    const page = await context.newPage();
    const search = async (text: string) => {
      await page.goto(`${dashboard.url}/runs`);
      await page.fill('#search input[name=q]', text);
      await Promise.all([page.waitForURL(/\/runs\?q=/), page.click('#search button')]);
      return page.locator('#found tr.found').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-key')));
    };
    expect(await search(notes[0]!.key)).toEqual([notes[0]!.key]);
    expect((await search('CONSTRAINTS family')).sort()).toEqual(notes.map((note) => note.key));
    expect(await page.locator('input[name=q]').inputValue()).toBe('CONSTRAINTS family');
    await search('no reason says this');
    expect(await page.locator('p#found').textContent()).toContain('no failed or skipped job');
    // The run's failures, counted by reason (its rows folded into <key>).
    const reason = page.locator(`tr[data-run="${runId}"] dd.reason`);
    expect(await reason.count()).toBe(1);
    expect(await reason.textContent()).toMatch(/^investment <key> breaks .*run the constraints family first/);
    expect(await page.locator(`tr[data-run="${runId}"] dd.reason`).evaluate((dd) => dd.previousElementSibling!.textContent)).toBe(`${notes.length} failed`);
    await context.close();
  });

  it('a failed run whose jobs are retried from the board and then succeed turns COMPLETED with the right counts', async () => {
    const own = await failedLotsRun(200);
    try {
      const { db, fleet, dashboard, runId } = own;
      const failed = await fleet.context.queue(lotsFamily).getFailed();
      expect(failed).toHaveLength(2);
      const notes = () => db.prisma.fleetJobOutcome.findMany({ where: { runId }, select: { key: true, outcome: true } });
      expect((await notes()).map((note) => note.key).sort()).toEqual(failed.map((job) => job.data.key).sort());
      // The person fixes the rows the jobs failed on, then retries them from the board.
      await db.prisma.investment.updateMany({ where: { id: { in: failed.map((job) => job.data.key) } }, data: { totalQuantity: '1' } });
      const retry = await fetch(`${dashboard.url}/board/api/queues/lots/retry/failed`, {
        method: 'PUT',
        headers: { authorization: basic(ADMIN), origin: dashboard.url },
      });
      expect(retry.ok).toBe(true);
      await until('the run to be revised', async () => (await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).status === 'COMPLETED', 30_000);
      expect(await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({ completed: 200, failed: 0, skipped: 0 });
      expect(await db.prisma.taxLot.count()).toBe(200);
      // Failures that a retry turned into successes leave no note behind.
      expect(await notes()).toEqual([]);
    } finally {
      await own.close();
    }
  });

  it("retries a run's failed jobs by their reason from the runs page, after a confirmation that shows the count", async () => {
    const own = await failedLotsRun(200);
    try {
      const { db, dashboard, runId } = own;
      const failed = (await db.prisma.fleetJobOutcome.findMany({ where: { runId }, select: { key: true } })).map((note) => note.key).sort();
      expect(failed).toHaveLength(2);
      await db.prisma.investment.updateMany({ where: { id: { in: failed } }, data: { totalQuantity: '1' } });
      const runsBefore = await db.prisma.fleetRun.count();

      const context = await browser.newContext({ httpCredentials: { username: ADMIN.user, password: ADMIN.password } });
      const page = await context.newPage();
      await page.goto(`${dashboard.url}/runs`);
      const row = page.locator(`tr[data-run="${runId}"]`);
      await row.locator('summary').click();
      await Promise.all([page.waitForURL(`${dashboard.url}/runs/${runId}/retry-matching`), row.locator('form.retry-reason button').click()]);
      // The confirmation: how many, why, and which rows; nothing done yet.
      expect(await page.locator('#count').textContent()).toBe('2');
      expect(await page.locator('body').textContent()).toMatch(/investment <key> breaks Investment_totalQuantity_positive/);
      expect((await page.locator('code').allTextContents()).sort()).toEqual(failed);
      expect(await db.prisma.fleetRun.count()).toBe(runsBefore);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'retry-confirm.png'), fullPage: true });

      await page.fill('#confirm input[name=note]', 'quantities fixed');
      await Promise.all([page.waitForURL(/\/runs#run-/), page.click('#confirm button')]);
      const newRunId = new URL(page.url()).hash.slice(1);
      await until('the retry to complete', async () => (await db.prisma.fleetRun.findUnique({ where: { id: newRunId } }))?.status === 'COMPLETED', 30_000);
      const newRun = await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: newRunId } });
      expect(newRun).toMatchObject({ total: 2, completed: 2, failed: 0 });
      expect(newRun.origin).toBe(`dashboard ${ADMIN.user}: retry of the failed jobs of ${runId} whose reason holds "${await reasonOf(db, runId)}"`);
      expect(await db.prisma.taxLot.count({ where: { investmentId: { in: failed } } })).toBe(2);
      expect(await db.prisma.fleetJobOutcome.count({ where: { runId, retriedBy: newRunId } })).toBe(2);
      await page.goto(`${dashboard.url}/runs`);
      expect(await page.locator(`tr[data-run="${runId}"] dd.retry`).textContent()).toMatch(
        new RegExp(` by dashboard ${ADMIN.user}: 2 job\\(s\\) taken up by ${newRunId} \\(quantities fixed\\)$`),
      );

      // The same confirmation sent again finds nothing left to take up, and makes no run.
      const again = await fetch(`${dashboard.url}/runs/${runId}/retry-matching`, {
        method: 'POST',
        headers: { authorization: basic(ADMIN), origin: dashboard.url, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ outcome: 'failed', reason: await reasonOf(db, runId), confirm: '2' }),
      });
      expect(await again.text()).toContain('Nothing to retry');
      expect(await db.prisma.fleetRun.count()).toBe(runsBefore + 1);
      // The read-only account sees no retry, and the server refuses it one.
      const viewer = await fetch(`${dashboard.url}/runs/${runId}/retry-matching`, {
        method: 'POST',
        headers: { authorization: basic(VIEWER), origin: dashboard.url, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ outcome: 'failed', reason: 'x', confirm: '2' }),
      });
      expect(viewer.status).toBe(403);
      await context.close();
    } finally {
      await own.close();
    }
  });

  it('lists a queue holding a job whose data is not JSON, instead of failing the page', async () => {
    const queue = fleet.context.queue(lotsFamily);
    const job = await queue.add(lotsFamily.name, { runId, key: 'corrupted' }, { jobId: 'corrupted-data', delay: 60_000 });
    try {
      await fleet.context.redis.hset(`${fleet.prefix}:lots:${job.id}`, 'data', '{broken');
      const response = await fetch(`${dashboard.url}/board/api/queues?activeQueue=lots&status=delayed&page=1`, { headers: { authorization: basic(ADMIN) } });
      expect(response.status).toBe(200);
      const lots = (await response.json()).queues.find((q: { name: string }) => q.name === 'lots');
      expect(lots.jobs.map((j: { id: string }) => j.id)).toContain(job.id);
    } finally {
      await queue.remove(job.id!);
    }
  });

  it('pauses and resumes a run with the runs page buttons; the read-only account cannot (403 from the server)', async () => {
    // No worker takes metadata jobs here: the run stays RUNNING until acted on.
    const { runId: waiting, added } = await fleet.enqueue(metadataFamily);
    expect(added).toBeGreaterThan(0);
    const context = await browser.newContext({ httpCredentials: { username: ADMIN.user, password: ADMIN.password } });
    const page = await context.newPage();
    await page.goto(`${dashboard.url}/runs`);
    const row = page.locator(`tr[data-run="${waiting}"]`);
    await expect(row.locator('.status').textContent()).resolves.toBe('RUNNING');
    await expect(row.locator('.origin').textContent()).resolves.toBe('');
    await row.locator('input.note').fill('the database is busy');
    await row.locator('button.pause').click();
    await page.waitForURL(`${dashboard.url}/runs`);
    await expect.poll(() => page.locator(`tr[data-run="${waiting}"] .status`).textContent()).toBe('PAUSED');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'runs-paused.png'), fullPage: true });
    await page.locator(`tr[data-run="${waiting}"] button.resume`).click();
    await page.waitForURL(`${dashboard.url}/runs`);
    await expect.poll(() => page.locator(`tr[data-run="${waiting}"] .status`).textContent()).toBe('RUNNING');
    // Each action is in the run's history, with the dashboard's user who took it.
    await expect(page.locator(`tr[data-run="${waiting}"] dd.pause`).textContent()).resolves.toMatch(
      / by dashboard operator: PAUS(ING|ED) \(the database is busy\)$/,
    );
    await expect(page.locator(`tr[data-run="${waiting}"] dd.resume`).textContent()).resolves.toMatch(/ by dashboard operator: RUNNING$/);
    // What the workers write while they hold back for the database.
    await fleet.context.redis.set(throttleKey(fleet.prefix, 'metadata'), '7 sessions waiting on locks (limit 5)', 'PX', 10_000);
    await page.goto(`${dashboard.url}/runs`);
    await expect(page.locator(`tr[data-run="${waiting}"] .throttle`).textContent()).resolves.toBe('throttled: 7 sessions waiting on locks (limit 5)');
    const scraped = await (await fetch(`${dashboard.url}/metrics`, { headers: { authorization: `Bearer ${SCRAPE_TOKEN}` } })).text();
    expect(scraped).toContain('tys_throttled{family="metadata"} 1');
    expect(scraped).toContain('tys_throttled{family="lots"} 0');
    await fleet.context.redis.del(throttleKey(fleet.prefix, 'metadata'));
    // What the workers' reconcilers sample as a run goes: 300 of 1,000 done over the last minute, faster lately.
    const runKey = `${fleet.prefix}:runs:${waiting}`;
    const counts = await fleet.context.redis.hmget(runKey, 'total', 'completed');
    await fleet.context.redis.hset(runKey, { total: 1_000, completed: 300 });
    const progress = new RunProgress(fleet.context.redis, fleet.prefix);
    const now = Date.now();
    for (let s = 120; s >= 5; s -= 5) await progress.record(waiting!, Math.round(300 * ((120 - s) / 115) ** 2), now - s * 1000);
    await page.goto(`${dashboard.url}/runs`);
    const moving = Number((await row.locator('.rate-value').textContent())!.replace('/s', ''));
    // The last minute's rate, not the average since the run started a few seconds ago.
    expect(moving).toBeGreaterThanOrEqual(3);
    expect(moving).toBeLessThanOrEqual(6);
    expect(Number(await row.locator('.eta').getAttribute('data-seconds'))).toBeCloseTo(700 / moving, -1);
    expect(await row.locator('svg.chart polyline').count()).toBe(1);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'runs-rate.png'), fullPage: true });
    await fleet.context.redis.hset(runKey, { total: counts[0]!, completed: counts[1]! });
    await context.close();

    const viewer = await browser.newContext({ httpCredentials: { username: VIEWER.user, password: VIEWER.password } });
    const viewerPage = await viewer.newPage();
    await viewerPage.goto(`${dashboard.url}/runs`);
    expect(await viewerPage.locator('button.pause').count()).toBe(0);
    await viewer.close();
    const refused = await fetch(`${dashboard.url}/runs/${waiting}/pause`, { method: 'POST', headers: { authorization: basic(VIEWER), origin: dashboard.url } });
    expect(refused.status).toBe(403);
    expect((await db.prisma.fleetRun.findUniqueOrThrow({ where: { id: waiting! } })).status).toBe('RUNNING');
  });

  it('fits the runs page into 1280 px, says times relatively, keeps red for failures, and updates a running run in place', async () => {
    // Runs as an afternoon of migration leaves them: many that ended well, one that found nothing, one running, one paused, one failed.
    const minute = 60_000;
    const startedAt = (i: number) => new Date(Date.now() - (i + 10) * 17 * minute);
    await db.prisma.fleetRun.createMany({
      data: Array.from({ length: 17 }, (_, i) => ({
        id: `run-${startedAt(i)
          .toISOString()
          .replace(/[-:]/g, '')
          .replace(/\.\d+Z$/, 'Z')}-${(0xa00000 + i).toString(16)}`,
        family: i % 2 ? 'corporate-actions' : 'lots',
        scope: { kind: 'all' },
        status: 'COMPLETED' as const,
        total: 100_000,
        completed: 99_000,
        skipped: 1_000,
        startedAt: startedAt(i),
        enqueuedAt: startedAt(i),
        finishedAt: new Date(startedAt(i).getTime() + 12 * minute),
        origin: 'schedule lots-follow-every-minute',
      })),
    });
    const empty = 'run-20260101T000000Z-0e0e0e';
    const emptyAt = startedAt(20);
    await db.prisma.fleetRun.create({
      data: { id: empty, family: 'lots', scope: { kind: 'changed' }, status: 'COMPLETED', startedAt: emptyAt, enqueuedAt: emptyAt, finishedAt: emptyAt },
    });
    const control = (id: string, action: 'pause') =>
      controlRun({ prisma: db.prisma, runs: fleet.context.runs, family: metadataFamily.name, queues: fleet.context.shardQueues(metadataFamily) }, id, action);
    const paused = (await fleet.enqueue(metadataFamily)).runId!;
    expect(await control(paused, 'pause')).toBe('PAUSED');
    // No worker takes metadata jobs here: this run stays RUNNING, its counters moved by hand below.
    const running = (await fleet.enqueue(metadataFamily)).runId!;
    expect((await fleet.context.runs.list({ limit: 50 })).length).toBeGreaterThanOrEqual(20);

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, httpCredentials: { username: ADMIN.user, password: ADMIN.password } });
    const page = await context.newPage();
    await page.goto(`${dashboard.url}/runs`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'runs.png') });
    const sideways = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(sideways).toBeLessThanOrEqual(0);

    // A relative time, and the exact UTC time on hover.
    const started = page.locator(`tr[data-run="${empty}"] td.started time`);
    expect(await started.textContent()).toMatch(/^\d+ (s|min|h|d) ago$/);
    expect(await started.getAttribute('title')).toBe(
      emptyAt
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, ' UTC'),
    );
    expect(await page.locator(`tr[data-run="${empty}"] td.progress`).textContent()).toBe('nothing to do');
    expect(await page.locator(`tr[data-run="${empty}"] td.time`).textContent()).toBe('took 0 s');
    // A short id, the whole one on hover.
    expect(await page.locator(`tr[data-run="${running}"] td.run-id code`).textContent()).toBe(running.slice(-6));
    expect(await page.locator(`tr[data-run="${running}"] td.run-id code`).getAttribute('title')).toBe(running);

    // Red says a job failed, nowhere else: not on a row whose failed count is 0.
    const redIn = (selector: string) =>
      page.locator(selector).evaluate(
        (row) =>
          [row, ...row.querySelectorAll('*')].filter((element) => {
            const [r, g, b] = getComputedStyle(element).color.match(/\d+/g)!.map(Number);
            return r! > 150 && g! < 80 && b! < 80;
          }).length,
      );
    expect(await page.locator(`tr[data-run="${empty}"] td.failed-count`).textContent()).toBe('0');
    expect(await redIn(`tr[data-run="${empty}"]`)).toBe(0);
    expect(await redIn(`tr[data-run="${running}"]`)).toBe(0);
    expect(await redIn(`tr[data-run="${runId}"] td.failed-count`)).toBeGreaterThan(0);

    // The running run's progress moves on the page without a new document.
    const origin = await page.evaluate(() => performance.timeOrigin);
    const progress = page.locator(`tr[data-run="${running}"] td.progress`);
    const before = await progress.textContent();
    const total = Number(await fleet.context.redis.hget(`${fleet.prefix}:runs:${running}`, 'total'));
    expect(total).toBeGreaterThan(1);
    await fleet.context.redis.hset(`${fleet.prefix}:runs:${running}`, { completed: total - 1 });
    await expect.poll(() => progress.textContent(), { timeout: 15_000 }).not.toBe(before);
    expect(await progress.textContent()).toContain(`${(total - 1).toLocaleString('en-US')}/${total.toLocaleString('en-US')}`);
    expect(await page.evaluate(() => performance.timeOrigin)).toBe(origin);
    expect(await page.locator(`tr[data-run="${paused}"] .status`).textContent()).toBe('PAUSED');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'runs-live.png') });
    // A phone held upright: the columns that matter, still no sideways scroll.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'runs-phone.png') });
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
    await context.close();
  });

  it('keeps the failure store bounded, whatever the number of addresses', () => {
    const store = new FailedLogins(5, 60_000, 10_000);
    for (let i = 0; i < 100_000; i += 1) store.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 'operator');
    expect(store.size).toBe(20_000); // pairs and addresses
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 100_000; i += 1) store.fail(`172.16.${(i >> 8) & 255}.${i & 255}-${i}`, 'operator');
    expect(store.size).toBe(20_000);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(50 * 1024 * 1024);
  });

  it('cannot be flushed: throwaway user names from the attacking address do not free the pair it attacks', () => {
    const store = new FailedLogins(5, 15 * 60_000, 10_000);
    const now = Date.now();
    for (let i = 0; i < 6; i += 1) store.fail('203.0.113.7', 'operator', now);
    expect(store.waitMs('203.0.113.7', 'operator', now)).toBeGreaterThan(0);
    // Enough failures under other names to push the attacked pair out of the pairs remembered.
    for (let i = 0; i < 10_001; i += 1) store.fail('203.0.113.7', `throwaway-${i}`, now);
    expect(store.waitMs('203.0.113.7', 'operator', now)).toBe(15 * 60_000);
    // Another address, and another user there before the address guessed much, are not held by it.
    expect(store.waitMs('198.51.100.20', 'operator', now)).toBe(0);
    const shared = new FailedLogins(5, 15 * 60_000, 10_000);
    for (let i = 0; i < 6; i += 1) shared.fail('203.0.113.7', 'operator', now);
    expect(shared.waitMs('203.0.113.7', 'viewer', now)).toBe(0);
  });
});
