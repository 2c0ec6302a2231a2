import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlphaVantage } from '../src/market/alpha-vantage.js';
import { parseRate } from '../src/config/rate.js';
import { PROVIDER_TEXTS } from '../src/market/provider-texts.js';
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

  it('classifies every provider text of the table by what it means, and never repeats the key', async () => {
    const expected = { throttled: 'rate-limited', 'daily-quota': 'quota-spent', premium: 'premium', 'key-refused': 'rejected', 'invalid-call': 'rejected' };
    for (const [i, text] of PROVIDER_TEXTS.entries()) {
      server.behaviours.set(`T${i}`, { kind: 'text', text, times: 1 });
      const answer = await provider.overview(`T${i}`);
      expect(answer.kind, text.example).toBe(expected[text.meaning]);
      if (answer.kind === 'rate-limited') expect(answer).toMatchObject({ known: true, retryInMs: text.retryInMs });
      if (answer.kind === 'rejected') expect(answer.key, text.example).toBe(text.meaning === 'key-refused');
    }
    server.behaviours.set('RL2', { kind: 'information', times: 1 });
    const daily = await provider.quote('RL2');
    expect(daily).toMatchObject({
      kind: 'quota-spent',
      message: expect.stringMatching(/detected your API key as \[redacted\] and our standard API rate limit is 25 requests per day/),
    });
    expect(JSON.stringify(daily)).not.toContain(server.validKey);
  });

  it('never repeats the key URL-encoded either, as a provider quoting its request would', async () => {
    const saved = server.validKey;
    server.validKey = 'a+key/with=signs0123';
    try {
      const keyed = new AlphaVantage({ baseUrl: server.url, apiKey: server.validKey, timeoutMs: 300 });
      const premium = PROVIDER_TEXTS.find((text) => text.meaning === 'premium')!;
      const quoted = `${premium.example} (request: function=OVERVIEW&apikey=${encodeURIComponent(server.validKey)})`;
      server.behaviours.set('ENC', { kind: 'text', text: { ...premium, example: quoted }, times: 1 });
      const answer = JSON.stringify(await keyed.overview('ENC'));
      expect(answer).toContain('apikey=[redacted]');
      expect(answer).not.toContain(encodeURIComponent(server.validKey));
    } finally {
      server.validKey = saved;
    }
  });

  it('holds an unknown Note or Information text as a rate limit, flagged unknown', async () => {
    server.behaviours.set('ODD', {
      kind: 'text',
      text: { meaning: 'throttled', field: 'Note', pattern: /x/, example: 'Something new from the provider.' },
      times: 1,
    });
    expect(await provider.overview('ODD')).toEqual({ kind: 'rate-limited', message: 'Something new from the provider.', known: false });
  });

  it('takes a mistyped key for a free one, as the real API does, until its daily quota is spent; refuses the demo key and no key', async () => {
    const free = new AlphaVantage({ baseUrl: server.url, apiKey: 'mistyped-key' });
    server.freeDailyQuota = 2;
    try {
      expect((await free.quote('IBM')).kind).toBe('data');
      expect((await free.quote('IBM')).kind).toBe('data');
      expect(await free.quote('IBM')).toMatchObject({ kind: 'quota-spent', message: expect.not.stringContaining('mistyped-key') });
    } finally {
      server.freeDailyQuota = 25;
    }
    expect(await new AlphaVantage({ baseUrl: server.url, apiKey: 'demo' }).overview('IBM')).toMatchObject({ kind: 'rejected', key: true });
    const before = server.calls.length;
    expect(await new AlphaVantage({ baseUrl: server.url }).overview('IBM')).toEqual({
      kind: 'rejected',
      message: 'ALPHA_VANTAGE_API_KEY is not set',
      key: true,
    });
    expect(server.calls.length).toBe(before);
  });

  it('uses only positive prices: a quote of zero is no data', async () => {
    server.prices.set('ZERO', '0.0000');
    expect(await provider.quote('ZERO')).toEqual({ kind: 'no-data' });
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

  it("parses budgets like the document's 5/60s", () => {
    expect(parseRate('5/60s')).toEqual({ max: 5, windowMs: 60_000 });
    expect(parseRate('75/1m')).toEqual({ max: 75, windowMs: 60_000 });
    expect(parseRate('3/s')).toEqual({ max: 3, windowMs: 1_000 });
    expect(() => parseRate('five a minute')).toThrow(/must look like/);
  });
});
