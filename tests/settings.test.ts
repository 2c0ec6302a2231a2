import { describe, expect, it } from 'vitest';
import { durationText } from '../src/config/duration.js';
import { loadConfig } from '../src/config/env.js';
import { loadMarketConfig } from '../src/config/market.js';
import { ConfigError, integer, readSettings, refine, textSetting, url, verbatim } from '../src/config/settings.js';

describe('settings read from the environment', () => {
  const shape = {
    COUNT: integer(1, 10),
    TARGET: refine(url(['https:']), 'must have no path', (text) => new URL(text).pathname === '/'),
    SECRET: verbatim(12),
    MODE: textSetting('must be fast or slow', (text) => (text === 'fast' || text === 'slow' ? text : undefined)),
  };

  it('reads each setting, leaving the unset and the blank undefined, and ignores variables outside the shape', () => {
    expect(readSettings(shape, { COUNT: ' 7 ', TARGET: '', SECRET: '  spaced out  ', OTHER: 'x' })).toEqual({
      COUNT: 7,
      SECRET: '  spaced out  ',
    });
    expect(readSettings(shape, { MODE: 'fast', TARGET: 'https://example.test' })).toEqual({ MODE: 'fast', TARGET: 'https://example.test' });
  });

  it('refuses the first broken setting in the shape order, with one line naming it', () => {
    const read = (env: NodeJS.ProcessEnv) => {
      try {
        readSettings(shape, env);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error('no error');
    };
    expect(read({ MODE: 'medium', COUNT: '11' })).toBe('COUNT must be an integer from 1 to 10, got "11"');
    expect(read({ MODE: 'medium' })).toBe('MODE must be fast or slow, got "medium"');
    expect(read({ MODE: 'x'.repeat(200) })).toBe(`MODE must be fast or slow, got "${'x'.repeat(80)}"`);
    // URLs and verbatim text (passwords, tokens) are never quoted.
    expect(read({ TARGET: 'ftp://user:hunter2@host' })).toBe('TARGET must be a URL starting with https://');
    expect(read({ TARGET: 'https://user:hunter2@host/path' })).toBe('TARGET must have no path');
    expect(read({ SECRET: 'hunter2' })).toBe('SECRET must be at least 12 characters');
  });

  it("gives the fleet's and the market's defaults for what is unset, and their one-line errors for what is wrong", () => {
    expect(loadConfig({})).toMatchObject({ redisUrl: 'redis://127.0.0.1:6379', queuePrefix: 'tys' });
    expect(() => loadConfig({ REDIS_URL: 'redis://:pw@host:6379/cache' })).toThrow(/^REDIS_URL must name its database as a number \(redis:\/\/host:port\/3\)$/);
    // Prisma's schema parameter names where the application's tables are; the fleet's SQL would change public's instead.
    expect(() => loadConfig({ DATABASE_URL: 'postgresql://app:secret@db:5432/tys?schema=app&sslmode=require' })).toThrow(
      /^DATABASE_URL must not name a schema other than public \(\?schema=\): the fleet works on the public schema's tables$/,
    );
    for (const ok of ['postgresql://db/tys?schema=public', 'postgresql://db/tys?sslmode=require', 'postgres://db/tys'])
      expect(loadConfig({ DATABASE_URL: ok }).databaseUrl).toBe(ok);
    const market = loadMarketConfig({ MARKET_DATA_QUOTA_RESET: '6h', ALPHA_VANTAGE_API_KEY: ' key ' });
    expect(market.quotaResetInMs(new Date())).toBe(6 * 3_600_000);
    expect(market.apiKey).toBe(' key ');
    expect(() => loadMarketConfig({ MARKET_DATA_QUOTA_RESET: 'soon' })).toThrow(
      /^MARKET_DATA_QUOTA_RESET must be utc-midnight or a duration like 24h, got "soon"$/,
    );
  });
});

describe('durationText', () => {
  it.each([
    [0, 1, '0 s'],
    [999, 2, '0 s'],
    [45_000, 2, '45 s'],
    [192_000, 2, '3 min 12 s'],
    [192_000, 1, '3 min'],
    [7_200_000, 2, '2 h'],
    [7_500_000, 2, '2 h 5 min'],
    [90_061_000, 2, '1 d 1 h'],
    [-5_000, 2, '0 s'],
  ])('says %i ms in %i unit(s) as "%s"', (ms, parts, text) => {
    expect(durationText(ms, parts)).toBe(text);
  });
});
