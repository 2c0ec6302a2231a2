import { describe, expect, it, onTestFinished } from 'vitest';
import { seedMvp } from '../src/demo/seed.js';
import { constraintsFamily } from '../src/families/constraints.js';
import { lotsFamily } from '../src/families/lots.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { writeLegacyRows } from './support/legacy.js';
import { fleetEnv, runTys, until } from './support/processes.js';

const CLEAN = 300;

type Snapshot = Record<string, Record<string, string | null>>;

/** Every Investment and TaxLot row, all columns as text: compared exactly. */
async function snapshot(db: TestDatabase): Promise<Snapshot> {
  const rows = await db.prisma.$queryRaw<{ key: string; row: Record<string, string | null> }[]>`
    SELECT 'Investment.' || id AS key, to_jsonb(x) AS row FROM (SELECT id, "totalQuantity"::text, "averageCostBasis"::text, "currentPrice"::text, "updatedAt"::text FROM "Investment") x
    UNION ALL
    SELECT 'TaxLot.' || id, to_jsonb(y) FROM (SELECT id, quantity::text, "remainingQuantity"::text, "costBasisPerUnit"::text, "updatedAt"::text FROM "TaxLot") y`;
  return Object.fromEntries(rows.map((r) => [r.key, r.row]));
}

const strip = (snap: Snapshot) => Object.fromEntries(Object.entries(snap).map(([k, { updatedAt, ...rest }]) => [k, rest]));

/** The rows the constraints run fixes: every other row stays as it was. */
const FIXED_ROWS = [
  'Investment.badA',
  'Investment.badB',
  'Investment.badC',
  'Investment.badD',
  'Investment.badE',
  'TaxLot.lotL1',
  'TaxLot.lotL2',
  'TaxLot.lotL5',
];

/**
 * A database of its own for the calling test: clean rows, the legacy rows that break phase 4's rules, and workers of
 * both families. Removed when the test finishes.
 */
async function legacyDatabase() {
  const db = await createTestDatabase();
  const prefix = await seedMvp(db.prisma, { investments: CLEAN });
  const portfolio = (await db.prisma.portfolio.findFirstOrThrow()).id;
  const inv = (id: string, q: string, c: string, p: string) =>
    `INSERT INTO "Investment" (id, ticker, name, "assetType", "totalQuantity", "averageCostBasis", "currentPrice", "portfolioId", "updatedAt")
     VALUES ('${id}', 'BAD', 'Bad ${id}', 'STOCK', ${q}, ${c}, ${p}, '${portfolio}', now())`;
  const lot = (id: string, investment: string, q: string, r: string, cost = '10') =>
    `INSERT INTO "TaxLot" (id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", "remainingQuantity", "updatedAt")
     VALUES ('${id}', '${investment}', '2024-01-02', ${q}, ${cost}, ${r}, now())`;
  const clean = (n: number) => `${prefix}${String(n).padStart(10, '0')}`;
  await writeLegacyRows(db.prisma, [
    inv('badA', '-5', '10', '12'),
    inv('badB', '0', '10', '12'),
    inv('badC', '3', '-1.5', '12'),
    inv('badD', '3', '10', '-3.25'),
    inv('badE', '-1', '-2', '-3'),
    lot('lotOk', clean(1), '5', '5'),
    lot('lotL1', clean(2), '5', '-0.5'),
    lot('lotL2', clean(3), '5', '6.00000001'),
    lot('lotL3', clean(4), '-2', '1'),
    lot('lotL4', clean(5), '0', '-1'),
    // As the lots family made them before it refused broken investments.
    lot('lotL5', clean(6), '5', '5', '-3'),
  ]);
  const fleet = await testFleet(db);
  onTestFinished(async () => {
    await fleet.close();
    await db.drop();
  });
  fleet.startWorkers([constraintsFamily, lotsFamily]);
  const original = await snapshot(db);
  const run = async (family: typeof lotsFamily) => fleet.waitForRun((await fleet.enqueue(family)).runId!);
  return { db, fleet, env: fleetEnv(fleet.config), original, run };
}

