import type { PrismaClient } from '../../src/db/prisma.js';
import { seedMvp } from '../../src/demo/seed.js';
import type { AlphaVantageStandIn } from '../support/alpha-vantage-server.js';
import { writeLegacyRows } from '../support/legacy.js';
import { fromScaled, toScaled } from '../support/scaled.js';
import { computeExpected, type Expected, type MarketFixtures, type SeededAction, type SeededAlert, type SeededInvestment } from './expected.js';

export interface ChaosSeed {
  expected: Expected;
  investments: number;
  tickers: number;
  violations: number;
  alerts: number;
  actions: number;
}

const SECTORS = ['Technology', 'Communication Services', 'Consumer Cyclical', 'Healthcare', 'Financial Services'];

/**
 * Seeds a database the way production looks before the migration: many
 * users and portfolios, tickers held by many investments, rows that break
 * phase 4's constraints (written as the MVP could), price alerts on held
 * tickers, and due splits; fills the market stand-in with quotes for most
 * tickers and overviews for the stocks. Returns the expected end state.
 */
export async function seedChaos(prisma: PrismaClient, options: { investments: number; random: () => number }, market: AlphaVantageStandIn): Promise<ChaosSeed> {
  const { random } = options;
  await seedMvp(prisma, { investments: options.investments });
  // Tens of investments per ticker: one provider call must serve many rows.
  const variants = Math.max(2, Math.round(options.investments / 250));
  await writeLegacyRows(prisma, [
    `UPDATE "Investment" SET ticker = ticker || (abs(hashtext(id)) % ${variants})::text`,
    `UPDATE "Investment" SET "totalQuantity" = -("totalQuantity" * (abs(hashtext(id || 'q')) % 2)) WHERE abs(hashtext(id || 'q')) % 40 = 0`,
    `UPDATE "Investment" SET "averageCostBasis" = -"averageCostBasis" WHERE abs(hashtext(id || 'c')) % 50 = 0`,
    `UPDATE "Investment" SET "currentPrice" = -1.25 WHERE abs(hashtext(id || 'p')) % 50 = 0`,
  ]);

  const investments = await prisma.$queryRaw<SeededInvestment[]>`
    SELECT i.id, p."userId", i.ticker, i."assetType"::text AS "assetType", i."totalQuantity"::text AS "totalQuantity",
           i."averageCostBasis"::text AS "averageCostBasis", i."currentPrice"::text AS "currentPrice"
      FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId" ORDER BY i.id`;

  const fixtures: MarketFixtures = { prices: new Map(), sectors: new Map() };
  const stockTickers = new Set(investments.filter((i) => i.assetType === 'STOCK').map((i) => i.ticker));
  for (const ticker of new Set(investments.map((i) => i.ticker))) {
    // Mutual funds get no quote, as with the real provider: their alerts cannot trigger.
    if (!ticker.startsWith('VFIAX')) {
      const price = fromScaled(BigInt(Math.floor(1_000 + random() * 59_000)) * 10n ** 4n + BigInt(Math.floor(random() * 10_000)));
      fixtures.prices.set(ticker, price);
      market.prices.set(ticker, price.replace(/0+$/, ''));
    }
    if (stockTickers.has(ticker)) {
      const sector = SECTORS[Math.floor(random() * SECTORS.length)]!;
      fixtures.sectors.set(ticker, sector);
      market.overviews.set(ticker, {
        Sector: sector,
        Industry: `${sector} industry`,
        Country: 'USA',
        MarketCapitalization: String(1e9 + Math.floor(random() * 1e9)),
      });
    }
  }

  const alerts = seedAlerts(investments, fixtures, random);
  for (let i = 0; i < alerts.length; i += 1_000) {
    await prisma.priceAlert.createMany({ data: alerts.slice(i, i + 1_000) });
  }

  // Splits on investments that break no constraint: one, or two in date order.
  await prisma.$executeRawUnsafe(`
    INSERT INTO "CorporateAction" (id, "investmentId", "actionType", "effectiveDate", description, "splitRatio")
    SELECT 'ca' || s.n || '-' || i.id, i.id, s.type::"CorporateActionType", current_date - s.days, 'chaos ' || s.ratio, s.ratio
      FROM "Investment" i
      JOIN (VALUES (0, 1, 'STOCK_SPLIT', 3, '2:1'), (1, 1, 'STOCK_SPLIT', 3, '3:2'), (2, 1, 'REVERSE_SPLIT', 3, '1:10'),
                   (3, 1, 'STOCK_SPLIT', 5, '2:1'), (3, 2, 'STOCK_SPLIT', 2, '3:2')) AS s(bucket, n, type, days, ratio)
        ON abs(hashtext(i.id || 's')) % 100 = s.bucket
     WHERE i."totalQuantity" > 0 AND i."averageCostBasis" >= 0 AND (i."currentPrice" IS NULL OR i."currentPrice" >= 0)`);
  const actions = await prisma.$queryRaw<SeededAction[]>`
    SELECT id, "investmentId", "effectiveDate"::text AS "effectiveDate", "splitRatio" FROM "CorporateAction"`;

  const expected = computeExpected(investments, alerts, actions, fixtures);
  return {
    expected,
    investments: investments.length,
    tickers: new Set(investments.map((i) => i.ticker)).size,
    violations: [...expected.investments.values()].filter((e) => e.violating).length,
    alerts: alerts.length,
    actions: actions.length,
  };
}

/** About one alert per holding of every third user and ticker, of every type, targets around the quote. */
function seedAlerts(investments: SeededInvestment[], fixtures: MarketFixtures, random: () => number): SeededAlert[] {
  const holdings = new Set(investments.map((i) => `${i.userId}|${i.ticker}`));
  const alerts: SeededAlert[] = [];
  const types = ['PRICE_ABOVE', 'PRICE_BELOW', 'PERCENT_GAIN', 'PERCENT_LOSS'] as const;
  for (const holding of holdings) {
    if (random() > 0.35) continue;
    const [userId, ticker] = holding.split('|') as [string, string];
    const alertType = types[Math.floor(random() * types.length)]!;
    const price = fixtures.prices.get(ticker) ?? '100.00000000';
    // A third exactly at the quote: the boundary must trigger.
    const factor = random() < 0.33 ? 10_000n : BigInt(Math.floor(5_000 + random() * 10_000));
    const target = fromScaled((toScaled(price) * factor) / 10_000n);
    const percent = `${Math.floor(random() * 60)}.${String(Math.floor(random() * 100)).padStart(2, '0')}`;
    const percentage = alertType.startsWith('PERCENT');
    alerts.push({
      id: `alert${String(alerts.length).padStart(7, '0')}`,
      userId,
      // Some tickers written as people type them: the families normalize.
      ticker: random() < 0.1 ? ` ${ticker.toLowerCase()} ` : ticker,
      alertType,
      targetPrice: percentage ? null : target,
      percentChange: percentage ? percent : null,
    });
  }
  return alerts;
}
