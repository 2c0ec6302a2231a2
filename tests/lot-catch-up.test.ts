import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Prisma } from '../src/db/prisma.js';
import { lotsFamily } from '../src/families/lots.js';
import { revertRun } from '../src/fleet/revert.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { testFleet } from './support/fleet.js';
import { fleetEnv, runTys } from './support/processes.js';

const CREATED = '2024-01-02';

/** Today in UTC, as the trigger dates a write. */
const today = () => new Date().toISOString().slice(0, 10);

/** Each lot of the database, as text, in a fixed order: what a revert must give back row for row. */
async function allLots(db: TestDatabase) {
  return db.prisma.$queryRaw<Record<string, string>[]>`
    SELECT id, "investmentId", to_char("purchaseDate", 'YYYY-MM-DD') AS "purchaseDate", quantity::text AS quantity,
           "remainingQuantity"::text AS "remainingQuantity", "costBasisPerUnit"::text AS "costBasisPerUnit", status::text AS status
      FROM "TaxLot" ORDER BY id`;
}

describe('lots follow the MVP application until cut-over', () => {
  let db: TestDatabase;
  let fleet: Awaited<ReturnType<typeof testFleet>>;
  let app: pg.Client;
  let portfolioId: string;

  /** A position as the MVP code makes one: no lots; created on CREATED. */
  const position = async (id: string, quantity: string, average: string) => {
    await app.query(
      `INSERT INTO "Investment" (id, ticker, name, "assetType", "totalQuantity", "averageCostBasis", "portfolioId", "createdAt", "updatedAt")
       VALUES ($1, 'VTI', 'VTI', 'ETF', $2, $3, $4, $5, $5)`,
      [id, quantity, average, portfolioId, CREATED],
    );
  };
  // The MVP code's writes, each in a transaction of its own, as the application makes them.
  const buy = (id: string, quantity: string, price: string) =>
    app.query(
      `UPDATE "Investment" SET "averageCostBasis" = round(("totalQuantity" * "averageCostBasis" + $2::numeric * $3::numeric) / ("totalQuantity" + $2::numeric), 8),
                               "totalQuantity" = "totalQuantity" + $2::numeric, "updatedAt" = now() WHERE id = $1`,
      [id, quantity, price],
    );
  const sell = (id: string, quantity: string) =>
    app.query(`UPDATE "Investment" SET "totalQuantity" = "totalQuantity" - $2::numeric, "updatedAt" = now() WHERE id = $1`, [id, quantity]);
  const correct = (id: string, average: string) =>
    app.query(`UPDATE "Investment" SET "averageCostBasis" = $2, "updatedAt" = now() WHERE id = $1`, [id, average]);

  const lotsOf = async (id: string) =>
    (
      await db.prisma.$queryRaw<{ d: string; q: string; r: string; c: string; s: string }[]>`
        SELECT to_char("purchaseDate", 'YYYY-MM-DD') AS d, quantity::text AS q, "remainingQuantity"::text AS r,
               "costBasisPerUnit"::text AS c, status::text AS s
          FROM "TaxLot" WHERE "investmentId" = ${id} ORDER BY "purchaseDate", "createdAt", id`
    ).map((lot) => [lot.d, D(lot.q), D(lot.r), D(lot.c), lot.s]);
  const D = (value: string) => new Prisma.Decimal(value).toFixed();
  const run = async (scope: Parameters<typeof fleet.enqueue>[1]) => {
    const enqueued = await fleet.enqueue(lotsFamily, scope);
    return { ...enqueued, run: await fleet.waitForRun(enqueued.runId!) };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    app = new pg.Client({ connectionString: db.url, application_name: 'the-mvp-application' });
    await app.connect();
    const user = await db.prisma.user.create({ data: { email: 'follower@example.com' } });
    portfolioId = (await db.prisma.portfolio.create({ data: { name: 'P', userId: user.id } })).id;
    fleet = await testFleet(db);
    fleet.startWorkers([lotsFamily]);
  });
  afterAll(async () => {
    await app?.end();
    await fleet?.close();
    await db?.drop();
  });

  it('brings every kind of MVP write back in step, reading only the change log, and a revert puts the lots back row for row', async () => {
    for (const id of ['buyer', 'seller', 'corrected', 'mixed', 'sellthenbuy', 'twostep', 'gone']) await position(id, '10', '100');
    const first = await run({ kind: 'all' });
    expect(first.run).toMatchObject({ status: 'COMPLETED', completed: 7 });
    expect(await lotsOf('buyer')).toEqual([[CREATED, '10', '10', '100', 'OPEN']]);
    // The first lots took in every write logged so far.
    expect(await db.prisma.fleetLotChange.count()).toBe(0);
    // The application (phase 2 code) records a purchase as a lot of its own, position and lot together.
    await buy('mixed', '5', '130');
    await app.query(
      `INSERT INTO "TaxLot" (id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", "remainingQuantity", "updatedAt")
       VALUES ('applot', 'mixed', $1, 5, 130, 5, now())`,
      [today()],
    );
    await run({ kind: 'changed' });

    // Then the MVP code, lots untouched: purchases, sales past the first lot, a correction, a new and a deleted position.
    await buy('buyer', '5', '130'); // (10 x 100 + 5 x 130) / 15 = 110
    await buy('seller', '10', '200'); // 20 at 150
    await sell('seller', '15'); // all of the first lot, half of the second
    await correct('corrected', '90');
    await correct('mixed', '120'); // its lots hold the application's own purchase: left alone
    await buy('sellthenbuy', '10', '200'); // 20 at 150
    await sell('sellthenbuy', '10'); // the first lot, at 100
    await buy('sellthenbuy', '10', '150'); // average stays 150: the residual of the lots' cost would price it at 100
    // One purchase written as two statements of one transaction: the quantity, then the average.
    await app.query('BEGIN');
    await app.query(`UPDATE "Investment" SET "totalQuantity" = 20, "updatedAt" = now() WHERE id = 'twostep'`);
    await app.query(`UPDATE "Investment" SET "averageCostBasis" = 150, "updatedAt" = now() WHERE id = 'twostep'`);
    await app.query('COMMIT');
    await position('newcomer', '3', '42.5');
    await buy('gone', '1', '100'); // logged, then the position is deleted: nothing to apply it to
    await app.query(`DELETE FROM "Investment" WHERE id = 'gone'`);

    const before = await allLots(db);
    const audit = await lotsFamily.audit!(db.prisma);
    const found = Object.fromEntries(audit.map((f) => [f.check, f.sample]));
    expect(found['purchases to add as lots']!.sort()).toEqual(['buyer', 'seller', 'sellthenbuy', 'twostep']);
    expect(found['sales to take from the oldest lots']!.sort()).toEqual(['seller', 'sellthenbuy']);
    expect(found['average-cost corrections lots follow']).toEqual(['corrected']);
    expect(found['average-cost corrections lots keep (check them)']).toEqual(['mixed']);
    expect(found['positions without tax lots']).toEqual(['newcomer']);

    const catchUp = await run({ kind: 'changed' });
    expect(catchUp.found).toBe(8); // buyer, seller, corrected, mixed, sellthenbuy, twostep, newcomer, gone
    expect(catchUp.run).toMatchObject({ status: 'COMPLETED', completed: 6, skipped: 2 });

    expect(await lotsOf('buyer')).toEqual([
      [CREATED, '10', '10', '100', 'OPEN'],
      [today(), '5', '5', '130', 'OPEN'],
    ]);
    expect(await lotsOf('seller')).toEqual([
      [CREATED, '10', '0', '100', 'CLOSED'],
      [today(), '10', '5', '200', 'PARTIALLY_CLOSED'],
    ]);
    expect(await lotsOf('corrected')).toEqual([[CREATED, '10', '10', '90', 'OPEN']]);
    expect(await lotsOf('mixed')).toEqual([
      [CREATED, '10', '10', '100', 'OPEN'],
      [today(), '5', '5', '130', 'OPEN'],
    ]);
    expect(await lotsOf('sellthenbuy')).toEqual([
      [CREATED, '10', '0', '100', 'CLOSED'],
      [today(), '10', '10', '200', 'OPEN'],
      [today(), '10', '10', '150', 'OPEN'],
    ]);
    expect(await lotsOf('twostep')).toEqual([
      [CREATED, '10', '10', '100', 'OPEN'],
      [today(), '10', '10', '200', 'OPEN'],
    ]);
    expect(await lotsOf('newcomer')).toEqual([[CREATED, '3', '3', '42.5', 'OPEN']]);
    expect(await db.prisma.taxLot.count({ where: { investmentId: 'gone' } })).toBe(0);
    expect(await db.prisma.fleetLotChange.count()).toBe(0);
    expect(await db.prisma.saleTransaction.count()).toBe(0);
    expect(await lotsFamily.verify!(db.prisma)).toMatchObject({ ok: true, problemCount: 0 });

    // The disposals, for a person to record the sales: listed one a line, exit 1 while any is left.
    const audited = await runTys(['audit', 'lots'], fleetEnv(fleet.config));
    expect(audited.code).toBe(1);
    expect(audited.stdout).toMatch(
      new RegExp(`^shares sold with no sale recorded \\(record the sale\\) +2\n    seller on ${today()}: 15 from 2 lot\\(s\\)$`, 'm'),
    );
    expect(audited.stdout).toContain(`    sellthenbuy on ${today()}: 10 from 1 lot(s)\n`);
    expect(audited.stdout).toMatch(/^purchases to add as lots +0$/m);
    // Nothing changed since: a catch-up finds nothing.
    expect((await run({ kind: 'changed' })).found).toBe(0);

    const revert = await revertRun(db.prisma, catchUp.runId!, [lotsFamily]);
    expect(revert.conflicts).toEqual([]);
    expect(await allLots(db)).toEqual(before.filter((lot) => lot.investmentId !== 'gone'));
  });

  it('prices a purchase no log explains so the lots cost what the position costs, dated when the position last changed, and refuses one that would cost less than nothing', async () => {
    await position('unlogged', '10', '100');
    await position('costly', '10', '100');
    await run({ kind: 'investments', ids: ['unlogged', 'costly'] });
    await buy('unlogged', '2', '160'); // 12 at 110
    await app.query(`UPDATE "Investment" SET "totalQuantity" = 12, "averageCostBasis" = 1, "updatedAt" = '2026-03-04' WHERE id = 'costly'`);
    // Written before the log began (or the log lost): only the positions say what happened.
    await app.query(`UPDATE "Investment" SET "updatedAt" = '2026-03-04' WHERE id = 'unlogged'`);
    await db.prisma.fleetLotChange.deleteMany({ where: { investmentId: { in: ['unlogged', 'costly'] } } });

    expect((await run({ kind: 'changed' })).found).toBe(0);
    // The full check (what --all runs, here over these two).
    const full = await run({ kind: 'investments', ids: ['unlogged', 'costly'] });
    expect(full.found).toBe(2);
    expect(full.run).toMatchObject({ status: 'FAILED', completed: 1, failed: 1 });
    expect(await lotsOf('unlogged')).toEqual([
      [CREATED, '10', '10', '100', 'OPEN'],
      ['2026-03-04', '2', '2', '160', 'OPEN'],
    ]);
    const [failed] = await fleet.context.queue(lotsFamily).getFailed();
    expect(failed!.failedReason).toBe(
      "investment costly: its lots hold 10 costing 1000, more than the position's whole cost 12 (12 x 1): the 2 shares they lack would cost -494 each; nothing was changed (tys audit lots lists it)",
    );
    expect(await lotsOf('costly')).toEqual([[CREATED, '10', '10', '100', 'OPEN']]);
  });

  it('keeps the lots exact while the application writes the same positions in a loop', async () => {
    const ids = ['race1', 'race2', 'race3'];
    for (const id of ids) await position(id, '100', '50');
    await run({ kind: 'investments', ids });
    const writer = new pg.Client({ connectionString: db.url, application_name: 'the-mvp-application' });
    await writer.connect();
    let writing = true;
    let writes = 0;
    const loop = (async () => {
      for (let n = 0; writing; n += 1) {
        const id = ids[Math.floor(n / 3) % ids.length]!;
        // Buys and sells that never take a position below its first lot's size.
        if (n % 3 === 2) await writer.query(`UPDATE "Investment" SET "totalQuantity" = "totalQuantity" - 0.5, "updatedAt" = now() WHERE id = $1`, [id]);
        else
          await writer.query(
            `UPDATE "Investment" SET "averageCostBasis" = round(("totalQuantity" * "averageCostBasis" + 0.75 * 61.25) / ("totalQuantity" + 0.75), 8),
                                     "totalQuantity" = "totalQuantity" + 0.75, "updatedAt" = now() WHERE id = $1`,
            [id],
          );
        writes += 1;
      }
    })();
    try {
      let catchUps = 0;
      while (writes < 300 || catchUps < 5) {
        const caught = await run({ kind: 'changed' });
        expect(caught.run.failed).toBe(0);
        catchUps += 1;
      }
    } finally {
      writing = false;
      await loop;
      await writer.end();
    }
    await run({ kind: 'changed' });
    const sums = await db.prisma.$queryRaw<{ id: string; q: string; held: string }[]>`
      SELECT i.id, i."totalQuantity"::text AS q, sum(t."remainingQuantity")::text AS held
        FROM "Investment" i JOIN "TaxLot" t ON t."investmentId" = i.id WHERE i.id = ANY(${ids}::text[]) GROUP BY i.id ORDER BY i.id`;
    expect(sums).toHaveLength(3);
    for (const row of sums) expect(D(row.held)).toBe(D(row.q));
    // Every write made a lot or a disposal: far more than the three first lots.
    expect(await db.prisma.taxLot.count({ where: { investmentId: { in: ids } } })).toBeGreaterThan(100);
    expect(await db.prisma.fleetLotChange.count()).toBe(0);
  });

  it("logs the writes of an application role that holds no grant on the fleet's table", async () => {
    await position('granted', '10', '100');
    const role = `tys_app_${randomBytes(4).toString('hex')}`;
    await app.query(`CREATE ROLE ${role} LOGIN`);
    try {
      await app.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
      await app.query(`GRANT SELECT, UPDATE ON "Investment" TO ${role}`);
      const url = new URL(db.url);
      url.username = role;
      const asApplication = new pg.Client({ connectionString: url.toString() });
      await asApplication.connect();
      try {
        await expect(asApplication.query(`SELECT count(*) FROM "FleetLotChange"`)).rejects.toThrow(/permission denied/);
        await asApplication.query(`UPDATE "Investment" SET "totalQuantity" = 11 WHERE id = 'granted'`);
      } finally {
        await asApplication.end();
      }
      const logged = await db.prisma.fleetLotChange.findMany({ where: { investmentId: 'granted' }, orderBy: { id: 'asc' } });
      expect(logged.map((change) => [change.oldQuantity?.toFixed() ?? null, change.newQuantity.toFixed()])).toEqual([
        [null, '10'],
        ['10', '11'],
      ]);
    } finally {
      await app.query(`REVOKE ALL ON "Investment" FROM ${role}`);
      await app.query(`REVOKE ALL ON SCHEMA public FROM ${role}`);
      await app.query(`DROP ROLE ${role}`);
    }
  });
});
