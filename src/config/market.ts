import type { BudgetLimits } from './rate.js';
import { parseDuration } from './duration.js';
import { duration, integer, rate, readSettings, textSetting, verbatim, url, type SettingsShape } from './settings.js';

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

const MARKET_SETTINGS = {
  ALPHA_VANTAGE_BASE_URL: url(['https:', 'http:']),
  ALPHA_VANTAGE_API_KEY: verbatim(),
  ALPHA_VANTAGE_TIMEOUT_MS: integer(1, 2 ** 31 - 1),
  MARKET_DATA_RATE_LIMIT: rate(),
  MARKET_DATA_DAILY_LIMIT: integer(1, 1e9),
  MARKET_DATA_NO_DATA_TTL: duration(),
  ALERT_PRICE_MAX_AGE: duration(),
  // `utc-midnight` (Alpha Vantage's) or a duration, for providers whose spent quota comes back after a fixed time.
  MARKET_DATA_QUOTA_RESET: textSetting('must be utc-midnight or a duration like 24h', (text) =>
    text === 'utc-midnight' ? text : (parseDuration(text) ?? undefined),
  ),
} satisfies SettingsShape;

/** Market-data settings from the environment, checked when workers start. */
export function loadMarketConfig(env: NodeJS.ProcessEnv = process.env): MarketConfig {
  const settings = readSettings(MARKET_SETTINGS, env);
  const reset = settings.MARKET_DATA_QUOTA_RESET;
  return {
    baseUrl: settings.ALPHA_VANTAGE_BASE_URL ?? 'https://www.alphavantage.co',
    apiKey: settings.ALPHA_VANTAGE_API_KEY,
    timeoutMs: settings.ALPHA_VANTAGE_TIMEOUT_MS ?? 10_000,
    budget: { ...(settings.MARKET_DATA_RATE_LIMIT ?? { max: 5, windowMs: 60_000 }), daily: settings.MARKET_DATA_DAILY_LIMIT },
    noDataTtlMs: settings.MARKET_DATA_NO_DATA_TTL ?? 168 * 3_600_000,
    priceMaxAgeMs: settings.ALERT_PRICE_MAX_AGE ?? 15 * 60_000,
    quotaResetInMs: reset === undefined || reset === 'utc-midnight' ? untilUtcMidnight : () => reset,
  };
}
