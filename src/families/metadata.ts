import { Prisma } from '../db/prisma.js';
import { sqlRows } from '../db/sql.js';
import { utcNowSql } from '../db/utc.js';
import { auditRecord } from '../fleet/audit.js';
import { DEFAULT_FAMILY_OPTIONS, eachItem, type ItemResult, type JobFamily } from '../fleet/family.js';
import { investmentScopeSql } from '../fleet/scope.js';
import { MarketGateway, PROVIDER_QUEUE_LIMITER } from '../market/gateway.js';
import { TICKER_PATTERN, type Overview } from '../market/provider.js';
import { investmentTicker } from './investment-keys.js';

const COLUMNS = ['sector', 'industry', 'country', 'marketCap'] as const;
type Column = (typeof COLUMNS)[number];
type Row = Record<Column, string | null> & { id: string; userId: string };

function overviewValues(overview: Overview): Record<Column, string | null> {
  return {
    sector: overview.sector,
    industry: overview.industry,
    country: overview.country,
    marketCap: overview.marketCap === null ? null : overview.marketCap.toDecimalPlaces(2).toFixed(2),
  };
}

/**
 * Phase 5: sector, industry, country and market cap of STOCK and ETF
 * investments, one job per distinct ticker (one OVERVIEW call serves every
 * investment holding it), never overwriting a value already set.
 */
export const metadataFamily: JobFamily = {
  name: 'metadata',
  description: 'backfill sector, industry, country and market cap, one provider call per ticker (phase 5)',
  exampleKey: 'NOSUCHTICKER',
  verifyHelp: 'STOCK and ETF rows have metadata, except tickers the provider has no data for',
  scopes: ['all', 'investments', 'portfolio', 'user'],

  async source(prisma, scope, after, limit) {
    const rows = await sqlRows<{ ticker: string }>(
      prisma,
      Prisma.sql`
      SELECT DISTINCT upper(trim(i.ticker)) AS ticker
        FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId"
       WHERE i."assetType" IN ('STOCK', 'ETF') AND i.sector IS NULL AND ${investmentScopeSql(scope)}
         AND upper(trim(i.ticker)) > ${after}
       ORDER BY 1 LIMIT ${limit}`,
    );
    return rows.map((row) => row.ticker).filter((ticker) => TICKER_PATTERN.test(ticker));
  },

  isValidKey: (key) => TICKER_PATTERN.test(key),
  investmentKeys: investmentTicker,

  handle: eachItem(async (ctx, { key: ticker, runId, jobId }): Promise<ItemResult> => {
    const market = MarketGateway.open(ctx);
    if (await market.knownWithoutData('overview', ticker)) {
      return { status: 'skipped', reason: `no overview for ${ticker} (remembered; not asked again yet)` };
    }
    const overview = await market.fetch('overview', ticker, (stat) => ctx.count(runId, stat));
    const values = overview && overviewValues(overview);
    if (!values || COLUMNS.every((c) => values[c] === null)) {
      if (overview) await market.rememberWithoutData('overview', ticker);
      ctx.count(runId, 'tickersWithoutData');
      return { status: 'skipped', reason: `no overview for ${ticker}` };
    }
    const changed = await ctx.prisma.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<Row[]>`
        SELECT i.id, i.sector, i.industry, i.country, i."marketCap"::text AS "marketCap", p."userId"
          FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId"
         WHERE upper(trim(i.ticker)) = ${ticker} AND i."assetType" IN ('STOCK', 'ETF')
           AND (i.sector IS NULL OR i.industry IS NULL OR i.country IS NULL OR i."marketCap" IS NULL)
         ORDER BY i.id FOR NO KEY UPDATE OF i`;
      // Only empty columns are filled: a value already set stays.
      const changes = rows
        .map((row) => ({ row, columns: COLUMNS.filter((c) => row[c] === null && values[c] !== null) }))
        .filter((change) => change.columns.length > 0);
      if (changes.length === 0) return 0;
      const updated = await tx.$queryRaw<Row[]>`
        UPDATE "Investment" SET
          sector = COALESCE(sector, ${values.sector}), industry = COALESCE(industry, ${values.industry}),
          country = COALESCE(country, ${values.country}), "marketCap" = COALESCE("marketCap", ${values.marketCap}::numeric),
          "updatedAt" = ${utcNowSql}
         WHERE id = ANY(${changes.map((c) => c.row.id)}::text[])
         RETURNING id, sector, industry, country, "marketCap"::text AS "marketCap"`;
      const after = new Map(updated.map((row) => [row.id, row]));
      await tx.auditLog.createMany({
        data: changes.map(({ row, columns }) =>
          auditRecord({
            userId: row.userId,
            action: 'BACKFILL_METADATA',
            entity: 'Investment',
            entityId: row.id,
            runId,
            jobId,
            before: Object.fromEntries(columns.map((c) => [c, row[c]])),
            after: Object.fromEntries(columns.map((c) => [c, after.get(row.id)![c]])),
            extra: { ticker },
          }),
        ),
      });
      return changes.length;
    });
    ctx.count(runId, 'investmentsUpdated', changed);
    return changed > 0
      ? { status: 'changed', detail: `${changed} investment(s) of ${ticker}` }
      : { status: 'skipped', reason: `every ${ticker} investment already has its metadata` };
  }),

  revertible: { Investment: { columns: { sector: 'text', industry: 'text', country: 'text', marketCap: 'numeric' }, hasUpdatedAt: true } },

  // Per ticker, so that the answer stays small however many rows hold it.
  async verify(prisma, context) {
    const [{ checked } = { checked: 0n }] = await prisma.$queryRaw<{ checked: bigint }[]>`
      SELECT count(*) AS checked FROM "Investment" WHERE "assetType" IN ('STOCK', 'ETF')`;
    const tickers = await prisma.$queryRaw<{ ticker: string; rows: bigint; sample: string }[]>`
      SELECT upper(trim(ticker)) AS ticker, count(*) AS rows, min(id) AS sample FROM "Investment"
       WHERE "assetType" IN ('STOCK', 'ETF') AND sector IS NULL AND industry IS NULL AND country IS NULL AND "marketCap" IS NULL
       GROUP BY 1 ORDER BY 1`;
    const withoutData = context
      ? await MarketGateway.withoutData(
          context.redis,
          context.prefix,
          'overview',
          tickers.map((t) => t.ticker),
        )
      : new Set<string>();
    const missing = tickers.filter((t) => !withoutData.has(t.ticker));
    return {
      ok: missing.length === 0,
      checked: Number(checked),
      problems: missing.slice(0, 100).map((t) => ({
        id: t.sample,
        problem: `${t.ticker}: ${t.rows} STOCK/ETF investment(s) without metadata${TICKER_PATTERN.test(t.ticker) ? '' : ' (not a valid ticker: left for a person)'}`,
      })),
      problemCount: missing.reduce((sum, t) => sum + Number(t.rows), 0),
    };
  },

  // Few jobs, each bound by the provider's budget rather than by the database.
  options: { ...DEFAULT_FAMILY_OPTIONS, concurrency: 4, backoffMs: 2_000, limiter: PROVIDER_QUEUE_LIMITER },
};
