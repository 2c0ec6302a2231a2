import { createHash } from 'node:crypto';
import { decimalOrNull, textOrNull, type MarketDataProvider, type Overview, type ProviderAnswer, type Quote } from './provider.js';
import { meaningOf, type ProviderText } from './provider-texts.js';

type Failure = Exclude<ProviderAnswer<never>, { kind: 'data' } | { kind: 'no-data' }>;

export interface AlphaVantageOptions {
  /** Default https://www.alphavantage.co (ALPHA_VANTAGE_BASE_URL). */
  baseUrl?: string;
  /** ALPHA_VANTAGE_API_KEY; a missing key is a rejected call, made without asking the network. */
  apiKey?: string;
  /** Per request, in ms. Default 10,000. */
  timeoutMs?: number;
}

/**
 * Alpha Vantage's OVERVIEW and GLOBAL_QUOTE. Answers arrive as HTTP 200 in
 * every case that is not a server failure, so the body is what says what
 * happened: `{}` or `{"Global Quote": {}}` for an unknown symbol, `Note` or
 * `Information` for limits, `Error Message` for a bad call: their texts
 * are read by the table in provider-texts.ts.
 */
export class AlphaVantage implements MarketDataProvider {
  /** The provider's name in Redis keys and metrics. */
  static readonly NAME = 'alphavantage';
  readonly name = AlphaVantage.NAME;
  readonly budgetId: string;
  private readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: AlphaVantageOptions = {}) {
    this.baseUrl = (options.baseUrl ?? 'https://www.alphavantage.co').replace(/\/+$/, '');
    this.apiKey = options.apiKey || undefined;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.budgetId = `${this.name}-${createHash('sha256')
      .update(this.apiKey ?? '')
      .digest('hex')
      .slice(0, 12)}`;
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
    // A zero or negative price is no price (a delisted or halted symbol): never a reason to trigger an alert.
    if (price.lte(0)) return { kind: 'no-data' };
    return { kind: 'data', value: { symbol, price } };
  }

  private async call(fn: 'OVERVIEW' | 'GLOBAL_QUOTE', symbol: string): Promise<{ kind: 'body'; body: Record<string, unknown> } | Failure> {
    if (!this.apiKey) return { kind: 'rejected', message: 'ALPHA_VANTAGE_API_KEY is not set', key: true };
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
    if (response.status === 429) return { kind: 'rate-limited', message: `${fn} ${symbol}: HTTP 429`, known: true };
    if (response.status >= 500) return { kind: 'transient', message: `${fn} ${symbol}: HTTP ${response.status}` };
    if (!response.ok) return { kind: 'rejected', message: `${fn} ${symbol}: HTTP ${response.status}`, key: false };
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
    for (const field of ['Error Message', 'Note', 'Information'] as const) {
      const text = record[field];
      if (typeof text === 'string') return this.failure(meaningOf(field, text), this.scrub(text));
    }
    return { kind: 'body', body: record };
  }

  private failure(known: ProviderText | null, message: string): Failure {
    if (!known) return { kind: 'rate-limited', message, known: false };
    switch (known.meaning) {
      case 'throttled':
        return { kind: 'rate-limited', message, retryInMs: known.retryInMs, known: true };
      case 'daily-quota':
        return { kind: 'quota-spent', message };
      case 'premium':
        return { kind: 'premium', message };
      case 'key-refused':
        return { kind: 'rejected', message, key: true };
      case 'invalid-call':
        return { kind: 'rejected', message, key: false };
    }
  }

  /** Provider messages sometimes quote the request, the key as given or URL-encoded; it must never travel on into logs or job records. */
  private scrub(message: string): string {
    if (!this.apiKey) return message;
    const forms = new Set([this.apiKey, encodeURIComponent(this.apiKey), new URLSearchParams({ k: this.apiKey }).toString().slice(2)]);
    return [...forms].reduce((text, form) => text.split(form).join('[redacted]'), message);
  }
}
