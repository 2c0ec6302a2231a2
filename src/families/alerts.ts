import type { Queue } from 'bullmq';
import { bullmq } from '../deps/bullmq.js';
import type { RedisClient } from '../redis/connection.js';
import { Exact } from '../db/exact.js';
import { Prisma } from '../db/prisma.js';
import { sqlRows } from '../db/sql.js';
import { utcNowSql } from '../db/utc.js';
import { auditRecord } from '../fleet/audit.js';
import { DEFAULT_FAMILY_OPTIONS, eachItem, type HandlerContext, type ItemResult, type JobFamily } from '../fleet/family.js';
import { NOTIFICATIONS_QUEUE } from '../fleet/queues.js';
import { loadMarketConfig } from '../config/market.js';
import { MarketGateway, PROVIDER_QUEUE_LIMITER } from '../market/gateway.js';
import { TICKER_PATTERN } from '../market/provider.js';
import type { PriceAlertType } from '../generated/prisma/enums.js';

export interface AlertRule {
  alertType: PriceAlertType;
  targetPrice: string | null;
  percentChange: string | null;
}

/** The owner's position in the ticker: sums over their investments in it. */
export interface Position {
  quantity: string;
  /** Sum of totalQuantity * averageCostBasis. */
  cost: string;
}

export type Verdict = { trigger: boolean } | { skip: string };

/**
 * The rules, exactly: no division, so no rounding. PERCENT_GAIN triggers when
 * price >= basis * (1 + p/100), that is price * 100 * quantity >= cost *
 * (100 + p), with basis the quantity-weighted average cost; PERCENT_LOSS
 * mirrors it.
 */
export function evaluateAlert(rule: AlertRule, price: Prisma.Decimal, position: Position | null): Verdict {
  const p = new Exact(price.toString());
  switch (rule.alertType) {
    case 'PRICE_ABOVE':
    case 'PRICE_BELOW': {
      if (rule.targetPrice === null) return { skip: `${rule.alertType} alert has no target price` };
      const target = new Exact(rule.targetPrice);
      return { trigger: rule.alertType === 'PRICE_ABOVE' ? p.gte(target) : p.lte(target) };
    }
    case 'PERCENT_GAIN':
    case 'PERCENT_LOSS': {
      if (rule.percentChange === null) return { skip: `${rule.alertType} alert has no percentage` };
      if (!position || new Exact(position.quantity).lte(0)) return { skip: 'the owner holds none of this ticker' };
      const cost = new Exact(position.cost);
      if (cost.isZero()) return { skip: "the owner's cost basis is zero" };
      const percent = new Exact(rule.percentChange);
      const lhs = p.times(100).times(position.quantity);
      return rule.alertType === 'PERCENT_GAIN'
        ? { trigger: lhs.gte(cost.times(new Exact(100).plus(percent))) }
        : { trigger: lhs.lte(cost.times(new Exact(100).minus(percent))) };
    }
  }
}

const notificationQueues = new WeakMap<RedisClient, Map<string, Queue>>();

/** The queue the application's notifier reads: one job per triggered alert, its id the alert's. */
function notifications(ctx: HandlerContext): Queue {
  let byPrefix = notificationQueues.get(ctx.redis);
  if (!byPrefix) notificationQueues.set(ctx.redis, (byPrefix = new Map<string, Queue>()));
  let queue = byPrefix.get(ctx.prefix);
  if (!queue) {
    queue = new bullmq.Queue(NOTIFICATIONS_QUEUE, {
      connection: ctx.redis,
      prefix: ctx.prefix,
      defaultJobOptions: { attempts: 5, backoff: { type: 'exponential', delay: 5_000 }, removeOnComplete: { count: 10_000 }, removeOnFail: { count: 10_000 } },
    });
    byPrefix.set(ctx.prefix, queue);
  }
  return queue;
}

