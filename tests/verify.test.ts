import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { newRunId } from '../src/fleet/runs/store.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { fleetEnv, runTys } from './support/processes.js';

/** tys verify after every phase: schema, corporate actions, metadata and alerts, one by one and --all. */
describe('tys verify, every phase', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let env: NodeJS.ProcessEnv;
  const verify = async (...args: string[]) => {
    const result = await runTys(['verify', ...args], env);
    return { ...result, lines: result.stdout.split('\n').filter((line) => line && !line.startsWith('target:')) };
  };
  beforeAll(async () => {
    db = await createTestDatabase();
    await seedMvp(db.prisma, { investments: 20 });
    fleet = await testFleet(db);
    env = fleetEnv(fleet.config);
  });
  afterAll(async () => {
    await fleet?.close();
    await db?.drop();
  });

  it('schema: NOT VALID constraints and a migration changed after it was applied are named; validated and unchanged, it is OK', async () => {
    const before = await verify('schema');
    expect(before.code).toBe(1);
    expect(before.lines).toContain(
      '  Investment_totalQuantity_positive: CHECK constraint is NOT VALID yet: fix the rows (tys enqueue constraints), then tys validate',
    );
    expect((await runTys(['validate', 'constraints'], env)).code).toBe(0);
    expect((await verify('schema')).lines).toEqual([expect.stringMatching(/^verify schema: OK, \d+ migrations and constraints checked$/)]);

    const [{ name, checksum } = { name: '', checksum: '' }] = await db.prisma.$queryRaw<{ name: string; checksum: string }[]>`
      SELECT migration_name AS name, checksum FROM _prisma_migrations ORDER BY started_at DESC LIMIT 1`;
    await db.prisma.$executeRaw`UPDATE _prisma_migrations SET checksum = 'edited' WHERE migration_name = ${name}`;
    try {
      const changed = await verify('schema');
      expect(changed.code).toBe(1);
      expect(changed.lines).toContain(`  ${name}: applied, then its migration.sql changed: the database may not match the file`);
    } finally {
      await db.prisma.$executeRaw`UPDATE _prisma_migrations SET checksum = ${checksum} WHERE migration_name = ${name}`;
    }
  });

  it('corporate-actions: a due action left unapplied is named; one behind an action left for a person is not', async () => {
    const [a, b] = await db.prisma.investment.findMany({ orderBy: { id: 'asc' }, take: 2 });
    const due = new Date(Date.now() - 86_400_000);
    const missed = await db.prisma.corporateAction.create({
      data: { investmentId: a!.id, actionType: 'STOCK_SPLIT', effectiveDate: due, description: 'split', splitRatio: '2:1' },
    });
    await db.prisma.corporateAction.create({
      data: { investmentId: b!.id, actionType: 'MERGER', effectiveDate: new Date(due.getTime() - 86_400_000), description: 'merger' },
    });
    await db.prisma.corporateAction.create({
      data: { investmentId: b!.id, actionType: 'STOCK_SPLIT', effectiveDate: due, description: 'split after the merger', splitRatio: '3:1' },
    });
    await db.prisma.corporateAction.create({
      data: {
        investmentId: a!.id,
        actionType: 'STOCK_SPLIT',
        effectiveDate: new Date(Date.now() + 30 * 86_400_000),
        description: 'not due',
        splitRatio: '2:1',
      },
    });
    const result = await verify('corporate-actions');
    expect(result.code).toBe(1);
    expect(result.lines).toEqual([
      'verify corporate-actions: FAILED, 1 of 4 rows wrong',
      `  ${missed.id}: STOCK_SPLIT of ${due.toISOString().slice(0, 10)} on investment ${a!.id} is due and not applied (tys enqueue corporate-actions --all)`,
    ]);
    await db.prisma.corporateAction.update({ where: { id: missed.id }, data: { processed: true, processedAt: new Date() } });
    expect((await verify('corporate-actions')).code).toBe(0);
  });

  it('metadata: STOCK rows without metadata are named, unless the provider is known to have no data for their ticker', async () => {
    await db.prisma.investment.updateMany({ where: { assetType: { in: ['STOCK', 'ETF'] } }, data: { sector: 'Technology' } });
    const bare = await db.prisma.investment.findFirstOrThrow({ where: { assetType: 'STOCK' }, orderBy: { id: 'asc' } });
    await db.prisma.investment.updateMany({
      where: { ticker: bare.ticker },
      data: { sector: null, industry: null, country: null, marketCap: null, assetType: 'STOCK' },
    });
    const rows = await db.prisma.investment.count({ where: { ticker: bare.ticker } });
    const ticker = bare.ticker.trim().toUpperCase();
    const result = await verify('metadata');
    expect(result.code).toBe(1);
    expect(result.lines[0]).toMatch(new RegExp(`^verify metadata: FAILED, ${rows} of \\d+ rows wrong$`));
    expect(result.lines[1]).toBe(`  ${bare.id}: ${ticker}: ${rows} STOCK/ETF investment(s) without metadata`);
    // What the metadata family remembers when the provider answered it has nothing.
    await fleet.context.redis.set(`${fleet.prefix}:market:alphavantage:nodata:overview:${ticker}`, '1', 'PX', 60_000);
    expect((await verify('metadata')).code).toBe(0);
  });

  it('alerts: an untriggered alert whose rule holds at a fresh price the last alerts run saw is a missed trigger; a newer price is not yet', async () => {
    const owner = (await db.prisma.user.findFirstOrThrow()).id;
    const holding = await db.prisma.investment.findFirstOrThrow({ orderBy: { id: 'asc' } });
    const ticker = holding.ticker.trim().toUpperCase();
    await db.prisma.investment.updateMany({ where: { ticker: holding.ticker }, data: { currentPrice: '150', priceUpdatedAt: new Date(Date.now() - 60_000) } });
    const alert = await db.prisma.priceAlert.create({ data: { userId: owner, ticker, alertType: 'PRICE_ABOVE', targetPrice: '100' } });
    await db.prisma.priceAlert.create({ data: { userId: owner, ticker, alertType: 'PRICE_ABOVE', targetPrice: '200' } });
    // No alerts run has seen this price yet: nothing is missed.
    expect((await verify('alerts')).code).toBe(0);
    await db.prisma.fleetRun.create({
      data: { id: newRunId(), family: 'alerts', scope: { kind: 'all' }, status: 'COMPLETED', startedAt: new Date(Date.now() - 30_000), finishedAt: new Date() },
    });
    const result = await verify('alerts');
    expect(result.code).toBe(1);
    expect(result.lines).toEqual([
      'verify alerts: FAILED, 1 of 2 rows wrong',
      `  ${alert.id}: PRICE_ABOVE on ${ticker} holds at 150.00000000 and is not triggered (tys enqueue alerts --all)`,
    ]);
  });

  it('--all runs every check in order, fails when one does and names those; --json reports each', async () => {
    // No lots run happens here, so the lots check fails whatever the other tests did.
    const all = await verify('--all');
    const checks = all.lines.filter((line) => /^verify [a-z-]+: /.test(line));
    expect(checks.map((line) => line.split(':')[0])).toEqual(
      ['schema', 'lots', 'constraints', 'corporate-actions', 'metadata', 'alerts'].map((name) => `verify ${name}`),
    );
    const failed = checks.filter((line) => line.includes(': FAILED')).map((line) => line.slice('verify '.length).split(':')[0]);
    expect(failed).toContain('lots');
    expect(all.code).toBe(1);
    expect(all.lines.at(-1)).toBe(`verify: ${failed.join(', ')} FAILED`);
    const report = JSON.parse((await runTys(['verify', '--all', '--json'], env)).stdout);
    expect(report.ok).toBe(false);
    expect(report.checks.filter((c: { ok: boolean }) => !c.ok).map((c: { check: string }) => c.check)).toEqual(failed);
    // Redis away: the checks still run, on the database alone, with a warning.
    const noRedis = await runTys(['verify', 'constraints'], { ...env, REDIS_URL: 'redis://127.0.0.1:1' });
    expect(noRedis.stderr).toMatch(/^warning: cannot reach Redis at 127\.0\.0\.1:1: .*count as wrong\n$/);
    expect(noRedis.stdout).toMatch(/verify constraints: (OK|FAILED)/);
    const both = await runTys(['verify', 'lots', '--all'], env);
    expect(both.code).toBe(2);
    expect(both.stderr.trim()).toBe('error: tys verify: give a check or --all, not both');
  });
});
