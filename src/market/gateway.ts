import type { RedisClient } from '../redis/connection.js';
import { PermanentJobError, RateLimitedError } from '../fleet/errors.js';
import { FleetMetrics } from '../fleet/metrics.js';
import type { HandlerContext } from '../fleet/family.js';
import { AlphaVantage } from './alpha-vantage.js';
import { CallBudget } from './budget.js';
import type { MarketConfig } from '../config/market.js';
import type { MarketDataProvider, Overview, Quote } from './provider.js';

/**
 * The queue limiter of a family that calls the provider. BullMQ holds a
 * queue after `worker.rateLimit` only when the queue has a limiter; this one
 * is far above any provider budget (which CallBudget keeps) and is there so
 * that a throttle answer makes every worker wait instead of calling again.
 */
export const PROVIDER_QUEUE_LIMITER = { max: 10_000, duration: 1_000 };

/** How long a refused key (or a premium-only endpoint) stops every call, so it costs one call, not one per job. */
const REJECTED_KEY_PAUSE_MS = 10 * 60_000;

type Kind = 'overview' | 'quote';

function noDataKey(prefix: string, provider: string, kind: Kind, symbol: string): string {
  return `${prefix}:market:${provider}:nodata:${kind}:${symbol}`;
}
type Value<K extends Kind> = K extends 'overview' ? Overview : Quote;

/**
 * The families' one way to the provider: checks the shared budget before
 * every call, turns each classified answer into what the worker must do
 * (wait without spending an attempt, fail for good, retry with backoff), and
 * remembers symbols without data and refused keys in Redis for every process.
 */
export class MarketGateway {
  private readonly budget: CallBudget;

  constructor(
    private readonly ctx: HandlerContext,
    readonly config: MarketConfig,
    private readonly provider: MarketDataProvider,
  ) {
    this.budget = new CallBudget(ctx.redis, this.key('budget'), config.budget);
  }

  /** For the dashboard's metrics; a failure to record never fails the job. */
  private async recordAnswer(answerClass: string, durationMs: number): Promise<void> {
    try {
      const left = await this.budget.remaining();
      await new FleetMetrics(this.ctx.redis, this.ctx.prefix).recordProviderAnswer(this.provider.name, answerClass, durationMs, left);
    } catch (error) {
      this.ctx.log.warn({ err: (error as Error).message }, 'could not record the provider answer in the metrics');
    }
  }

  static open(ctx: HandlerContext): MarketGateway {
    const config = ctx.market;
    return new MarketGateway(ctx, config, new AlphaVantage({ baseUrl: config.baseUrl, apiKey: config.apiKey, timeoutMs: config.timeoutMs }));
  }

  /** Budget and refusals belong to an account (key); what a symbol lacks belongs to the provider. */
  private key(what: string): string {
    return `${this.ctx.prefix}:market:${this.provider.budgetId}:${what}`;
  }

  private noDataKey(kind: Kind, symbol: string): string {
    return noDataKey(this.ctx.prefix, this.provider.name, kind, symbol);
  }

  /** Of these symbols, those the configured provider recently had nothing for (for verification, which has no job context). */
  static async withoutData(redis: RedisClient, prefix: string, kind: Kind, symbols: string[]): Promise<Set<string>> {
    if (symbols.length === 0) return new Set();
    const found = await redis.pipeline(symbols.map((symbol) => ['exists', noDataKey(prefix, AlphaVantage.NAME, kind, symbol)])).exec();
    return new Set(symbols.filter((_, i) => found?.[i]?.[1] === 1));
  }

  /** True when the provider had nothing for this symbol recently: do not ask again yet. */
  async knownWithoutData(kind: Kind, symbol: string): Promise<boolean> {
    return (await this.ctx.redis.exists(this.noDataKey(kind, symbol))) === 1;
  }

