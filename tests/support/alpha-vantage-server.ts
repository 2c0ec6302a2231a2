import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROVIDER_TEXTS, type ProviderText } from '../../src/market/provider-texts.js';

export interface OverviewFixture {
  Sector?: string;
  Industry?: string;
  Country?: string;
  MarketCapitalization?: string;
}

/** What the stand-in answers for a symbol, beyond its fixtures. */
export type Behaviour =
  | { kind: 'note'; times: number }
  | { kind: 'information'; times: number }
  | { kind: 'http'; status: number; times: number }
  | { kind: 'hang'; times: number }
  | { kind: 'garbage'; times: number }
  /** One of the provider's own texts, in its own field. */
  | { kind: 'text'; text: ProviderText; times: number };

export interface Call {
  fn: string;
  symbol: string;
  at: number;
  apikey: string | null;
  /** Answered that the key's daily quota is spent. */
  quotaSpent?: boolean;
}

/**
 * A local stand-in for Alpha Vantage that speaks its documented formats:
 * OVERVIEW (`{}` for an unknown symbol or an ETF), GLOBAL_QUOTE
 * (`{"Global Quote": {}}` for an unknown symbol), and every text of the
 * provider-text table. Like the real API it does not check keys: `validKey`
 * is a premium key without a daily quota, any other key a free one with
 * `freeDailyQuota` calls per quota period, `demo` the public demo key, and
 * no key at all an `Error Message`. It records every call it receives.
 */
export class AlphaVantageStandIn {
  readonly calls: Call[] = [];
  readonly overviews = new Map<string, OverviewFixture>();
  readonly prices = new Map<string, string>();
  readonly behaviours = new Map<string, Behaviour>();
  validKey = 'test-key-0123456789';
  /** Calls a free key may make per quota period (a UTC day at the real provider). */
  freeDailyQuota = 25;
  /** The quota period, in ms; tests shorten it. */
  quotaPeriodMs = 86_400_000;
  private readonly freeCalls = new Map<string, number[]>();
  /** Share (0 to 1) of calls, beyond the per-symbol behaviours, answered with a fault picked at random. */
  faultRate = 0;
  random: () => number = Math.random;
  /** Faults answered, by kind. */
  readonly faults: Record<Behaviour['kind'], number> = { note: 0, information: 0, http: 0, hang: 0, garbage: 0, text: 0 };
  private server: Server | null = null;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.answer(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  callsFor(fn: string, symbol?: string): Call[] {
    return this.calls.filter((c) => c.fn === fn && (symbol === undefined || c.symbol === symbol));
  }

  private randomFault(): Behaviour | null {
    if (this.faultRate <= 0 || this.random() >= this.faultRate) return null;
    const kinds: Behaviour[] = [
      { kind: 'note', times: 1 },
      { kind: 'http', status: 500 + Math.floor(this.random() * 4), times: 1 },
      { kind: 'hang', times: 1 },
      { kind: 'garbage', times: 1 },
    ];
    return kinds[Math.floor(this.random() * kinds.length)]!;
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const fn = url.searchParams.get('function') ?? '';
    const symbol = url.searchParams.get('symbol') ?? '';
    const apikey = url.searchParams.get('apikey');
    this.calls.push({ fn, symbol, at: Date.now(), apikey });
    const json = (body: unknown, status = 200) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/query') return json({ 'Error Message': 'not found' }, 404);
    if (!apikey) return json(textAnswer('key-refused', 'Error Message'));
    if (apikey === 'demo') return json(textAnswer('key-refused', 'Information'));
    if (apikey !== this.validKey) {
      const now = Date.now();
      const recent = (this.freeCalls.get(apikey) ?? []).filter((at) => now - at < this.quotaPeriodMs);
      this.freeCalls.set(apikey, recent);
      if (recent.length >= this.freeDailyQuota) {
        this.calls[this.calls.length - 1]!.quotaSpent = true;
        return json({ Information: dailyQuotaText(apikey) });
      }
      recent.push(now);
    }
    const behaviour = this.behaviours.get(symbol);
    const fault = behaviour && behaviour.times > 0 ? behaviour : this.randomFault();
    if (fault) {
      fault.times -= 1;
      this.faults[fault.kind] += 1;
      switch (fault.kind) {
        case 'note':
          return json({ Note: PROVIDER_TEXTS.find((t) => t.field === 'Note')!.example });
        case 'information':
          return json({ Information: dailyQuotaText(apikey) });
        case 'text':
          return json({ [fault.text.field]: fault.text.example });
        case 'http':
          res.writeHead(fault.status);
          return void res.end('upstream trouble');
        case 'hang':
          return; // never answers: the client's timeout must fire
        case 'garbage':
          res.writeHead(200, { 'content-type': 'text/html' });
          return void res.end('<html>maintenance</html>');
      }
    }
    if (fn === 'OVERVIEW') {
      const fixture = this.overviews.get(symbol);
      return json(fixture ? { Symbol: symbol, AssetType: 'Common Stock', Name: symbol, ...fixture } : {});
    }
    if (fn === 'GLOBAL_QUOTE') {
      const price = this.prices.get(symbol);
      return json(
        price
          ? { 'Global Quote': { '01. symbol': symbol, '02. open': price, '05. price': price, '07. latest trading day': '2026-11-24' } }
          : { 'Global Quote': {} },
      );
    }
    return json({
      'Error Message': 'Invalid API call. Please retry or visit the documentation (https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY.',
    });
  }
}

function textAnswer(meaning: ProviderText['meaning'], field: ProviderText['field']): Record<string, string> {
  return { [field]: PROVIDER_TEXTS.find((t) => t.meaning === meaning && t.field === field)!.example };
}

/** The real daily-quota text quotes the key it was asked with. */
function dailyQuotaText(apikey: string): string {
  return `Thank you for using Alpha Vantage! We have detected your API key as ${apikey} and our standard API rate limit is 25 requests per day. Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly remove all daily rate limits.`;
}
