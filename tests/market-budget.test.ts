import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertsFamily } from '../src/families/alerts.js';
import { metadataFamily } from '../src/families/metadata.js';
import { AlphaVantageStandIn } from './support/alpha-vantage-server.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { fleetEnv, killSpawnedWorkers, spawnWorker } from './support/processes.js';

const MAX = 3;
const WINDOW_MS = 1_000;
const TICKERS = 6;

describe('one provider budget shared by two families in two worker processes', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let server: AlphaVantageStandIn;

  beforeAll(async () => {
    server = await new AlphaVantageStandIn().start();
    db = await createTestDatabase();
    const userId = (await db.prisma.user.create({ data: { email: 'budget@example.com' } })).id;
    const portfolioId = (await db.prisma.portfolio.create({ data: { name: 'P', userId } })).id;
    for (let i = 0; i < TICKERS; i += 1) {
      server.overviews.set(`META${i}`, { Sector: 'HEALTHCARE' });
      server.prices.set(`ALRT${i}`, '10');
      await db.prisma.investment.create({
        data: { portfolioId, ticker: `META${i}`, name: 'm', assetType: 'STOCK', totalQuantity: '1', averageCostBasis: '1', sector: null },
      });
      await db.prisma.investment.create({
        data: { portfolioId, ticker: `ALRT${i}`, name: 'a', assetType: 'CRYPTO', totalQuantity: '1', averageCostBasis: '1' },
      });
      await db.prisma.priceAlert.create({ data: { userId, ticker: `ALRT${i}`, alertType: 'PRICE_ABOVE', targetPrice: '5' } });
    }
    fleet = await testFleet(db);
  });
  afterAll(async () => {
    killSpawnedWorkers();
    await fleet?.close();
    await db?.drop();
    await server?.stop();
  });

  it('never exceeds the budget in any window, and every job still completes', async () => {
    const env = fleetEnv(fleet.config, {
      ALPHA_VANTAGE_BASE_URL: server.url,
      ALPHA_VANTAGE_API_KEY: server.validKey,
      MARKET_DATA_RATE_LIMIT: `${MAX}/${WINDOW_MS}ms`,
    });
    const workers = [spawnWorker(env, ['--families', 'metadata']), spawnWorker(env, ['--families', 'alerts'])];
    const [meta, alerts] = await Promise.all([fleet.enqueue(metadataFamily), fleet.enqueue(alertsFamily)]);
    const runs = await Promise.all([fleet.waitForRun(meta.runId!), fleet.waitForRun(alerts.runId!)]);
    for (const worker of workers) worker.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));

    expect(runs.map((r) => [r.status, r.completed])).toEqual([
      ['COMPLETED', TICKERS],
      ['COMPLETED', TICKERS],
    ]);
    // Calls made equal the distinct tickers needing data: nothing asked twice.
    expect(server.calls).toHaveLength(2 * TICKERS);
    expect(new Set(server.calls.map((c) => `${c.fn} ${c.symbol}`)).size).toBe(2 * TICKERS);
    // Any MAX + 1 consecutive calls span at least the window. The budget is kept
    // on Redis's clock and these times are the stand-in's, taken on arrival:
    // request latency, which passed 140 ms on a loaded 2-core machine, is
    // allowed for (a quarter of the window: a budget that does not hold lets
    // calls through milliseconds apart).
    const times = server.calls.map((c) => c.at).sort((a, b) => a - b);
    for (let i = 0; i + MAX < times.length; i += 1) {
      expect(times[i + MAX]! - times[i]!, `calls ${i}..${i + MAX}`).toBeGreaterThanOrEqual(WINDOW_MS - 250);
    }
    expect(await db.prisma.priceAlert.count({ where: { triggered: true } })).toBe(TICKERS);
    expect(await db.prisma.investment.count({ where: { sector: 'HEALTHCARE' } })).toBe(TICKERS);
  });
});