/** The price to judge by: a stored one recent enough, or one quote call that also refreshes every holding. */
async function currentPrice(ctx: HandlerContext, market: MarketGateway, ticker: string, runId: string, jobId: string) {
  const [stored] = await ctx.prisma.$queryRaw<{ price: string }[]>`
    SELECT "currentPrice"::text AS price FROM "Investment"
     WHERE upper(trim(ticker)) = ${ticker} AND "currentPrice" IS NOT NULL
       AND "priceUpdatedAt" >= ${utcNowSql} - make_interval(secs => ${market.config.priceMaxAgeMs / 1000})
     ORDER BY "priceUpdatedAt" DESC LIMIT 1`;
  if (stored) return new Prisma.Decimal(stored.price);
  if (await market.knownWithoutData('quote', ticker)) return null;
  const quote = await market.fetch('quote', ticker, (stat) => ctx.count(runId, stat));
  if (!quote) return null;
  const price = quote.price.toDecimalPlaces(8).toFixed(8);
  await ctx.prisma.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<{ id: string; currentPrice: string | null; userId: string }[]>`
      SELECT i.id, i."currentPrice"::text AS "currentPrice", p."userId"
        FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId"
       WHERE upper(trim(i.ticker)) = ${ticker} ORDER BY i.id FOR NO KEY UPDATE OF i`;
    if (rows.length === 0) return;
    await tx.$executeRaw`
      UPDATE "Investment" SET "currentPrice" = ${price}::numeric, "priceUpdatedAt" = ${utcNowSql}, "updatedAt" = ${utcNowSql}
       WHERE id = ANY(${rows.map((r) => r.id)}::text[])`;
    await tx.auditLog.createMany({
      data: rows.map((row) =>
        auditRecord({
          userId: row.userId,
          action: 'REFRESH_PRICE',
          entity: 'Investment',
          entityId: row.id,
          runId,
          jobId,
          before: { currentPrice: row.currentPrice },
          after: { currentPrice: price },
          extra: { ticker },
        }),
      ),
    });
  });
  return quote.price;
}

/**
 * Phase 5: evaluates the untriggered price alerts of a ticker. Each alert
 * triggers exactly once: the update is conditional on triggered = false, and
 * only the evaluation that flips it writes the audit entry and the
 * notification.
 */
