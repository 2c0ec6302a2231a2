import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { connectDatabase } from '../src/db/migrate/connect.js';
import { listMigrationFiles, readMigrationSql } from '../src/db/migrate/files.js';
import { revertMigrations } from '../src/db/migrate/revert.js';
import { MIN_SERVER_VERSION_NUM, serverVersionProblem } from '../src/db/server-version.js';
import { lockPlan, newObjectsFirst } from '../src/db/lock-plan.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { REDIS_URL, testPrefix } from './support/fleet.js';
import { runTys, until } from './support/processes.js';
import { serverUrl, withClient } from './support/server.js';

const FILES = listMigrationFiles();
const BASELINE = FILES[0]!.name;
const PHASE4 = '20251012000400_phase4_data_constraints';
const PHASE5 = '20251012000500_phase5_competitive_features';
const PHASE3 = '20251012000300_phase3_dividends_corporate_actions';

/** The application's production database as it is today: the MVP tables, dirty rows, no migration history. */
const MVP_ROWS = `
  INSERT INTO "User" (id, email) VALUES ('u1', 'one@example.com');
  INSERT INTO "Account" (id, "userId", type, provider, "providerAccountId") VALUES ('a1', 'u1', 'oauth', 'github', 'gh1');
  INSERT INTO "Portfolio" (id, name, "userId", "updatedAt") VALUES ('p1', 'Core', 'u1', now());
  INSERT INTO "Investment" (id, ticker, name, "assetType", "totalQuantity", "averageCostBasis", "currentPrice", "portfolioId", "updatedAt")
  VALUES ('i1', 'VTI', 'Vanguard', 'ETF', 10.5, 200.12345678, 250, 'p1', now());`;
const DIRTY_ROWS = `
  INSERT INTO "Investment" (id, ticker, name, "assetType", "totalQuantity", "averageCostBasis", "currentPrice", "portfolioId", "updatedAt")
  VALUES ('i2', 'BAD', 'Negative basis', 'STOCK', 3, -4.5, -1, 'p1', now()),
         ('i3', 'ZERO', 'Zero quantity', 'STOCK', 0, 10, NULL, 'p1', now());`;

function env(db: { url: string }, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, DATABASE_URL: db.url, REDIS_URL, TYS_QUEUE_PREFIX: testPrefix(), ...extra };
}

async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(db: { url: string }, text: string): Promise<T[]> {
  return withClient(async (client) => (await client.query<T>(text)).rows, db.url);
}

/** Everything an adoption could touch: tables, columns, indexes, constraints, and the rows. */
async function fingerprint(db: TestDatabase): Promise<unknown> {
  return {
    schema: await sql(
      db,
      `SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'
       UNION ALL SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2`,
    ),
    investments: await sql(db, `SELECT * FROM "Investment" ORDER BY id`),
  };
}

/** An application session of its own on `db`, for `work`; whatever transaction it left open is rolled back after. */
async function withSession<T>(db: { url: string }, applicationName: string, work: (session: pg.Client) => Promise<T>): Promise<T> {
  const session = new pg.Client({ connectionString: db.url, application_name: applicationName });
  await session.connect();
  try {
    return await work(session);
  } finally {
    await session.query('ROLLBACK').catch(() => undefined);
    await session.end();
  }
}

/** Resolves once a session waits for a lock on `table` (a migration behind the application's transaction). */
async function untilWaitingFor(db: { url: string }, table: string): Promise<void> {
  await until(
    `the migration to ask for ${table}`,
    async () => (await sql(db, `SELECT 1 FROM pg_locks WHERE relation = '"${table}"'::regclass AND NOT granted`)).length > 0,
    30_000,
    10,
  );
}

async function mvpDatabase(extraSql = ''): Promise<TestDatabase> {
  const db = await createTestDatabase({ empty: true });
  await sql(db, readMigrationSql(BASELINE, 'migration') + MVP_ROWS + DIRTY_ROWS + extraSql);
  return db;
}

