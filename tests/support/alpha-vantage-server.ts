import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

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
  | { kind: 'garbage'; times: number };

export interface Call {
  fn: string;
  symbol: string;
  at: number;
  apikey: string | null;
}

/**
 * A local stand-in for Alpha Vantage that speaks its documented formats:
 * OVERVIEW (`{}` for an unknown symbol or an ETF), GLOBAL_QUOTE
 * (`{"Global Quote": {}}` for an unknown symbol), the `Note` / `Information`
 * rate-limit payloads, and `Error Message` for a bad key. It records every
 * call it receives.
 */
export class AlphaVantageStandIn {
  readonly calls: Call[] = [];
  readonly overviews = new Map<string, OverviewFixture>();
  readonly prices = new Map<string, string>();
  readonly behaviours = new Map<string, Behaviour>();
  validKey = 'test-key-0123456789';
  /** Share (0 to 1) of calls, beyond the per-symbol behaviours, answered with a fault picked at random. */
  faultRate = 0;
  random: () => number = Math.random;
  /** Faults answered, by kind. */
  readonly faults: Record<Behaviour['kind'], number> = { note: 0, information: 0, http: 0, hang: 0, garbage: 0 };
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
    if (apikey !== this.validKey) {
      return json({ 'Error Message': 'the parameter apikey is invalid or missing. Please claim your free API key on (https://www.alphavantage.co/support/#api-key).' });
    }
    const behaviour = this.behaviours.get(symbol);
    const fault = behaviour && behaviour.times > 0 ? behaviour : this.randomFault();
    if (fault) {
      fault.times -= 1;
      this.faults[fault.kind] += 1;
      switch (fault.kind) {
        case 'note':
          return json({ Note: 'Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls per day.' });
        case 'information':
          return json({ Information: 'We have detected your API key as ' + apikey + ' and our standard API rate limit is 25 requests per day.' });
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
    return json({ 'Error Message': 'Invalid API call. Please retry or visit the documentation (https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY.' });
  }
}
