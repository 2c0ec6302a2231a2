import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DbHealth, throttleReasons } from '../src/fleet/db-health.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';

describe('database health: the write-latency rule', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  beforeAll(async () => {
    db = await createTestDatabase();
    fleet = await testFleet(db);
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await fleet?.close();
    await db?.drop();
  });

  it('holds a family whose writes got 20% slower than its baseline (and slower by the floor), and lets it go when they are not', async () => {
    let now = 1_000_000;
    vi.spyOn(Date, 'now').mockImplementation(() => now);
    const health = new DbHealth({ prisma: db.prisma, redis: fleet.context.redis, prefix: fleet.prefix, log: pino({ level: 'silent' }) }, ['lots', 'alerts'], {
      baselineMs: 1_000,
    });
    health.recordLatencies('lots', Array.from({ length: 50 }, (_, i) => 10 + (i % 5)));
    now += 1_500;
    // 25% slower but only 3 ms: noise, not a regression.
    health.recordLatencies('lots', Array.from({ length: 10 }, () => 17));
    await health.sample();
    expect(health.reason('lots')).toBeNull();
    now += 11_000; // the recent window moves on
    health.recordLatencies('lots', Array.from({ length: 10 }, () => 80));
    await health.sample();
    expect(health.reason('lots')).toBe('p95 write 80 ms > 17 ms (baseline 14 ms)');
    expect(health.reason('alerts')).toBeNull();
    expect(await throttleReasons(fleet.context.redis, fleet.prefix, ['lots', 'alerts'])).toEqual({ lots: 'p95 write 80 ms > 17 ms (baseline 14 ms)' });
    now += 11_000; // nothing written while held: the reason goes with the window
    await health.sample();
    expect(health.reason('lots')).toBeNull();
    expect(await throttleReasons(fleet.context.redis, fleet.prefix, ['lots'])).toEqual({});
  });
});