describe('adopting a production database on the MVP schema', () => {
  const databases: TestDatabase[] = [];
  const track = (db: TestDatabase) => (databases.push(db), db);
  afterEach(async () => {
    for (const db of databases.splice(0)) await db.drop();
  });

  it('adopts a database made from the baseline alone, keeps every row, and applies every phase', async () => {
    const db = track(await mvpDatabase());
    const before = await sql(db, `SELECT id, "totalQuantity", "averageCostBasis", "currentPrice" FROM "Investment" ORDER BY id`);

    const status = await runTys(['migrate', 'status'], env(db));
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/not adopted yet/);

    const result = await runTys(['migrate'], env(db));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toMatch(
      new RegExp(`^target: postgres 127\\.0\\.0\\.1:5432 database "${db.name}", redis [^ ]+ db \\d+, queue prefix "tys-test-`),
    );
    expect(result.stdout).toMatch(`adopted database "${db.name}": recorded the MVP baseline as applied\n`);
    for (const file of FILES.slice(1)) expect(result.stdout).toContain(`applied ${file.name}`);

    const history = await sql<{ migration_name: string; logs: string | null }>(
      db,
      `SELECT migration_name, logs FROM _prisma_migrations ORDER BY migration_name`,
    );
    expect(history.map((h) => h.migration_name)).toEqual(FILES.map((f) => f.name));
    expect(history[0]!.logs).toMatch(/schema matched the baseline/);
    expect(await sql(db, `SELECT id, "totalQuantity", "averageCostBasis", "currentPrice" FROM "Investment" ORDER BY id`)).toEqual(before);

    const again = await runTys(['migrate', 'status'], env(db));
    expect(again.code).toBe(0);
    expect(again.stdout).not.toMatch(/not adopted/);
  });

  it('goes a phase at a time with --to: adopts, stops where told, and refuses a name that is no migration (exit 2)', async () => {
    const db = track(await mvpDatabase());
    const bad = await runTys(['migrate', '--to', 'phase9'], env(db));
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('error: tys migrate: --to "phase9" names no migration (tys migrate status lists them)');
    expect((await runTys(['migrate', 'status'], env(db))).stdout).toMatch(/not adopted yet/);

    const first = await runTys(['migrate', '--to', FILES[1]!.name], env(db));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/adopted database/);
    expect(first.stdout).toContain(`applied ${FILES[1]!.name}`);
    expect(first.stdout).not.toContain(`applied ${FILES[2]!.name}`);
    expect(first.stdout).toContain(`2 of ${FILES.length} migrations applied; ${FILES.length - 2} pending after ${FILES[1]!.name}`);
    const rest = await runTys(['migrate'], env(db));
    expect(rest.code).toBe(0);
    for (const file of FILES.slice(2)) expect(rest.stdout).toContain(`applied ${file.name}`);
  });

  it("adopts a database that keeps the application's own Prisma history, which it leaves as it is", async () => {
    const db = track(await mvpDatabase());
    await sql(
      db,
      `CREATE TABLE "_prisma_migrations" (
        id VARCHAR(36) PRIMARY KEY, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ, migration_name VARCHAR(255) NOT NULL,
        logs TEXT, rolled_back_at TIMESTAMPTZ, started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0);
      INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
      VALUES ('app-1', 'abc', now(), '20240301000000_init', 1);`,
    );
    expect((await runTys(['migrate', 'status'], env(db))).stdout).toMatch(/not adopted yet/);
    const result = await runTys(['migrate'], env(db));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/adopted database/);
    const names = await sql<{ migration_name: string }>(db, `SELECT migration_name FROM _prisma_migrations ORDER BY migration_name`);
    expect(names.map((n) => n.migration_name)).toEqual(['20240301000000_init', ...FILES.map((f) => f.name)]);
  });

  it('refuses a database whose schema differs from the baseline, lists the differences, and changes nothing', async () => {
    const db = track(
      await mvpDatabase(`ALTER TABLE "Investment" ADD COLUMN "sector" TEXT; DROP INDEX "Account_userId_idx";
      ALTER TABLE "Portfolio" ALTER COLUMN "name" TYPE VARCHAR(80);`),
    );
    const before = await fingerprint(db);

    const result = await runTys(['migrate'], env(db));
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toContain('  Investment.sector: present in the database, not in the baseline');
    expect(lines).toContain('  index Account_userId_idx: in the baseline, missing in the database');
    expect(lines).toContain('  Portfolio.name: text NOT NULL in the baseline, character varying(80) NOT NULL in the database');
    expect(lines).toHaveLength(5);
    expect(result.stderr).toMatch(/tys migrate --baseline/);
    expect(await sql(db, `SELECT to_regclass('public._prisma_migrations') AS t`)).toEqual([{ t: null }]);
    expect(await fingerprint(db)).toEqual(before);

    const unconfirmed = await runTys(['migrate', '--baseline'], env(db));
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stderr).toMatch(/nothing changed: confirm at the prompt, or add --yes/);
    expect(await fingerprint(db)).toEqual(before);
  });

  it("adopts with --baseline --yes: creates the missing indexes the application's own schema lacked, then migrates", async () => {
    const db = track(await mvpDatabase(`DROP INDEX "Account_userId_idx"; DROP INDEX "Session_userId_idx";`));
    const result = await runTys(['migrate', '--baseline', '--yes'], env(db));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/adopted database .*; created Account_userId_idx, Session_userId_idx/);
    expect(result.stdout).toMatch(/database is up to date/);
    const indexes = await sql<{ indexname: string }>(db, `SELECT indexname FROM pg_indexes WHERE indexname LIKE '%userId_idx'`);
    expect(indexes.map((i) => i.indexname)).toEqual(expect.arrayContaining(['Account_userId_idx', 'Session_userId_idx']));
    const [baseline] = await sql<{ logs: string }>(db, `SELECT logs FROM _prisma_migrations WHERE migration_name = '${BASELINE}'`);
    expect(baseline!.logs).toMatch(/index Session_userId_idx: in the baseline, missing in the database/);
  });

  it('never creates a mistyped database, and a failed first migration leaves no history table behind', async () => {
    const missing = `tys_test_prdo_${randomBytes(4).toString('hex')}`;
    const result = await runTys(['migrate'], env({ url: serverUrl(missing) }));
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(`error: database "${missing}" does not exist on 127.0.0.1:5432 (use --create-database to create it)`);
    expect(await withClient(async (c) => (await c.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [missing])).rowCount)).toBe(0);

    // A table the baseline would create, in a database that is not the MVP's: the first migration fails.
    const db = track(await createTestDatabase({ empty: true }));
    await sql(db, `CREATE TYPE "AssetType" AS ENUM ('OTHER')`);
    const failed = await runTys(['migrate'], env(db));
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/20251012000000_mvp_baseline failed and was rolled back: type "AssetType" already exists/);
    expect(await sql(db, `SELECT to_regclass('public._prisma_migrations') AS t`)).toEqual([{ t: null }]);
  });

  it('names a server older than Postgres 13 before it changes anything, and takes this one', async () => {
    expect(serverVersionProblem(120015, '12.15')).toBe('this server runs Postgres 12.15; the fleet needs Postgres 13 or later');
    expect(serverVersionProblem(90624, '9.6.24 (Debian 9.6.24-1)')).toBe(
      'this server runs Postgres 9.6.24 (Debian 9.6.24-1); the fleet needs Postgres 13 or later',
    );
    expect(serverVersionProblem(130000, '13.0')).toBeNull();
    const here = await withClient(async (c) => (await c.query<{ num: number }>(`SELECT current_setting('server_version_num')::int AS num`)).rows[0]!.num);
    expect(here).toBeGreaterThanOrEqual(MIN_SERVER_VERSION_NUM);
    const db = track(await createTestDatabase({ empty: true }));
    const client = await connectDatabase(db.url);
    await client.end();
  });

  it('migrate down lists what it drops and changes nothing without --yes; sales are archived, never dropped', async () => {
    const db = track(await createTestDatabase());
    await sql(
      db,
      MVP_ROWS +
        `
      INSERT INTO "TaxLot" (id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", "remainingQuantity", status, "updatedAt")
      VALUES ('l1', 'i1', '2024-01-02', 10.5, 200.12345678, 8.5, 'PARTIALLY_CLOSED', now());
      INSERT INTO "SaleTransaction" (id, "investmentId", "saleDate", quantity, "salePricePerUnit") VALUES ('s1', 'i1', '2024-06-01', 2, 260.5);
      INSERT INTO "TaxLotAllocation" (id, "saleId", "taxLotId", "quantityAllocated") VALUES ('al1', 's1', 'l1', 2);`,
    );

    const refused = await runTys(['migrate', 'down', '--to', BASELINE], env(db));
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(new RegExp(`would revert ${FILES.length - 1} migration\\(s\\) on database "${db.name}"`));
    expect(refused.stdout).toMatch(
      /20251012000200_phase2_tax_reporting: drops table "TaxLotAllocation" \(1 rows\), table "SaleTransaction" \(1 rows\), table "TaxLot" \(1 rows\)/,
    );
    expect(refused.stderr).toMatch(/hold 1 sales and 1 allocations; nothing changed. Add --archive-sales/);

    const toPhase4 = await runTys(['migrate', 'down', '--to', PHASE4], env(db));
    expect(toPhase4.code).toBe(1);
    expect(toPhase4.stdout).toMatch(/column Investment\.sector \(0 values\)/);
    expect(toPhase4.stderr).toMatch(/nothing changed: add --yes/);
    expect((await sql(db, `SELECT count(*)::int AS n FROM _prisma_migrations`))[0]!.n).toBe(FILES.length);

    const archived = await runTys(['migrate', 'down', '--to', BASELINE, '--archive-sales', '--yes'], env(db));
    expect(archived.stderr).toBe('');
    expect(archived.code).toBe(0);
    expect(archived.stdout).toMatch(/archived 1 sales, 1 allocations and 1 lots/);
    expect(await sql(db, `SELECT id, "investmentId", quantity::text, "salePricePerUnit"::text FROM "ArchivedSaleTransaction"`)).toEqual([
      { id: 's1', investmentId: 'i1', quantity: '2.00000000', salePricePerUnit: '260.50000000' },
    ]);
    expect(await sql(db, `SELECT id, "saleId", "taxLotId" FROM "ArchivedTaxLotAllocation"`)).toEqual([{ id: 'al1', saleId: 's1', taxLotId: 'l1' }]);
    expect(await sql(db, `SELECT id, status, "remainingQuantity"::text FROM "ArchivedTaxLot"`)).toEqual([
      { id: 'l1', status: 'PARTIALLY_CLOSED', remainingQuantity: '8.50000000' },
    ]);
    expect(await sql(db, `SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid::regclass::text LIKE '"Archived%' AND contype = 'f'`)).toEqual([
      { n: 0 },
    ]);
    expect(await sql(db, `SELECT to_regclass('public."TaxLot"') AS t`)).toEqual([{ t: null }]);
    expect(await sql(db, `SELECT id FROM "Investment"`)).toEqual([{ id: 'i1' }]);
  });

  it('waits at most the lock timeout per try behind a long transaction, names it, and applies nothing until it ends', async () => {
    const db = track(await createTestDatabase());
    await revertMigrations(db.url, PHASE4);
    await withSession(db, 'reporting-job', async (blocker) => {
      await blocker.query(`BEGIN; SELECT count(*) FROM "Investment"`);
      const blocked = await runTys(['migrate', '--lock-timeout', '300ms', '--lock-retries', '2'], env(db));
      expect(blocked.code).toBe(1);
      const pid = (blocker as unknown as { processID: number }).processID;
      expect(blocked.stdout).toMatch(
        new RegExp(
          `${PHASE5}: lock timeout \\(300 ms\\) on try 1 of 3, blocked by pid ${pid} \\(application "reporting-job", idle in transaction, transaction open \\d+ s\\); trying again`,
        ),
      );
      expect(blocked.stderr).toMatch(
        new RegExp(`${PHASE5} not applied: no lock within 300 ms in 3 tries, blocked by pid ${pid} \\(application "reporting-job"`),
      );
      const applied = await sql<{ migration_name: string }>(db, `SELECT migration_name FROM _prisma_migrations`);
      expect(applied.map((a) => a.migration_name)).not.toContain(PHASE5);
      expect(await sql(db, `SELECT count(*)::int AS n FROM information_schema.columns WHERE column_name = 'sector'`)).toEqual([{ n: 0 }]);
    });
    const unblocked = await runTys(['migrate', '--lock-timeout', '300ms'], env(db));
    expect(unblocked.code).toBe(0);
    expect(unblocked.stdout).toContain(`applied ${PHASE5}`);
  });

  it('takes every lock it needs before its first statement, so an application transaction reading the same tables is neither deadlocked nor fails it', async () => {
    const db = track(await createTestDatabase());
    await revertMigrations(db.url, PHASE3);
    await withSession(db, 'portfolio-page', async (app) => {
      // The application holds one table of phase 4 (TaxLot) and then reads the other (Investment). A migration that
      // takes Investment at its first ALTER and then waits for TaxLot closes a cycle, and one side dies of it.
      await app.query(`BEGIN; SELECT count(*) FROM "TaxLot"`);
      const migrating = runTys(['migrate', '--lock-timeout', '10s'], env(db));
      await untilWaitingFor(db, 'TaxLot');
      expect((await app.query(`SELECT count(*)::int AS n FROM "Investment"`)).rows).toEqual([{ n: 0 }]);
      await app.query('COMMIT');
      const migrated = await migrating;
      expect(migrated.stderr).toBe('');
      expect(migrated.code).toBe(0);
      expect(migrated.stdout).toContain(`applied ${PHASE4}`);
      expect(migrated.stdout).not.toMatch(/deadlock/);
    });
  });

  it("creates a migration's new tables before it locks the application's: ACCESS EXCLUSIVE on Investment is held only for what needs it", async () => {
    const db = track(await createTestDatabase());
    await revertMigrations(db.url, PHASE4);
    await withSession(db, 'portfolio-page', async (app) => {
      await app.query(`BEGIN; SELECT count(*) FROM "Investment"`);
      const migrating = runTys(['migrate', '--to', PHASE5, '--lock-timeout', '10s'], env(db));
      // Waiting for Investment, it already holds the four tables it created (and their indexes), which nobody else can see yet.
      // One snapshot of the locks: the migration asks for Investment 100 ms at a time, and pauses between asks.
      let held: { n: number } | undefined;
      await until(
        'the migration to ask for Investment',
        async () => {
          [held] = await sql<{ n: number }>(
            db,
            `WITH locks AS MATERIALIZED (SELECT pid, granted, locktype, mode, relation FROM pg_locks)
             SELECT (SELECT count(*)::int FROM locks l
                      WHERE l.pid = waiting.pid AND l.granted AND l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock') AS n
               FROM locks waiting WHERE waiting.relation = '"Investment"'::regclass AND NOT waiting.granted LIMIT 1`,
          );
          return held !== undefined;
        },
        30_000,
        10,
      );
      expect(held!.n).toBeGreaterThanOrEqual(4);
      await app.query('COMMIT');
      const migrated = await migrating;
      expect(migrated.code, migrated.stderr).toBe(0);
      expect(migrated.stdout).toContain(`applied ${PHASE5}`);
      const tables = await sql<{ name: string }>(
        db,
        `SELECT table_name AS name FROM information_schema.tables WHERE table_name IN ('PortfolioBenchmark', 'BenchmarkPrice', 'Goal', 'PriceAlert') ORDER BY 1`,
      );
      expect(tables.map((t) => t.name)).toEqual(['BenchmarkPrice', 'Goal', 'PortfolioBenchmark', 'PriceAlert']);
    });
  });

  it('moves ahead only statements on new objects that name nothing a statement they pass names, and none where the SQL cannot be split safely', () => {
    const phase5 = newObjectsFirst(readMigrationSql(PHASE5, 'migration'));
    expect(lockPlan(phase5.late)).toEqual({
      exclusive: ['"Investment"', '"PortfolioBenchmark"', '"Goal"', '"PriceAlert"'],
      referenced: ['"Portfolio"', '"User"'],
    });
    expect(phase5.late.split(';\n').map((s) => /ALTER TABLE "\w+"/.exec(s)?.[0])).toEqual([
      'ALTER TABLE "Investment"',
      'ALTER TABLE "PortfolioBenchmark"',
      'ALTER TABLE "Goal"',
      'ALTER TABLE "Goal"',
      'ALTER TABLE "PriceAlert"',
    ]);
    expect(phase5.early).toMatch(/^-- CreateEnum\nCREATE TYPE "GoalType"/);
    expect(phase5.early).not.toContain('"Investment"');
    expect(newObjectsFirst(`ALTER TABLE "Old" ADD COLUMN "code" TEXT; CREATE TABLE "New" ("code" TEXT); CREATE TYPE "Kind" AS ENUM ('a');`)).toEqual({
      early: `CREATE TYPE "Kind" AS ENUM ('a');`,
      late: `ALTER TABLE "Old" ADD COLUMN "code" TEXT;\nCREATE TABLE "New" ("code" TEXT);`,
    });
    // A default naming a sequence the migration creates, a copy of an existing table, a foreign key to one: all stay in place.
    for (const sqlText of [
      `CREATE SEQUENCE counter; CREATE TABLE "N" (id int DEFAULT nextval('counter'));`,
      `ALTER TABLE "Old" ADD COLUMN x int; CREATE TABLE "N" (LIKE "Other");`,
      `ALTER TABLE "Old" ADD COLUMN x int; CREATE TABLE "N" (id int REFERENCES "Other"(id));`,
    ]) {
      expect(newObjectsFirst(sqlText).early, sqlText).toBe('');
    }
    // SQL that cannot be split at its semicolons, or a statement that changes what a later CREATE does without naming it: nothing moves.
    for (const sqlText of [
      `ALTER TABLE "Old" ADD COLUMN x int; CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; CREATE TABLE "N" (id int);`,
      `ALTER TABLE "Old" ADD COLUMN x int; SET search_path = archive; CREATE TABLE "N" (id int);`,
      `ALTER TABLE "Old" ADD COLUMN x int; ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO reporting; CREATE TABLE "N" (id int);`,
    ]) {
      expect(newObjectsFirst(sqlText), sqlText).toEqual({ early: '', late: sqlText });
    }
  });

  it('reads the tables a migration locks from its SQL: altered, dropped and indexed ones exclusively, referenced ones for writes only', () => {
    expect(lockPlan(readMigrationSql(PHASE4, 'migration'))).toEqual({ exclusive: ['"Investment"', '"TaxLot"'], referenced: [] });
    expect(lockPlan(readMigrationSql('20251012000200_phase2_tax_reporting', 'migration'))).toEqual({
      exclusive: ['"TaxLot"', '"SaleTransaction"', '"TaxLotAllocation"'],
      referenced: ['"Investment"'],
    });
    expect(
      lockPlan(`-- ALTER TABLE "InAComment"
        ALTER TABLE IF EXISTS ONLY public.plain ADD COLUMN x int; SELECT 'DROP TABLE "InAString"';
        CREATE UNIQUE INDEX "i" ON ONLY "S"."T" (y); CREATE INDEX ON bare (x);
        ALTER TABLE plain ADD FOREIGN KEY (b) REFERENCES "Other"(id); TRUNCATE "Gone"; DROP TABLE IF EXISTS "Old";`),
    ).toEqual({ exclusive: ['"public"."plain"', '"plain"', '"Old"', '"Gone"', '"S"."T"', '"bare"'], referenced: ['"Other"'] });
  });
});
