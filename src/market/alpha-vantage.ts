import { createHash } from 'node:crypto';
import {
  decimalOrNull,
  textOrNull,
  type MarketDataProvider,
  type Overview,
  type ProviderAnswer,
  type Quote,
} from './provider.js';

export interface AlphaVantageOptions {
  /** Default https://www.alphavantage.co (ALPHA_VANTAGE_BASE_URL). */
  baseUrl?: string;
  /** ALPHA_VANTAGE_API_KEY; a missing key is a rejected call, made without asking the network. */
  apiKey?: string;
  /** Per request, in ms. Default 10,000. */
  timeoutMs?: number;
}

const RATE_LIMIT_TEXT = /call frequency|rate limit|requests per (minute|day)|per day|premium plan|higher api call/i;
const KEY_TEXT = /api ?key/i;

/**
 * Alpha Vantage's OVERVIEW and GLOBAL_QUOTE. Answers arrive as HTTP 200 in
 * every case that is not a server failure, so the body is what says what
 * happened: `{}` or `{"Global Quote": {}}` for an unknown symbol, `Note` or
 * `Information` for rate limits, `Error Message` for a bad key or call.
 */
export class AlphaVantage implements MarketDataProvider {
  readonly name = 'alphavantage';
  readonly budgetId: string;
  private readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: AlphaVantageOptions = {}) {
    this.baseUrl = (options.baseUrl ?? 'https://www.alphavantage.co').replace(/\/+$/, '');
    this.apiKey = options.apiKey || undefined;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.budgetId = `${this.name}-${createHash('sha256').update(this.apiKey ?? '').digest('hex').slice(0, 12)}`;
  }

  async overview(symbol: string): Promise<ProviderAnswer<Overview>> {
    const answer = await this.call('OVERVIEW', symbol);
    if (answer.kind !== 'body') return answer;
    const body = answer.body;
    if (Object.keys(body).length === 0) return { kind: 'no-data' };
    if (typeof body.Symbol !== 'string') return { kind: 'transient', message: 'OVERVIEW answer without Symbol' };
    return {
      kind: 'data',
      value: {
        symbol,
        sector: textOrNull(body.Sector),
        industry: textOrNull(body.Industry),
        country: textOrNull(body.Country),
        marketCap: decimalOrNull(body.MarketCapitalization),
      },
    };
  }

  async quote(symbol: string): Promise<ProviderAnswer<Quote>> {
    const answer = await this.call('GLOBAL_QUOTE', symbol);
    if (answer.kind !== 'body') return answer;
    const quote = answer.body['Global Quote'];
    if (quote === undefined || quote === null || typeof quote !== 'object') {
      return { kind: 'transient', message: 'GLOBAL_QUOTE answer without "Global Quote"' };
    }
    const price = decimalOrNull((quote as Record<string, unknown>)['05. price']);
    if (Object.keys(quote).length === 0 || price === null) return { kind: 'no-data' };
    if (price.lt(0)) return { kind: 'transient', message: `GLOBAL_QUOTE price ${price.toFixed()} is negative` };
    return { kind: 'data', value: { symbol, price } };
  }

  private async call(
    fn: 'OVERVIEW' | 'GLOBAL_QUOTE',
    symbol: string,
  ): Promise<{ kind: 'body'; body: Record<string, unknown> } | Exclude<ProviderAnswer<never>, { kind: 'data' } | { kind: 'no-data' }>> {
    if (!this.apiKey) return { kind: 'rejected', message: 'ALPHA_VANTAGE_API_KEY is not set' };
    const url = new URL(`${this.baseUrl}/query`);
    url.searchParams.set('function', fn);
    url.searchParams.set('symbol', symbol);
    url.searchParams.set('apikey', this.apiKey);
    let response: Response;
    try {
      response = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      const reason = (error as Error).name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (error as Error).message;
      return { kind: 'transient', message: `${fn} ${symbol}: ${reason}` };
    }
    if (response.status === 429) return { kind: 'rate-limited', message: `${fn} ${symbol}: HTTP 429` };
    if (response.status >= 500) return { kind: 'transient', message: `${fn} ${symbol}: HTTP ${response.status}` };
    if (!response.ok) return { kind: 'rejected', message: `${fn} ${symbol}: HTTP ${response.status}` };
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      return { kind: 'transient', message: `${fn} ${symbol}: the answer is not JSON` };
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return { kind: 'transient', message: `${fn} ${symbol}: the answer is not a JSON object` };
    }
    const record = body as Record<string, unknown>;
    const message = [record['Error Message'], record.Note, record.Information].find((m): m is string => typeof m === 'string');
    if (typeof record['Error Message'] === 'string') return { kind: 'rejected', message: this.scrub(record['Error Message']) };
    if (message !== undefined) {
      if (KEY_TEXT.test(message) && /invalid|missing/i.test(message)) return { kind: 'rejected', message: this.scrub(message) };
      if (RATE_LIMIT_TEXT.test(message)) return { kind: 'rate-limited', message: this.scrub(message) };
      return { kind: 'rejected', message: this.scrub(message) };
    }
    return { kind: 'body', body: record };
  }

  /** Provider messages sometimes quote the request; the key must never travel on into logs or job records. */
  private scrub(message: string): string {
    return this.apiKey ? message.split(this.apiKey).join('[redacted]') : message;
  }
}
