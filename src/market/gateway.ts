import { PermanentJobError, RateLimitedError } from '../fleet/errors.js';
import type { HandlerContext } from '../fleet/family.js';
import { AlphaVantage } from './alpha-vantage.js';
import { CallBudget } from './budget.js';
import { loadMarketConfig, type MarketConfig } from './config.js';
import type { MarketDataProvider, Overview, Quote } from './provider.js';

/** How long a refused key stops every call, so a bad key costs one call, not one per job. */
const REJECTED_KEY_PAUSE_MS = 10 * 60_000;

type Kind = 'overview' | 'quote';
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

  static open(ctx: HandlerContext): MarketGateway {
    const config = loadMarketConfig();
    return new MarketGateway(ctx, config, new AlphaVantage({ baseUrl: config.baseUrl, apiKey: config.apiKey, timeoutMs: config.timeoutMs }));
  }

  /** Budget and refusals belong to an account (key); what a symbol lacks belongs to the provider. */
  private key(what: string): string {
    return `${this.ctx.prefix}:market:${this.provider.budgetId}:${what}`;
  }

  private noDataKey(kind: Kind, symbol: string): string {
    return `${this.ctx.prefix}:market:${this.provider.name}:nodata:${kind}:${symbol}`;
  }

  /** True when the provider had nothing for this symbol recently: do not ask again yet. */
  async knownWithoutData(kind: Kind, symbol: string): Promise<boolean> {
    return (await this.ctx.redis.exists(this.noDataKey(kind, symbol))) === 1;
  }

  /** Remembers that the provider has nothing useful for this symbol, for the configured time. */
  async rememberWithoutData(kind: Kind, symbol: string): Promise<void> {
    await this.ctx.redis.set(this.noDataKey(kind, symbol), '1', 'PX', this.config.noDataTtlMs);
  }

  /**
   * One call, within the budget. Resolves to the value, or null when the
   * provider has no data (remembered for the configured time). `onCall` is
   * told of every call actually made.
   */
  async fetch<K extends Kind>(kind: K, symbol: string, onCall: () => void): Promise<Value<K> | null> {
    const refused = await this.ctx.redis.get(this.key('rejected'));
    if (refused) throw new PermanentJobError(`market data provider refuses this account: ${refused} (calls paused; fix the key, then enqueue again)`);
    const wait = await this.budget.take();
    if (wait > 0) throw new RateLimitedError(`call budget spent (${this.config.budget.max} per ${this.config.budget.windowMs} ms)`, wait);
    onCall();
    const answer = kind === 'overview' ? await this.provider.overview(symbol) : await this.provider.quote(symbol);
    switch (answer.kind) {
      case 'data':
        return answer.value as Value<K>;
      case 'no-data':
        await this.rememberWithoutData(kind, symbol);
        return null;
      case 'rate-limited':
        throw new RateLimitedError(`provider rate limit: ${answer.message}`, this.config.budget.windowMs);
      case 'rejected':
        if (/api ?key/i.test(answer.message)) {
          await this.ctx.redis.set(this.key('rejected'), answer.message, 'PX', REJECTED_KEY_PAUSE_MS);
        }
        throw new PermanentJobError(`market data provider refused ${kind} ${symbol}: ${answer.message}`);
      case 'transient':
        throw new Error(`market data provider unavailable: ${answer.message}`);
    }
  }
}
