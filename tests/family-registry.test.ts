import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { familiesMarkdown } from '../src/cli/families-command.js';
import { PROJECT_ROOT } from '../src/project-root.js';
import { seedMvp } from '../src/demo/seed.js';
import { auditRecord } from '../src/fleet/audit.js';
import { DEFAULT_FAMILY_OPTIONS, eachItem, type JobFamily } from '../src/fleet/family.js';
import { revertRun } from '../src/fleet/revert.js';
import { isRowId } from '../src/fleet/scope.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';

/**
 * A family that exists in this file alone: investment names in capitals.
 * Nothing else in the project knows it, yet it enqueues, runs, reports, is
 * audited, verified and reverted like the real ones.
 */
const shoutingFamily: JobFamily = {
  name: 'shouting-names',
  description: 'investment names in capitals (a test family)',
  exampleKey: 'nosuchinvestment',
  auditHelp: 'investments whose name has lower-case letters',
  verifyHelp: 'every investment name is in capitals',
  scopes: ['all', 'investments'],
  async source(prisma, scope, after, limit) {
    const ids = scope.kind === 'investments' ? scope.ids : null;
    const rows = await prisma.$queryRaw<{ id: string }[]>`
      SELECT id FROM "Investment" WHERE name <> upper(name) AND id > ${after}
         AND (${ids}::text[] IS NULL OR id = ANY(${ids}::text[]))
       ORDER BY id LIMIT ${limit}`;
    return rows.map((row) => row.id);
  },
  isValidKey: isRowId,
  handle: eachItem(async (ctx, { key, runId, jobId }) =>
    ctx.prisma.$transaction(async (tx) => {
      const [row] = await tx.$queryRaw<{ name: string; userId: string }[]>`
        SELECT i.name, p."userId" FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId" WHERE i.id = ${key} FOR UPDATE OF i`;
      if (!row || row.name === row.name.toUpperCase()) return { status: 'skipped', reason: 'already in capitals' };
      const upper = row.name.toUpperCase();
      await tx.$executeRaw`UPDATE "Investment" SET name = ${upper}, "updatedAt" = now() WHERE id = ${key}`;
      await tx.auditLog.create({
        data: auditRecord({
          userId: row.userId,
          action: 'SHOUT_NAME',
          entity: 'Investment',
          entityId: key,
          runId,
          jobId,
          before: { name: row.name },
          after: { name: upper },
        }),
      });
      return { status: 'changed' };
    }),
  ),
  revertible: { Investment: { columns: { name: 'text' }, hasUpdatedAt: true } },
  async audit(prisma) {
    const [row] = await prisma.$queryRaw<{ n: bigint; sample: string[] | null }[]>`
      SELECT count(*) AS n, (array_agg(id ORDER BY id))[1:5] AS sample FROM "Investment" WHERE name <> upper(name)`;
    return [{ check: 'lower-case names', count: Number(row!.n), sample: row!.sample ?? [] }];
  },
  async verify(prisma) {
    const [found] = await this.audit!(prisma);
    const [all] = await prisma.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM "Investment"`;
    return {
      ok: found!.count === 0,
      checked: Number(all!.n),
      problems: found!.sample.map((id) => ({ id, problem: 'name has lower-case letters' })),
      problemCount: found!.count,
    };
  },
  options: { ...DEFAULT_FAMILY_OPTIONS, concurrency: 5 },
};

describe('families describe themselves', () => {
  it("the architecture page's family table is what the registry says (tys families --markdown)", () => {
    const page = readFileSync(path.join(PROJECT_ROOT, 'docs', 'architecture.md'), 'utf8');
    expect(page).toContain(`${familiesMarkdown()}\n`);
  });

  describe('a family defined in a test file alone', () => {
    let db: TestDatabase;
    let fleet: Awaited<ReturnType<typeof testFleet>>;
    beforeAll(async () => {
      db = await createTestDatabase();
      await seedMvp(db.prisma, { investments: 30 });
      fleet = await testFleet(db);
    });
    afterAll(async () => {
      await fleet?.close();
      await db?.drop();
    });

    it('enqueues, runs on workers, reports its run, audits, verifies and reverts with no other file touched', async () => {
      const names = new Map((await db.prisma.investment.findMany({ select: { id: true, name: true } })).map((r) => [r.id, r.name]));
      const lower = [...names.values()].filter((name) => name !== name.toUpperCase()).length;
      expect(lower).toBeGreaterThan(0);
      expect((await shoutingFamily.audit!(db.prisma))[0]!.count).toBe(lower);
      expect((await shoutingFamily.verify!(db.prisma)).ok).toBe(false);

      fleet.startWorkers([shoutingFamily]);
      const { runId, added } = await fleet.enqueue(shoutingFamily);
      expect(added).toBe(lower);
      const run = await fleet.waitForRun(runId!);
      expect(run).toMatchObject({ family: 'shouting-names', status: 'COMPLETED', completed: lower, failed: 0 });
      expect(await shoutingFamily.verify!(db.prisma)).toMatchObject({ ok: true, checked: names.size });
      expect(await db.prisma.auditLog.count({ where: { action: 'SHOUT_NAME', metadata: { path: ['runId'], equals: runId! } } })).toBe(lower);
      // Enqueuing again finds nothing left to do.
      expect((await fleet.enqueue(shoutingFamily)).added).toBe(0);

      const report = await revertRun(db.prisma, runId!, [shoutingFamily]);
      expect(report).toMatchObject({ entries: lower, reverted: lower, conflicts: [] });
      const after = await db.prisma.investment.findMany({ select: { id: true, name: true } });
      for (const row of after) expect(row.name).toBe(names.get(row.id));
      // The real families' declarations do not cover this family's column: nothing is put back without it.
      const refused = await revertRun(db.prisma, report.revertRunId, []);
      expect(refused.conflicts.map((c) => c.reason)).toEqual(Array(lower).fill('entity Investment is not revertible'));
    });
  });
});
