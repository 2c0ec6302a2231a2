import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlphaVantage } from '../src/market/alpha-vantage.js';
import { parseRate } from '../src/market/budget.js';
import { AlphaVantageStandIn } from './support/alpha-vantage-server.js';

describe('Alpha Vantage provider: every answer classified', () => {
  let server: AlphaVantageStandIn;
  let provider: AlphaVantage;
  beforeAll(async () => {
    server = await new AlphaVantageStandIn().start();
    provider = new AlphaVantage({ baseUrl: server.url, apiKey: server.validKey, timeoutMs: 300 });
    server.overviews.set('IBM', { Sector: 'TECHNOLOGY', Industry: 'None', Country: '-', MarketCapitalization: '123456789012345678' });
    server.overviews.set('EMPTY', { Sector: '', MarketCapitalization: 'None' });
    server.prices.set('IBM', '221.47000000');
  });
  afterAll(async () => server?.stop());

  it('reads data, with "None", "-" and empty as null and numbers as exact decimals', async () => {
    const answer = await provider.overview('IBM');
    expect(answer.kind).toBe('data');
    if (answer.kind !== 'data') return;
    expect(answer.value).toMatchObject({ sector: 'TECHNOLOGY', industry: null, country: null });
    expect(answer.value.marketCap!.toFixed()).toBe('123456789012345678');
    const empty = await provider.overview('EMPTY');
    expect(empty).toEqual({ kind: 'data', value: { symbol: 'EMPTY', sector: null, industry: null, country: null, marketCap: null } });
    const quote = await provider.quote('IBM');
    expect(quote.kind === 'data' && quote.value.price.toFixed(8)).toBe('221.47000000');
  });

  it('says "no data" for {} (unknown symbols, ETFs) and an empty Global Quote', async () => {
    expect(await provider.overview('VTI')).toEqual({ kind: 'no-data' });
    expect(await provider.quote('NOPE')).toEqual({ kind: 'no-data' });
  });

  it('recognises the rate-limit payloads, and never repeats the key', async () => {
    server.behaviours.set('RL1', { kind: 'note', times: 1 });
    server.behaviours.set('RL2', { kind: 'information', times: 1 });
    expect(await provider.overview('RL1')).toMatchObject({ kind: 'rate-limited', message: expect.stringMatching(/call frequency/) });
    const info = await provider.quote('RL2');
    expect(info).toMatchObject({ kind: 'rate-limited', message: expect.stringMatching(/25 requests per day/) });
    expect(JSON.stringify(info)).not.toContain(server.validKey);
  });

  it('rejects a wrong key, and a missing key without calling at all', async () => {
    const wrong = new AlphaVantage({ baseUrl: server.url, apiKey: 'wrong-key' });
    expect(await wrong.overview('IBM')).toMatchObject({ kind: 'rejected', message: expect.stringMatching(/apikey is invalid or missing/) });
    const before = server.calls.length;
    expect(await new AlphaVantage({ baseUrl: server.url }).overview('IBM')).toEqual({ kind: 'rejected', message: 'ALPHA_VANTAGE_API_KEY is not set' });
    expect(server.calls.length).toBe(before);
  });

  it('calls server errors, timeouts, garbage and refused connections transient', async () => {
    server.behaviours.set('E500', { kind: 'http', status: 503, times: 1 });
    server.behaviours.set('SLOW', { kind: 'hang', times: 1 });
    server.behaviours.set('JUNK', { kind: 'garbage', times: 1 });
    expect(await provider.overview('E500')).toMatchObject({ kind: 'transient', message: expect.stringMatching(/HTTP 503/) });
    expect(await provider.overview('SLOW')).toMatchObject({ kind: 'transient', message: expect.stringMatching(/no answer within 300 ms/) });
    expect(await provider.overview('JUNK')).toMatchObject({ kind: 'transient', message: expect.stringMatching(/not JSON/) });
    const down = new AlphaVantage({ baseUrl: 'http://127.0.0.1:1', apiKey: 'k' });
    expect((await down.quote('IBM')).kind).toBe('transient');
  });

  it('parses budgets like the document\'s 5/60s', () => {
    expect(parseRate('5/60s')).toEqual({ max: 5, windowMs: 60_000 });
    expect(parseRate('75/1m')).toEqual({ max: 75, windowMs: 60_000 });
    expect(parseRate('3/s')).toEqual({ max: 3, windowMs: 1_000 });
    expect(() => parseRate('five a minute')).toThrow(/must look like/);
  });
});
