import { ConfigError } from './env.js';
import { parseDuration } from './duration.js';
import { parseRate, type BudgetLimits } from './rate.js';

export interface MarketConfig {
  baseUrl: string;
  /** Never logged, never put in job data. */
  apiKey: string | undefined;
  timeoutMs: number;
  budget: BudgetLimits;
  /** How long a ticker without data is not asked about again. */
  noDataTtlMs: number;
  /** A stored price younger than this is used instead of a quote call. */
  priceMaxAgeMs: number;
  /** How long from `now` until the provider's daily quota is renewed. Default: until the next UTC midnight. */
  quotaResetInMs(now: Date): number;
}

/** Alpha Vantage renews daily quotas at midnight UTC. */
export function untilUtcMidnight(now: Date): number {
  return Math.max(1_000, Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1) - now.getTime());
}

function duration(name: string, value: string | undefined, fallback: string): number {
  const ms = parseDuration(value || fallback);
  if (ms === null) throw new ConfigError(`${name} must look like 30s, 15m or 24h, got "${value}"`);
  return ms;
}

/**
 * MARKET_DATA_QUOTA_RESET: `utc-midnight` (the default, Alpha Vantage's) or
 * a duration for providers whose spent quota comes back after a fixed time.
 */
function quotaReset(value: string | undefined): (now: Date) => number {
  if (!value || value === 'utc-midnight') return untilUtcMidnight;
  const ms = duration('MARKET_DATA_QUOTA_RESET', value, value);
  return () => ms;
}

/** Market-data settings from the environment, checked when a family that calls the provider starts. */
export function loadMarketConfig(env: NodeJS.ProcessEnv = process.env): MarketConfig {
  let rate;
  try {
    rate = parseRate(env.MARKET_DATA_RATE_LIMIT || '5/60s');
  } catch (error) {
    throw new ConfigError(`MARKET_DATA_RATE_LIMIT: ${(error as Error).message}`);
  }
  const daily = env.MARKET_DATA_DAILY_LIMIT ? Number(env.MARKET_DATA_DAILY_LIMIT) : undefined;
  if (daily !== undefined && (!Number.isInteger(daily) || daily < 1)) {
    throw new ConfigError(`MARKET_DATA_DAILY_LIMIT must be a positive integer, got "${env.MARKET_DATA_DAILY_LIMIT}"`);
  }
  const timeoutMs = Number(env.ALPHA_VANTAGE_TIMEOUT_MS || 10_000);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new ConfigError('ALPHA_VANTAGE_TIMEOUT_MS must be a positive integer');
  return {
    baseUrl: env.ALPHA_VANTAGE_BASE_URL || 'https://www.alphavantage.co',
    apiKey: env.ALPHA_VANTAGE_API_KEY || undefined,
    timeoutMs,
    budget: { ...rate, daily },
    noDataTtlMs: duration('MARKET_DATA_NO_DATA_TTL', env.MARKET_DATA_NO_DATA_TTL, '168h'),
    priceMaxAgeMs: duration('ALERT_PRICE_MAX_AGE', env.ALERT_PRICE_MAX_AGE, '15m'),
    quotaResetInMs: quotaReset(env.MARKET_DATA_QUOTA_RESET),
  };
}
