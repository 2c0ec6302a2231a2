import { Prisma } from '../db/prisma.js';

export interface Overview {
  symbol: string;
  sector: string | null;
  industry: string | null;
  country: string | null;
  marketCap: Prisma.Decimal | null;
}

export interface Quote {
  symbol: string;
  price: Prisma.Decimal;
}

/** Every answer of a provider, classified. */
export type ProviderAnswer<T> =
  | { kind: 'data'; value: T }
  /** The provider knows nothing about the symbol (not an error; ask again much later). */
  | { kind: 'no-data' }
  /**
   * The provider asks to slow down: call again after `retryInMs` (or the
   * budget's window). `known` is false for a text the provider-text table
   * does not know, held as a throttle to be safe.
   */
  | { kind: 'rate-limited'; message: string; retryInMs?: number; known: boolean }
  /** The key's calls for the day are spent: no call until the provider's daily reset. */
  | { kind: 'quota-spent'; message: string }
  /** The endpoint needs a plan the key does not have: configuration, not load. */
  | { kind: 'premium'; message: string }
  /** The request itself is refused: no usable key, invalid call. Retrying cannot help. */
  | { kind: 'rejected'; message: string; key: boolean }
  /** Server error, timeout, connection error, unreadable answer: retrying may help. */
  | { kind: 'transient'; message: string };

/** A market-data provider: what the metadata and alerts families need of one. */
export interface MarketDataProvider {
  /** The provider: what it knows about symbols is shared by all its accounts. */
  readonly name: string;
  /** Identifies the account whose budget calls spend (never the key itself). */
  readonly budgetId: string;
  overview(symbol: string): Promise<ProviderAnswer<Overview>>;
  quote(symbol: string): Promise<ProviderAnswer<Quote>>;
}

/** The one normal form of a ticker, everywhere: trimmed, upper case. */
export function normalizeTicker(ticker: string): string {
  return ticker.trim().toUpperCase();
}

export const TICKER_PATTERN = /^[A-Z0-9][A-Z0-9.\-=^]{0,19}$/;

/** Provider strings: "None", "-", empty or absent mean unknown. */
export function textOrNull(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const text = value.trim();
  return text === '' || text === '-' || text.toLowerCase() === 'none' ? null : text;
}

/** A decimal string, exactly, or null when unknown or not a plain number. */
export function decimalOrNull(value: unknown): Prisma.Decimal | null {
  const text = textOrNull(value);
  return text !== null && /^-?\d+(\.\d+)?$/.test(text) ? new Prisma.Decimal(text) : null;
}
