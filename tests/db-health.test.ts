import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import pg from 'pg';
import { DbHealth, throttleReasons } from '../src/fleet/db-health.js';
import { until } from './support/processes.js';
import { ReplicatedPostgres } from './support/replicated-postgres.js';
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

  it('holds every family while a trivial query takes longer than the probe limit: the server is short of CPU', async () => {
    const health = new DbHealth({ prisma: db.prisma, redis: fleet.context.redis, prefix: fleet.prefix, log: pino({ level: 'silent' }) }, ['lots'], {
      probeMs: 0.001,
    });
    await health.sample();
    expect(health.reason('lots')).toMatch(/^a trivial query took \d+ ms \(limit 0\.001 ms\): the server is short of CPU$/);
    expect(await throttleReasons(fleet.context.redis, fleet.prefix, ['lots'])).toEqual({ lots: health.reason('lots') });
    const relaxed = new DbHealth({ prisma: db.prisma, redis: fleet.context.redis, prefix: fleet.prefix, log: pino({ level: 'silent' }) }, ['lots'], {
      probeMs: 60_000,
    });
    await relaxed.sample();
    expect(relaxed.reason('lots')).toBeNull();
  });

  it('holds a family whose writes got 20% slower than its baseline (and slower by the floor), and lets it go when they are not', async () => {
    let now = 1_000_000;
    vi.spyOn(Date, 'now').mockImplementation(() => now);
    const health = new DbHealth({ prisma: db.prisma, redis: fleet.context.redis, prefix: fleet.prefix, log: pino({ level: 'silent' }) }, ['lots', 'alerts'], {
      baselineMs: 1_000,
      probeMs: 60_000,
    });
    health.recordLatencies(
      'lots',
      Array.from({ length: 50 }, (_, i) => 10 + (i % 5)),
    );
    now += 1_500;
    // 25% slower but only 3 ms: noise, not a regression.
    health.recordLatencies(
      'lots',
      Array.from({ length: 10 }, () => 17),
    );
    await health.sample();
    expect(health.reason('lots')).toBeNull();
    now += 11_000; // the recent window moves on
    health.recordLatencies(
      'lots',
      Array.from({ length: 10 }, () => 80),
    );
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

describe('database health: the replica-lag rule', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let pair: ReplicatedPostgres;
  let replica: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase();
    fleet = await testFleet(db);
    pair = await ReplicatedPostgres.start();
    replica = new pg.Pool({ connectionString: pair.replicaUrl, max: 1 });
  }, 120_000);
  afterAll(async () => {
    await replica?.end();
    await pair?.stop();
    await fleet?.close();
    await db?.drop();
  });

  it('holds the fleet while a real replica falls behind, and lets it go when the replica catches up', async () => {
    const health = new DbHealth({ prisma: db.prisma, redis: fleet.context.redis, prefix: fleet.prefix, log: pino({ level: 'silent' }), replica }, ['lots'], {
      replicaLagMs: 500,
      probeMs: 60_000,
    });
    await pair.query('primary', 'CREATE TABLE app_writes (n int)');
    await until(
      'the replica to replay a transaction',
      async () => (await pair.query('replica', "SELECT to_regclass('app_writes') AS t"))[0]!.t !== null,
      30_000,
    );
    await health.sample();
    expect(health.reason('lots')).toBeNull();

    // The replica stops replaying while the primary goes on writing: it falls behind.
    await pair.query('replica', 'SELECT pg_wal_replay_pause()');
    await pair.query('primary', 'INSERT INTO app_writes VALUES (1)');
    await until('the fleet to hold for the replica', async () => (await health.sample(), health.reason('lots') !== null), 30_000);
    expect(health.reason('lots')).toMatch(/^replica \d+\.\d s behind \(limit 0\.5 s\)$/);
    expect((await throttleReasons(fleet.context.redis, fleet.prefix, ['lots'])).lots).toMatch(/^replica /);

    await pair.query('replica', 'SELECT pg_wal_replay_resume()');
    await until('the fleet to go again', async () => (await health.sample(), health.reason('lots') === null), 30_000);
    expect((await pair.query('replica', 'SELECT count(*)::int AS n FROM app_writes'))[0]!.n).toBe(1);
  });

  it('ignores, with a warning, a TYS_REPLICA_URL that is not a replica', async () => {
    const primary = new pg.Pool({ connectionString: pair.primaryUrl, max: 1 });
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line).msg) });
    try {
      const health = new DbHealth({ prisma: db.prisma, redis: fleet.context.redis, prefix: fleet.prefix, log, replica: primary }, ['lots'], {
        probeMs: 60_000,
        replicaLagMs: 0,
      });
      await health.sample();
      await health.sample();
      expect(health.reason('lots')).toBeNull();
      expect(warnings).toEqual(['TYS_REPLICA_URL points at a server that is not a replica: its lag is not watched']);
    } finally {
      await primary.end();
    }
  });
});