  /** Remembers that the provider has nothing useful for this symbol, for the configured time. */
  async rememberWithoutData(kind: Kind, symbol: string): Promise<void> {
    await this.ctx.redis.set(this.noDataKey(kind, symbol), '1', 'PX', this.config.noDataTtlMs);
  }

  /** Where a spent daily quota is remembered, whatever the key: what the metrics read. */
  static quotaSpentKey(prefix: string): string {
    return `${prefix}:market:quota-spent`;
  }

  /** Seconds until the provider's daily quota is renewed, or 0 when it is not spent. */
  static async quotaSpentSeconds(redis: RedisClient, prefix: string): Promise<number> {
    const ms = await redis.pttl(MarketGateway.quotaSpentKey(prefix));
    return ms > 0 ? ms / 1000 : 0;
  }

  /**
   * One call, within the budget. Resolves to the value, or null when the
   * provider has no data (remembered for the configured time). `count` is
   * told of every call made (`calls`) and of a daily quota found spent
   * (`dailyQuotaReached`), for the run's figures.
   */
  async fetch<K extends Kind>(kind: K, symbol: string, count: (stat: string) => void): Promise<Value<K> | null> {
    const [refused, premium, quotaMs] = await Promise.all([
      this.ctx.redis.get(this.key('rejected')),
      this.ctx.redis.get(this.key(`premium:${kind}`)),
      this.ctx.redis.pttl(this.key('quota-spent')),
    ]);
    if (refused) throw new PermanentJobError(`market data provider refuses this account: ${refused} (calls paused; fix the key, then enqueue again)`);
    if (premium) throw new PermanentJobError(`market data provider: ${kind} needs a premium plan: ${premium} (calls to it paused)`);
    if (quotaMs > 0) throw new RateLimitedError("the key's daily quota at the provider is spent: held until its reset", quotaMs);
    const wait = await this.budget.take();
    if (wait > 0) throw new RateLimitedError(`call budget spent (${this.config.budget.max} per ${this.config.budget.windowMs} ms)`, wait);
    count('calls');
    const startedAt = Date.now();
    const answer = kind === 'overview' ? await this.provider.overview(symbol) : await this.provider.quote(symbol);
    await this.recordAnswer(answer.kind, Date.now() - startedAt);
    switch (answer.kind) {
      case 'data':
        return answer.value as Value<K>;
      case 'no-data':
        await this.rememberWithoutData(kind, symbol);
        return null;
      case 'rate-limited':
        // A text nobody has seen yet is held like a throttle: at most one call per window, never a tight loop.
        if (!answer.known) this.ctx.log.warn({ providerText: answer.message }, 'unknown provider text, held as a rate limit');
        throw new RateLimitedError(`provider rate limit: ${answer.message}`, answer.retryInMs ?? this.config.budget.windowMs);
      case 'quota-spent': {
        const untilReset = this.config.quotaResetInMs(new Date());
        await this.ctx.redis
          .multi()
          .set(this.key('quota-spent'), answer.message, 'PX', untilReset)
          .set(MarketGateway.quotaSpentKey(this.ctx.prefix), new Date(Date.now() + untilReset).toISOString(), 'PX', untilReset)
          .exec();
        count('dailyQuotaReached');
        throw new RateLimitedError(`provider daily quota spent, calls resume in ${Math.ceil(untilReset / 1000)} s: ${answer.message}`, untilReset);
      }
      case 'premium':
        await this.ctx.redis.set(this.key(`premium:${kind}`), answer.message, 'PX', REJECTED_KEY_PAUSE_MS);
        throw new PermanentJobError(`market data provider: ${kind} needs a premium plan: ${answer.message}`);
      case 'rejected':
        if (answer.key) await this.ctx.redis.set(this.key('rejected'), answer.message, 'PX', REJECTED_KEY_PAUSE_MS);
        throw new PermanentJobError(`market data provider refused ${kind} ${symbol}: ${answer.message}`);
      case 'transient':
        throw new Error(`market data provider unavailable: ${answer.message}`);
    }
  }
}
