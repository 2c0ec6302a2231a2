import { randomBytes } from 'node:crypto';
import type { Prisma, PrismaClient } from '../db/prisma.js';
import { utcNowSql } from '../db/utc.js';

async function hasQuantityConstraint(tx: Prisma.TransactionClient): Promise<boolean> {
  const rows = await tx.$queryRaw<{ n: bigint }[]>`
    SELECT count(*) AS n FROM pg_constraint WHERE conname = 'Investment_totalQuantity_positive'`;
  return rows[0]!.n > 0n;
}

export interface SeedOptions {
  users?: number;
  portfoliosPerUser?: number;
  investments: number;
  /** Share of investments with a non-positive quantity (constraint violations). Default 0. */
  badQuantityRate?: number;
}

const TICKERS = ['AAPL', 'MSFT', 'VTI', 'SPY', 'QQQ', 'NVDA', 'AMZN', 'GOOGL', 'BTC', 'ETH', 'VXUS', 'BND', 'TSLA', 'META', 'VFIAX'];
const ASSET_TYPES = ['STOCK', 'STOCK', 'ETF', 'ETF', 'ETF', 'STOCK', 'STOCK', 'STOCK', 'CRYPTO', 'CRYPTO', 'ETF', 'ETF', 'STOCK', 'STOCK', 'MUTUAL_FUND'];

/**
 * Seeds MVP data set-based, straight in SQL (generate_series): fast enough for
 * millions of rows. Quantities and prices are computed as numeric in
 * Postgres, never as JavaScript numbers. Returns the investment ids' prefix.
 */
export async function seedMvp(prisma: PrismaClient, options: SeedOptions): Promise<string> {
  const tag = randomBytes(4).toString('hex');
  const users = options.users ?? Math.max(1, Math.ceil(options.investments / 50));
  const portfoliosPerUser = options.portfoliosPerUser ?? 2;
  const portfolios = users * portfoliosPerUser;
  const badEvery = options.badQuantityRate ? Math.max(1, Math.round(1 / options.badQuantityRate)) : 0;
  await prisma.$executeRawUnsafe(
    `INSERT INTO "User" (id, email, name)
     SELECT 'u${tag}' || lpad(g::text, 8, '0'), 'user' || g || '.${tag}@example.com', 'User ' || g
       FROM generate_series(1, $1) g`,
    users,
  );
  await prisma.$executeRawUnsafe(
    `INSERT INTO "Portfolio" (id, name, "userId", "createdAt", "updatedAt")
     SELECT 'p${tag}' || lpad(g::text, 8, '0'), 'Portfolio ' || g,
            'u${tag}' || lpad((((g - 1) / $2) + 1)::text, 8, '0'), ${utcNowSql.sql}, ${utcNowSql.sql}
       FROM generate_series(1, $1) g`,
    portfolios,
    portfoliosPerUser,
  );
  await prisma.$transaction(
    async (tx) => {
      // Bad quantities can only be data from before phase 4: the NOT VALID
      // constraint checks new rows, so it is set aside for this insert and put
      // back NOT VALID, exactly as it stood.
      const hadConstraint = badEvery > 0 && (await hasQuantityConstraint(tx));
      if (hadConstraint) await tx.$executeRawUnsafe(`ALTER TABLE "Investment" DROP CONSTRAINT "Investment_totalQuantity_positive"`);
      await tx.$executeRawUnsafe(
        `INSERT INTO "Investment" (id, ticker, name, "assetType", "totalQuantity", "averageCostBasis", "currentPrice",
                               "portfolioId", "createdAt", "updatedAt")
     SELECT 'i${tag}' || lpad(g::text, 10, '0'),
            (ARRAY[${TICKERS.map((t) => `'${t}'`).join(',')}])[1 + g % ${TICKERS.length}],
            'Holding ' || g,
            (ARRAY[${ASSET_TYPES.map((t) => `'${t}'`).join(',')}])[1 + g % ${ASSET_TYPES.length}]::"AssetType",
            CASE WHEN $3 > 0 AND g % $3 = 0 THEN -((g % 7)::numeric) ELSE round((1 + (g * 7919 % 100000) / 1000.0)::numeric, 8) + 0.00000001 * (g % 97) END,
            round((5 + (g * 104729 % 50000) / 100.0)::numeric, 8),
            round((5 + (g * 1299709 % 60000) / 100.0)::numeric, 8),
            'p${tag}' || lpad((1 + (g - 1) % $2)::text, 8, '0'),
            timestamp '2024-01-01' + (g % 600) * interval '1 day' + (g % 86400) * interval '1 second',
            ${utcNowSql.sql}
       FROM generate_series(1, $1::bigint) g`,
        options.investments,
        portfolios,
        badEvery,
      );
      if (hadConstraint) {
        await tx.$executeRawUnsafe(`ALTER TABLE "Investment" ADD CONSTRAINT "Investment_totalQuantity_positive" CHECK ("totalQuantity" > 0) NOT VALID`);
      }
    },
    { timeout: 600_000 },
  );
  return `i${tag}`;
}