describe('constraints family', () => {
  it('audits every kind of violation with the right counts and sample ids, exit 1', async () => {
    const { env } = await legacyDatabase();
    const result = await runTys(['audit', 'constraints', '--json'], env);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.total).toBe(14);
    expect(report.findings).toEqual([
      { check: 'Investment_totalQuantity_positive (Investment)', count: 3, sample: ['badA', 'badB', 'badE'] },
      { check: 'Investment_averageCostBasis_positive (Investment)', count: 2, sample: ['badC', 'badE'] },
      { check: 'Investment_currentPrice_positive (Investment)', count: 2, sample: ['badD', 'badE'] },
      { check: 'TaxLot_quantity_positive (TaxLot)', count: 2, sample: ['lotL3', 'lotL4'] },
      // lotL3 (quantity -2, remaining 1) breaks both lot constraints.
      { check: 'TaxLot_remainingQuantity_valid (TaxLot)', count: 4, sample: ['lotL1', 'lotL2', 'lotL3', 'lotL4'] },
      { check: 'TaxLot_costBasisPerUnit_nonnegative (TaxLot)', count: 1, sample: ['lotL5'] },
    ]);
  });

  it('lots are refused for investments that break any phase 4 rule before the fix', async () => {
    const { db, fleet, env, run: runOf } = await legacyDatabase();
    const run = await runOf(lotsFamily);
    // The five broken investments, and the five positions whose legacy lot breaks a rule (all but lotOk's).
    expect(run.failed).toBe(10);
    // A run counts an outcome before BullMQ files the job as failed.
    await until('the failed jobs to be filed', async () => (await fleet.context.queue(lotsFamily).getFailedCount()) >= 10, 10_000);
    const reasons = (await fleet.context.queue(lotsFamily).getFailed()).map((j) => j.failedReason).sort();
    expect(reasons[2]).toBe(
      'investment badC breaks Investment_averageCostBasis_positive (averageCostBasis = -1.50000000): run the constraints family first (tys enqueue constraints)',
    );
    expect(reasons).toContainEqual(
      expect.stringMatching(
        /^investment \w+: its lot lotL1 breaks TaxLot_remainingQuantity_valid \(remainingQuantity = -0\.50000000\): run the constraints family first \(tys enqueue constraints\)$/,
      ),
    );
    expect(await db.prisma.taxLot.count({ where: { costBasisPerUnit: { lt: 0 } } })).toBe(1); // lotL5 only, planted
    const verify = await runTys(['verify', 'lots'], env);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/a lot has a negative costBasisPerUnit -3/);
  });

  it('fixes every violating row, touches no clean row, one audit entry per changed row', async () => {
    const { db, fleet, original } = await legacyDatabase();
    const result = await fleet.enqueue(constraintsFamily);
    const firstRun = result.runId!;
    expect(result.added).toBe(10);
    const run = await fleet.waitForRun(firstRun);
    expect(run).toMatchObject({ completed: 8, failed: 2, status: 'FAILED' });

    const after = await snapshot(db);
    const changed = Object.keys(after).filter((k) => JSON.stringify(after[k]) !== JSON.stringify(original[k]) && original[k]);
    // Of the rows that existed before, exactly the fixed ones changed.
    expect(changed.sort()).toEqual(FIXED_ROWS);
    expect(strip(after)['Investment.badA']).toEqual({ id: 'badA', totalQuantity: '0.00000001', averageCostBasis: '10.00000000', currentPrice: '12.00000000' });
    expect(strip(after)['Investment.badE']).toEqual({ id: 'badE', totalQuantity: '0.00000001', averageCostBasis: '0.00000000', currentPrice: null });
    expect(strip(after)['Investment.badD']!.currentPrice).toBeNull();
    expect(strip(after)['TaxLot.lotL1']!.remainingQuantity).toBe('0.00000000');
    expect(strip(after)['TaxLot.lotL2']!.remainingQuantity).toBe('5.00000000');
    expect(strip(after)['TaxLot.lotL5']!.costBasisPerUnit).toBe('0.00000000');

    const audits = await db.prisma.auditLog.findMany({ where: { action: 'FIX_CONSTRAINT' } });
    expect(audits).toHaveLength(8);
    const e = audits.find((a) => a.entityId === 'badE')!;
    expect(e.metadata).toMatchObject({
      runId: firstRun,
      before: { totalQuantity: '-1.00000000', averageCostBasis: '-2.00000000', currentPrice: '-3.00000000' },
      after: { totalQuantity: '0.00000001', averageCostBasis: '0.00000000', currentPrice: null },
      constraints: ['Investment_totalQuantity_positive', 'Investment_averageCostBasis_positive', 'Investment_currentPrice_positive'],
    });

    // The run ends as its last outcome is counted, just before BullMQ moves that job to its failed set.
    const queue = fleet.context.queue(constraintsFamily);
    await expect.poll(async () => (await queue.getFailed()).length, { timeout: 10_000 }).toBe(2);
    const failed = await queue.getFailed();
    expect(failed.map((j) => j.failedReason).sort()).toEqual([
      'TaxLot lotL3 breaks TaxLot_quantity_positive (quantity = -2.00000000): a lot without a positive quantity cannot be repaired by rule: correct it by hand',
      'TaxLot lotL4 breaks TaxLot_quantity_positive (quantity = 0.00000000): a lot without a positive quantity cannot be repaired by rule: correct it by hand',
    ]);
    expect(failed.every((j) => j.attemptsMade === 1)).toBe(true);
  });

  it('lots and constraints meet: the investments that were refused now get their lot, never a negative cost basis', async () => {
    const { db, fleet, run: runOf } = await legacyDatabase();
    await runOf(lotsFamily);
    await runOf(constraintsFamily);
    const result = await fleet.enqueue(lotsFamily);
    // The ten it refused; the fix leaves two lots for a person (quantity not positive), whose positions are refused again.
    expect(result.requeued).toBe(10);
    const run = await fleet.waitForRun(result.runId!);
    expect(run).toMatchObject({ status: 'FAILED', completed: 8, failed: 2 });
    expect(await db.prisma.taxLot.count({ where: { investmentId: { in: ['badA', 'badB', 'badC', 'badD', 'badE'] } } })).toBe(5);
    // The positions of the repaired legacy lots add up now, with a lot for what they lacked or shares taken from them.
    const repaired = await db.prisma.$queryRaw<{ investment: string; total: string; held: string }[]>`
      SELECT i.id AS investment, i."totalQuantity"::text AS total, sum(t."remainingQuantity")::text AS held
        FROM "Investment" i JOIN "TaxLot" t ON t."investmentId" = i.id
       WHERE i.id IN (SELECT "investmentId" FROM "TaxLot" WHERE id = ANY(${['lotOk', 'lotL1', 'lotL2', 'lotL5']}))
       GROUP BY i.id`;
    expect(repaired).toHaveLength(4);
    for (const position of repaired) expect(position.held).toBe(position.total);
    expect(await db.prisma.taxLot.count({ where: { costBasisPerUnit: { lt: 0 } } })).toBe(0);
  });

  it('changes nothing when run a second time', async () => {
    const { db, fleet, run: runOf } = await legacyDatabase();
    await runOf(constraintsFamily);
    const before = await snapshot(db);
    const result = await fleet.enqueue(constraintsFamily);
    const run = await fleet.waitForRun(result.runId!);
    expect(run).toMatchObject({ total: 2, failed: 2 }); // only the two lots left for a person
    expect(await snapshot(db)).toEqual(before);
    expect(await db.prisma.auditLog.count({ where: { action: 'FIX_CONSTRAINT' } })).toBe(8);
  });

  it('validate refuses while violations remain, exit 1 with the counts', async () => {
    const { env, run: runOf } = await legacyDatabase();
    await runOf(constraintsFamily);
    const result = await runTys(['validate', 'constraints'], env);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/refusing to validate/);
    expect(result.stdout).toMatch(/TaxLot_quantity_positive: 2/);
  });

  it('revert restores the original values exactly, and a second revert changes nothing', async () => {
    const { db, env, original, run: runOf } = await legacyDatabase();
    await runOf(lotsFamily);
    const firstRun = (await runOf(constraintsFamily)).id;
    const lotsBefore = await db.prisma.taxLot.count();
    const result = await runTys(['revert', '--run', firstRun], env);
    expect(result.stdout).toMatch(/8 audit entries, 8 restored, 0 already reverted, 0 conflicts/);
    expect(result.stdout).toMatch(/constraint Investment_currentPrice_positive is NOT VALID again/);
    expect(result.code).toBe(0);
    // Every constraint still exists, NOT VALID, and still checks new writes.
    const checks = await db.prisma.$queryRaw<{ conname: string; convalidated: boolean }[]>`
      SELECT conname, convalidated FROM pg_constraint WHERE contype = 'c' AND connamespace = 'public'::regnamespace ORDER BY 1`;
    expect(checks).toHaveLength(6);
    expect(checks.every((c) => !c.convalidated)).toBe(true);
    await expect(db.prisma.investment.update({ where: { id: 'badD' }, data: { currentPrice: '-1' } })).rejects.toThrow(/Investment_currentPrice_positive/);
    const restored = strip(await snapshot(db));
    for (const key of FIXED_ROWS) {
      expect(restored[key], key).toEqual(strip(original)[key]);
    }
    expect(await db.prisma.taxLot.count()).toBe(lotsBefore);
    const again = await runTys(['revert', '--run', firstRun], env);
    expect(again.stdout).toMatch(/8 audit entries, 0 restored, 8 already reverted, 0 conflicts/);
  });

  it('revert after a later manual edit reports the conflict and keeps the edit', async () => {
    const { db, env, run: runOf } = await legacyDatabase();
    const run = await runOf(constraintsFamily);
    expect(run.completed).toBe(8);
    await db.prisma.investment.update({ where: { id: 'badC' }, data: { averageCostBasis: '7.5' } });
    const result = await runTys(['revert', '--run', run.id], env);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/7 restored, 0 already reverted, 1 conflicts/);
    expect(result.stdout).toMatch(
      /conflict Investment badC: row changed since the run wrote it, or is in use; left as it is \(expected \{"averageCostBasis":"0.00000000"\}, found \{"averageCostBasis":"7.50000000"\}\)/,
    );
    expect((await db.prisma.investment.findUniqueOrThrow({ where: { id: 'badC' } })).averageCostBasis.toFixed(8)).toBe('7.50000000');
  });

  it('validates every constraint once the data is clean', async () => {
    const { db, env, run: runOf } = await legacyDatabase();
    await runOf(constraintsFamily);
    await db.prisma.taxLot.updateMany({ where: { id: { in: ['lotL3', 'lotL4'] } }, data: { quantity: '1', remainingQuantity: '1' } });
    const audit = await runTys(['audit', 'constraints'], env);
    expect(audit.code).toBe(0);
    const result = await runTys(['validate', 'constraints', '--json'], env);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.constraints).toHaveLength(6);
    expect(report.constraints.every((c: { validBefore: boolean; validAfter: boolean }) => !c.validBefore && c.validAfter)).toBe(true);
    const rows = await db.prisma.$queryRaw<
      { n: bigint }[]
    >`SELECT count(*) AS n FROM pg_constraint WHERE contype = 'c' AND convalidated AND connamespace = 'public'::regnamespace`;
    expect(rows[0]!.n).toBe(6n);
  });
});
