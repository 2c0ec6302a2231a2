import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataFamily } from '../src/families/metadata.js';
import { loadMarketConfig } from '../src/config/market.js';
import { FleetMetrics } from '../src/fleet/metrics.js';
import type { FleetWorkers } from '../src/fleet/worker.js';
import { AlphaVantageStandIn } from './support/alpha-vantage-server.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { fleetEnv, runTys } from './support/processes.js';

// One run over every ticker, made before the tests; each test then runs its own tickers alone.
describe('metadata family', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let workers: FleetWorkers;
  let server: AlphaVantageStandIn;
  let portfolioId: string;
  let first: { runId: string; added: number; calls: string[]; provider: Awaited<ReturnType<FleetMetrics['providerAnswers']>> };
  /** The run whose jobs the refused key failed. */
  let refusedRunId: string;

  const investment = (ticker: string, assetType: 'STOCK' | 'ETF' | 'CRYPTO', extra: Record<string, unknown> = {}) =>
    db.prisma.investment.create({
      data: { portfolioId, ticker, name: ticker, assetType, totalQuantity: '1', averageCostBasis: '10', ...extra },
    });

  const savedEnv = { ...process.env };
  beforeAll(async () => {
    server = await new AlphaVantageStandIn().start();
    server.overviews.set('AAPL', { Sector: 'TECHNOLOGY', Industry: 'None', Country: 'USA', MarketCapitalization: '3456789012345' });
    server.overviews.set('MSFT', { Sector: 'TECHNOLOGY', Industry: 'SERVICES-PREPACKAGED SOFTWARE', Country: 'USA', MarketCapitalization: '3100000000000' });
    server.overviews.set('NADA', { Sector: 'None', Industry: '-', Country: '', MarketCapitalization: 'None' });
    Object.assign(process.env, {
      ALPHA_VANTAGE_BASE_URL: server.url,
      ALPHA_VANTAGE_API_KEY: server.validKey,
      MARKET_DATA_RATE_LIMIT: '100/300ms',
    });
    db = await createTestDatabase();
    const user = await db.prisma.user.create({ data: { email: 'meta@example.com' } });
    portfolioId = (await db.prisma.portfolio.create({ data: { name: 'P', userId: user.id } })).id;
    for (let i = 0; i < 20; i += 1) await investment(i % 2 ? 'AAPL' : ' aapl ', 'STOCK');
    for (let i = 0; i < 10; i += 1) await investment('MSFT', 'STOCK');
    for (let i = 0; i < 5; i += 1) await investment('vti', 'ETF');
    await investment('NADA', 'STOCK');
    await investment('BTC', 'CRYPTO');
    await investment('AAPL', 'STOCK', { sector: 'Preset Sector' });
    await investment('MSFT', 'STOCK', { sector: null, country: 'Canada' });
    fleet = await testFleet(db);
    workers = fleet.startWorkers([metadataFamily]);
    const { runId, added } = await fleet.enqueue(metadataFamily);
    await fleet.waitForRun(runId!);
    first = {
      runId: runId!,
      added,
      calls: server.callsFor('OVERVIEW').map((c) => c.symbol),
      provider: await new FleetMetrics(fleet.context.redis, fleet.prefix).providerAnswers('alphavantage'),
    };
  });
  afterAll(async () => {
    process.env = savedEnv;
    await fleet?.close();
    await db?.drop();
    await server?.stop();
  });

  it('makes one call per distinct ticker, fills only empty columns, stores unknowns as null and marketCap exactly', async () => {
    expect(first.added).toBe(4); // AAPL, MSFT, NADA, VTI: normalised, CRYPTO left out
    const run = (await fleet.context.runs.get(first.runId))!;
    expect(first.calls.sort()).toEqual(['AAPL', 'MSFT', 'NADA', 'VTI']);
    expect(run.stats).toEqual({ calls: 4, investmentsUpdated: 32, tickersWithoutData: 2 });
    expect(run).toMatchObject({ status: 'COMPLETED', completed: 2, skipped: 2 });
    // What the dashboard's metrics read: every answer by class, its latency, the budget left.
    const { provider } = first;
    expect(Object.values(provider.answers).reduce((a, b) => a + b, 0)).toBe(4);
    expect(provider.answers.data).toBeGreaterThanOrEqual(2);
    expect(provider.durations.count).toBe(4);
    expect(provider.budgetLeft).not.toBeNull();
    expect(provider.budgetLeft!).toBeGreaterThanOrEqual(0);

    const aapl = await db.prisma.investment.findMany({ where: { ticker: { contains: 'apl', mode: 'insensitive' } } });
    expect(aapl).toHaveLength(21);
    for (const row of aapl.filter((r) => r.sector !== 'Preset Sector')) {
      expect(row).toMatchObject({ sector: 'TECHNOLOGY', industry: null, country: 'USA' });
      expect(row.marketCap!.toFixed(2)).toBe('3456789012345.00');
    }
    const preset = aapl.find((r) => r.sector === 'Preset Sector')!;
    expect(preset.country).toBe('USA');
    const canadian = await db.prisma.investment.findFirstOrThrow({ where: { ticker: 'MSFT', country: 'Canada' } });
    expect(canadian.sector).toBe('TECHNOLOGY');
    expect(await db.prisma.investment.count({ where: { OR: [{ sector: 'None' }, { industry: 'None' }, { industry: '-' }, { country: '' }] } })).toBe(0);
    expect(await db.prisma.investment.count({ where: { ticker: 'BTC', sector: null } })).toBe(1);

    const audits = (await db.prisma.auditLog.findMany({ where: { action: 'BACKFILL_METADATA' } })).filter(
      (a) => (a.metadata as { runId: string }).runId === first.runId,
    );
    expect(audits).toHaveLength(32);
    expect(audits.find((a) => a.entityId === preset.id)!.metadata).toMatchObject({
      before: { country: null, marketCap: null },
      after: { country: 'USA', marketCap: '3456789012345.00' },
    });
  });

  it('remembers tickers without data: the next run asks the provider nothing', async () => {
    const calls = server.calls.length;
    const withoutData = await db.prisma.investment.findMany({ where: { ticker: { in: ['NADA', 'vti'] } }, select: { id: true } });
    const { runId, added } = await fleet.enqueue(metadataFamily, { kind: 'investments', ids: withoutData.map((i) => i.id) });
    expect(added).toBe(2); // NADA and VTI still have no sector
    const run = await fleet.waitForRun(runId!);
    expect(run).toMatchObject({ status: 'COMPLETED', skipped: 2 });
    expect(server.calls.length).toBe(calls);
  });

  it('waits out rate-limit answers without spending attempts, then succeeds', async () => {
    server.overviews.set('SLOWW', { Sector: 'ENERGY' });
    server.behaviours.set('SLOWW', { kind: 'note', times: metadataFamily.options.attempts + 1 });
    const slow = await investment('SLOWW', 'STOCK');
    const { runId } = await fleet.enqueue(metadataFamily, { kind: 'investments', ids: [slow.id] });
    const run = await fleet.waitForRun(runId!);
    expect(server.callsFor('OVERVIEW', 'SLOWW')).toHaveLength(metadataFamily.options.attempts + 2);
    expect(run).toMatchObject({ failed: 0 });
    expect((await db.prisma.investment.findFirstOrThrow({ where: { ticker: 'SLOWW' } })).sector).toBe('ENERGY');
    const delays = await fleet.context.redis.hgetall(`${fleet.prefix}:metrics:ratelimit:metadata`);
    expect(Number(delays.count)).toBeGreaterThanOrEqual(metadataFamily.options.attempts + 1);
  });

  it('stops on a refused key (the public demo key) with one clear reason instead of a retry storm', async () => {
    // Workers read the key when they start: these run with the public demo key.
    await workers.close();
    workers = fleet.startWorkers([metadataFamily], { market: { ...loadMarketConfig(), apiKey: 'demo' } });
    try {
      const ids: string[] = [];
      for (const t of ['K1', 'K2', 'K3', 'K4', 'K5', 'K6', 'K7', 'K8']) ids.push((await investment(t, 'STOCK')).id);
      const calls = server.calls.length;
      const { runId } = await fleet.enqueue(metadataFamily, { kind: 'investments', ids });
      refusedRunId = runId!;
      const run = await fleet.waitForRun(runId!);
      // At most one call per job already running when the first refusal came back.
      expect(server.calls.length - calls).toBeLessThanOrEqual(metadataFamily.options.concurrency);
      expect(run).toMatchObject({ total: 8, failed: 8 });
      const failed = await fleet.context.queue(metadataFamily).getFailed();
      const reasons = failed.filter((j) => j.data.runId === runId).map((j) => j.failedReason);
      expect(reasons).toHaveLength(8);
      for (const reason of reasons) expect(reason).toMatch(/API key is for .* purposes only/);
      expect(failed.every((j) => j.attemptsMade === 1)).toBe(true);
    } finally {
      await workers.close();
      workers = fleet.startWorkers([metadataFamily]);
    }
  });

  it('finds the jobs the refused key failed by their reason, and retries exactly those, reason by reason, once the key is fixed', async () => {
    const env = fleetEnv(fleet.config);
    const jobs = async (reason: string) =>
      JSON.parse((await runTys(['jobs', '--run', refusedRunId, '--reason', reason, '--json'], env)).stdout) as {
        counts: { outcome: string; reason: string; jobs: number }[];
        jobs: { key: string; reason: string }[];
      };
    const refusals = await jobs('api KEY is for');
    expect(refusals.jobs.map((job) => job.key).sort()).toEqual(['K1', 'K2', 'K3', 'K4', 'K5', 'K6', 'K7', 'K8']);
    expect(refusals.counts.reduce((sum, count) => sum + count.jobs, 0)).toBe(8);
    for (const ticker of ['K1', 'K2', 'K3']) server.overviews.set(ticker, { Sector: 'ENERGY', Country: 'USA' });

    // The most common reason, as tys jobs counts it (its rows folded into <key>), names its jobs alone.
    const top = refusals.counts[0]!;
    const calls = server.calls.length;
    const preview = await runTys(['retry', '--run', refusedRunId, '--reason', top.reason], env);
    expect(preview.code).toBe(0);
    expect(preview.stdout).toContain(`${top.jobs} job(s) to retry`);
    expect(server.calls.length).toBe(calls);
    // The workers run with a fixed key now (restarted after the refusal).
    const first = await runTys(['retry', '--run', refusedRunId, '--reason', top.reason, '--yes', '--rate', '20/1s', '--wait'], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('paced at 20/1s');
    expect(first.stdout).toMatch(new RegExp(`finished: \\d+ completed, \\d+ skipped, 0 failed`));
    const firstRun = /^run (run-\S+): metadata over/m.exec(first.stdout)![1]!;
    expect(await fleet.context.runs.get(firstRun)).toMatchObject({ total: top.jobs, failed: 0 });

    // Then the rest, by words of the reason: the jobs already taken up are left out.
    const rest = await runTys(['retry', '--run', refusedRunId, '--reason', 'api key is for'], env);
    expect(rest.stdout).toContain(`${8 - top.jobs} job(s) to retry`);
    expect(rest.stdout).toContain(`${top.jobs} matching job(s) were taken up already, by ${firstRun} (left out)`);
    const second = await runTys(['retry', '--run', refusedRunId, '--reason', 'api key is for', '--yes', '--wait'], env);
    expect(second.code).toBe(0);
    const secondRun = /^run (run-\S+): metadata over/m.exec(second.stdout)![1]!;
    expect(await fleet.context.runs.get(secondRun)).toMatchObject({ total: 8 - top.jobs, failed: 0 });
    const energy = await db.prisma.investment.findMany({ where: { ticker: { in: ['K1', 'K2', 'K3'] } }, select: { sector: true } });
    expect(energy.map((row) => row.sector)).toEqual(['ENERGY', 'ENERGY', 'ENERGY']);
    expect((await runTys(['retry', '--run', refusedRunId, '--reason', 'api key is for', '--yes'], env)).stdout).toContain(
      'nothing to retry: the 8 matching job(s) were taken up already',
    );
  });
});
