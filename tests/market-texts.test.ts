import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scope } from '../src/fleet/scope.js';
import { metadataFamily } from '../src/families/metadata.js';
import { MarketGateway } from '../src/market/gateway.js';
import { PROVIDER_TEXTS } from '../src/market/provider-texts.js';
import { AlphaVantageStandIn } from './support/alpha-vantage-server.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { until } from './support/processes.js';
import { loadMarketConfig } from '../src/config/market.js';
import type { FleetWorkers } from '../src/fleet/worker.js';

const SECRET_FREE_KEY = 'free-key-SECRET-4242';
const text = (pattern: RegExp) => PROVIDER_TEXTS.find((t) => pattern.test(t.example))!;

/** Gaps, in ms, between consecutive calls. */
const gaps = (calls: { at: number }[]) => calls.slice(1).map((call, i) => call.at - calls[i]!.at);

describe('provider texts through the gateway and a worker', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let workers: FleetWorkers;
  let server: AlphaVantageStandIn;
  let portfolioId: string;
  const saved = { ...process.env };

  /** Investments of these tickers; the scope of a run of them alone (each test works on its own). */
  const tickers = async (...names: string[]): Promise<Scope> => {
    const ids: string[] = [];
    for (const ticker of names) {
      server.overviews.set(ticker, { Sector: `SECTOR ${ticker}` });
      const row = await db.prisma.investment.create({
        data: { portfolioId, ticker, name: ticker, assetType: 'STOCK', totalQuantity: '1', averageCostBasis: '10' },
      });
      ids.push(row.id);
    }
    return { kind: 'investments', ids };
  };
  const sectorsSet = async (...names: string[]) =>
    (await db.prisma.investment.findMany({ where: { ticker: { in: names } } })).every((row) => row.sector === `SECTOR ${row.ticker}`);

  beforeAll(async () => {
    server = await new AlphaVantageStandIn().start();
    Object.assign(process.env, {
      ALPHA_VANTAGE_BASE_URL: server.url,
      ALPHA_VANTAGE_API_KEY: server.validKey,
      MARKET_DATA_RATE_LIMIT: '100/1s',
      MARKET_DATA_QUOTA_RESET: '3s',
    });
    db = await createTestDatabase();
    const user = await db.prisma.user.create({ data: { email: 'texts@example.com' } });
    portfolioId = (await db.prisma.portfolio.create({ data: { name: 'P', userId: user.id } })).id;
    fleet = await testFleet(db);
    workers = fleet.startWorkers([metadataFamily]);
  });
  afterAll(async () => {
    await fleet?.close();
    await db?.drop();
    await server?.stop();
    process.env = saved;
  });

  it('daily quota spent: no call until the reset, jobs held (not failed, no attempt spent), the key never shown', async () => {
    // Workers read the key when they start: these run with the free key.
    await workers.close();
    workers = fleet.startWorkers([metadataFamily], { market: { ...loadMarketConfig(), apiKey: SECRET_FREE_KEY } });
    Object.assign(server, { freeDailyQuota: 2, quotaPeriodMs: 3_000 });
    try {
      const { runId } = await fleet.enqueue(metadataFamily, await tickers('Q1', 'Q2', 'Q3', 'Q4', 'Q5'));
      // What the metrics and tys status show while the quota is spent.
      await until('the spent quota to be recorded', async () => (await MarketGateway.quotaSpentSeconds(fleet.context.redis, fleet.prefix)) > 0, 20_000, 20);
      const run = await fleet.waitForRun(runId!, 60_000);
      expect(run).toMatchObject({ status: 'COMPLETED', completed: 5, failed: 0 });
      expect(run.stats.dailyQuotaReached).toBeGreaterThanOrEqual(1);
      expect(await sectorsSet('Q1', 'Q2', 'Q3', 'Q4', 'Q5')).toBe(true);
      // The call answered "quota spent" is followed by silence until the reset (3 s here, UTC midnight in production).
      // (Calls already on their way when the answer came may land just after it.)
      const calls = server.calls.filter((c) => c.apikey === SECRET_FREE_KEY);
      const first = calls.find((c) => c.quotaSpent)!;
      expect(first).toBeTruthy();
      const after = calls.filter((c) => c.at > first.at + 100);
      expect(after.length).toBeGreaterThan(0);
      for (const call of after) expect(call.at - first.at, 'silence after the quota answer').toBeGreaterThanOrEqual(2_900);
      const jobs = await fleet.context.queue(metadataFamily).getJobs(['completed', 'failed', 'delayed', 'waiting']);
      expect(JSON.stringify(jobs)).not.toContain(SECRET_FREE_KEY);
      expect(await fleet.context.redis.exists(MarketGateway.quotaSpentKey(fleet.prefix))).toBe(0);
    } finally {
      await workers.close();
      workers = fleet.startWorkers([metadataFamily]);
      Object.assign(server, { freeDailyQuota: 25, quotaPeriodMs: 86_400_000 });
    }
  });

  it('burst and per-second throttles: retried after a second, without spending attempts', async () => {
    const scope = await tickers('B1', 'B2');
    server.behaviours.set('B1', { kind: 'text', text: text(/Burst pattern/), times: 2 });
    server.behaviours.set('B2', { kind: 'text', text: text(/\(1 request per second\)/), times: metadataFamily.options.attempts + 1 });
    const run = await fleet.waitForRun((await fleet.enqueue(metadataFamily, scope)).runId!, 60_000);
    expect(run).toMatchObject({ status: 'COMPLETED', failed: 0, completed: 2 });
    expect(server.callsFor('OVERVIEW', 'B2')).toHaveLength(metadataFamily.options.attempts + 2);
    for (const gap of gaps(server.callsFor('OVERVIEW', 'B1'))) expect(gap).toBeGreaterThanOrEqual(900);
  });

  it('an unknown provider text is held like a throttle: one call per window, never a tight loop', async () => {
    const scope = await tickers('U1');
    const unknown = { meaning: 'throttled' as const, field: 'Information' as const, pattern: /never/, example: 'We changed our wording again.' };
    server.behaviours.set('U1', { kind: 'text', text: unknown, times: 3 });
    const run = await fleet.waitForRun((await fleet.enqueue(metadataFamily, scope)).runId!, 60_000);
    expect(run).toMatchObject({ status: 'COMPLETED', failed: 0 });
    const calls = server.callsFor('OVERVIEW', 'U1');
    expect(calls).toHaveLength(4);
    for (const gap of gaps(calls)) expect(gap).toBeGreaterThanOrEqual(900);
  });

  it('premium endpoint: the job fails once with that reason and the family stops calling that endpoint', async () => {
    const scope = await tickers('P1', 'P2', 'P3');
    server.behaviours.set('P1', { kind: 'text', text: text(/This is a premium endpoint/), times: 1 });
    const before = server.callsFor('OVERVIEW').length;
    const run = await fleet.waitForRun((await fleet.enqueue(metadataFamily, scope)).runId!, 60_000);
    expect(run).toMatchObject({ status: 'FAILED' });
    // A run counts an outcome before BullMQ files the job as failed.
    await until('P1 to be filed as failed', async () => (await fleet.context.queue(metadataFamily).getFailed()).some((j) => j.data.key === 'P1'), 10_000);
    const failed = (await fleet.context.queue(metadataFamily).getFailed()).filter((j) => j.data.runId === run.id);
    expect(failed.some((j) => j.data.key === 'P1')).toBe(true);
    for (const job of failed) {
      expect(job.attemptsMade).toBe(1);
      expect(job.failedReason).toMatch(/overview needs a premium plan: Thank you for using Alpha Vantage! This is a premium endpoint/);
    }
    // Jobs that called before P1's answer paused the endpoint were answered normally; those after it
    // failed without calling. How many of each depends on how the worker interleaved them.
    expect(run.completed + run.failed).toBe(3);
    expect(server.callsFor('OVERVIEW').length - before).toBe(1 + run.completed);
    // Calls to the endpoint stay paused: the next job fails at once, without calling.
    const calledBefore = server.callsFor('OVERVIEW').length;
    const next = await fleet.waitForRun((await fleet.enqueue(metadataFamily, await tickers('P4'))).runId!);
    expect(next).toMatchObject({ status: 'FAILED', failed: 1 });
    expect(server.callsFor('OVERVIEW').length).toBe(calledBefore);
    // The pause ends (a day in production); the other tests of this file call the endpoint again.
    const paused = await fleet.context.redis.keys(`${fleet.prefix}:market:*:premium:*`);
    expect(paused).toHaveLength(1);
    await fleet.context.redis.del(...paused);
  });
});