export const alertsFamily: JobFamily = {
  name: 'alerts',
  description: 'evaluate untriggered price alerts, one job per ticker (phase 5)',
  exampleKey: 'NOSUCHTICKER',
  verifyHelp: 'no untriggered alert holds at a fresh price that the last alerts run saw',
  scopes: ['all', 'user'],

  async source(prisma, scope, after, limit) {
    const owner = scope.kind === 'user' ? Prisma.sql`a."userId" = ${scope.id}` : Prisma.sql`TRUE`;
    const rows = await sqlRows<{ ticker: string }>(
      prisma,
      Prisma.sql`
      SELECT DISTINCT upper(trim(a.ticker)) AS ticker FROM "PriceAlert" a
       WHERE a.triggered = false AND ${owner} AND upper(trim(a.ticker)) > ${after}
       ORDER BY 1 LIMIT ${limit}`,
    );
    return rows.map((row) => row.ticker).filter((ticker) => TICKER_PATTERN.test(ticker));
  },

  isValidKey: (key) => TICKER_PATTERN.test(key),

  handle: eachItem(async (ctx, { key: ticker, runId, jobId }): Promise<ItemResult> => {
    const alerts = await ctx.prisma.$queryRaw<(AlertRule & { id: string; userId: string })[]>`
      SELECT id, "userId", "alertType", "targetPrice"::text AS "targetPrice", "percentChange"::text AS "percentChange"
        FROM "PriceAlert" WHERE upper(trim(ticker)) = ${ticker} AND triggered = false ORDER BY id`;
    if (alerts.length === 0) return { status: 'skipped', reason: `no untriggered alerts for ${ticker}` };
    const market = MarketGateway.open(ctx);
    const price = await currentPrice(ctx, market, ticker, runId, jobId);
    if (!price) return { status: 'skipped', reason: `no price for ${ticker}` };
    const positions = new Map(
      (
        await ctx.prisma.$queryRaw<(Position & { userId: string })[]>`
          SELECT p."userId", sum(i."totalQuantity")::text AS quantity,
                 sum(i."totalQuantity" * i."averageCostBasis")::text AS cost
            FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId"
           WHERE upper(trim(i.ticker)) = ${ticker} AND p."userId" = ANY(${[...new Set(alerts.map((a) => a.userId))]}::text[])
           GROUP BY p."userId"`
      ).map((row) => [row.userId, row]),
    );
    let triggered = 0;
    for (const alert of alerts) {
      const verdict = evaluateAlert(alert, price, positions.get(alert.userId) ?? null);
      if ('skip' in verdict) {
        ctx.count(runId, 'alertsNotEvaluable');
        ctx.log.info({ alertId: alert.id, reason: verdict.skip }, 'alert not evaluable');
        continue;
      }
      if (!verdict.trigger) continue;
      const flipped = await ctx.prisma.$transaction(async (tx) => {
        const [row] = await tx.$queryRaw<{ id: string }[]>`
          UPDATE "PriceAlert" SET triggered = true, "triggeredAt" = ${utcNowSql}
           WHERE id = ${alert.id} AND triggered = false RETURNING id`;
        if (!row) return false;
        const priceText = price.toFixed();
        await tx.auditLog.create({
          data: auditRecord({
            userId: alert.userId,
            action: 'TRIGGER_ALERT',
            entity: 'PriceAlert',
            entityId: alert.id,
            runId,
            jobId,
            before: { triggered: 'false' },
            after: { triggered: 'true' },
            extra: { ticker, price: priceText, rule: alert.alertType },
          }),
        });
        // Inside the transaction: if the commit fails, the alert stays untriggered and a
        // later evaluation adds the same job id again, which BullMQ treats as a duplicate.
        await notifications(ctx).add(
          'price-alert',
          {
            alertId: alert.id,
            userId: alert.userId,
            ticker,
            price: priceText,
            rule: alert.alertType,
            targetPrice: alert.targetPrice,
            percentChange: alert.percentChange,
          },
          { jobId: `alert-${alert.id}` },
        );
        return true;
      });
      if (flipped) triggered += 1;
    }
    ctx.count(runId, 'alertsTriggered', triggered);
    return triggered > 0
      ? { status: 'changed', detail: `${triggered} alert(s) of ${ticker} triggered at ${price.toFixed()}` }
      : { status: 'skipped', reason: `no alert of ${ticker} triggers at ${price.toFixed()}` };
  }),

  // The prices it refreshed; a triggered alert stays triggered (its notification has gone out).
  revertible: { Investment: { columns: { currentPrice: 'numeric' }, hasUpdatedAt: true } },

  // Missed triggers: untriggered alerts whose rule holds at a stored price
  // that is still fresh and that the last completed alerts run could see
  // (updated before it started). A price newer than that run is the next
  // run's to judge, not a miss.
  async verify(prisma) {
    const maxAgeSeconds = loadMarketConfig().priceMaxAgeMs / 1000;
    const rows = await prisma.$queryRaw<(AlertRule & { id: string; ticker: string; price: string; quantity: string | null; cost: string | null })[]>`
      WITH seen AS (
        SELECT max("startedAt") AS at FROM "FleetRun" WHERE family = 'alerts' AND status = 'COMPLETED'
      ), prices AS (
        SELECT DISTINCT ON (upper(trim(ticker))) upper(trim(ticker)) AS ticker, "currentPrice"::text AS price
          FROM "Investment", seen
         WHERE "currentPrice" IS NOT NULL AND "priceUpdatedAt" >= ${utcNowSql} - make_interval(secs => ${maxAgeSeconds})
           AND "priceUpdatedAt" <= seen.at
         ORDER BY upper(trim(ticker)), "priceUpdatedAt" DESC
      )
      SELECT a.id, p.ticker, p.price, a."alertType", a."targetPrice"::text AS "targetPrice", a."percentChange"::text AS "percentChange",
             pos.quantity, pos.cost
        FROM "PriceAlert" a JOIN prices p ON p.ticker = upper(trim(a.ticker))
        LEFT JOIN LATERAL (
          SELECT sum(i."totalQuantity")::text AS quantity, sum(i."totalQuantity" * i."averageCostBasis")::text AS cost
            FROM "Investment" i JOIN "Portfolio" o ON o.id = i."portfolioId"
           WHERE o."userId" = a."userId" AND upper(trim(i.ticker)) = p.ticker
        ) pos ON true
       WHERE a.triggered = false
       ORDER BY a.id`;
    const missed = rows.filter((row) => {
      const verdict = evaluateAlert(row, new Prisma.Decimal(row.price), row.quantity === null ? null : { quantity: row.quantity, cost: row.cost ?? '0' });
      return 'trigger' in verdict && verdict.trigger;
    });
    const [{ checked } = { checked: 0n }] = await prisma.$queryRaw<{ checked: bigint }[]>`SELECT count(*) AS checked FROM "PriceAlert"`;
    return {
      ok: missed.length === 0,
      checked: Number(checked),
      problems: missed.slice(0, 100).map((row) => ({
        id: row.id,
        problem: `${row.alertType} on ${row.ticker} holds at ${row.price} and is not triggered (tys enqueue alerts --all)`,
      })),
      problemCount: missed.length,
    };
  },

  options: { ...DEFAULT_FAMILY_OPTIONS, concurrency: 4, backoffMs: 2_000, limiter: PROVIDER_QUEUE_LIMITER },
};
