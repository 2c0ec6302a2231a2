import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployMigrations } from '../src/db/migrate/deploy.js';
import { listMigrationFiles } from '../src/db/migrate/files.js';
import { revertMigrations } from '../src/db/migrate/revert.js';
import { migrationStatus } from '../src/db/migrate/status.js';
import { PROJECT_ROOT } from '../src/project-root.js';
import { createPrisma, Prisma } from '../src/db/prisma.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';

const execFileAsync = promisify(execFile);
const PRISMA_CLI = path.join(PROJECT_ROOT, 'node_modules', 'prisma', 'build', 'index.js');
const BASELINE = '20251012000000_mvp_baseline';
const MIGRATION_COUNT = listMigrationFiles().length;

const DOCUMENT_TABLES = [
  'User',
  'Account',
  'Session',
  'VerificationToken',
  'Portfolio',
  'Investment',
  'AuditLog',
  'SessionInfo',
  'TaxLot',
  'SaleTransaction',
  'TaxLotAllocation',
  'Dividend',
  'CorporateAction',
  'PortfolioBenchmark',
  'BenchmarkPrice',
  'Goal',
  'PriceAlert',
];
const DOCUMENT_ENUMS = {
  AssetType: ['STOCK', 'ETF', 'CRYPTO', 'MUTUAL_FUND'],
  TaxLotStatus: ['OPEN', 'PARTIALLY_CLOSED', 'CLOSED'],
  DividendType: ['QUALIFIED', 'ORDINARY', 'RETURN_OF_CAPITAL'],
  CorporateActionType: ['STOCK_SPLIT', 'REVERSE_SPLIT', 'TICKER_CHANGE', 'MERGER', 'ACQUISITION', 'SPIN_OFF', 'DELISTING'],
  GoalType: ['RETIREMENT', 'HOME_PURCHASE', 'EDUCATION', 'EMERGENCY_FUND', 'FINANCIAL_INDEPENDENCE', 'CUSTOM'],
  GoalStatus: ['ON_TRACK', 'OFF_TRACK', 'AT_RISK', 'ACHIEVED'],
  PriceAlertType: ['PRICE_ABOVE', 'PRICE_BELOW', 'PERCENT_GAIN', 'PERCENT_LOSS'],
};
const PHASE4_CONSTRAINTS = [
  'Investment_totalQuantity_positive',
  'Investment_averageCostBasis_positive',
  'Investment_currentPrice_positive',
  'TaxLot_quantity_positive',
  'TaxLot_remainingQuantity_valid',
  'TaxLot_costBasisPerUnit_nonnegative',
];

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Columns, indexes, foreign keys and enums of the public schema, as comparable text. */
async function structure(url: string): Promise<string[]> {
  const rows = await query<{ line: string }>(
    url,
    `SELECT format('column %s.%s %s %s %s', table_name, column_name, data_type,
                   coalesce(numeric_precision || ',' || numeric_scale, ''), is_nullable) AS line
       FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'
     UNION ALL
     SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '_prisma_migrations'
     UNION ALL
     SELECT format('constraint %s %s', conname, pg_get_constraintdef(oid)) FROM pg_constraint
      WHERE connamespace = 'public'::regnamespace AND contype IN ('f', 'u', 'p') AND conname <> '_prisma_migrations_pkey'
     UNION ALL
     SELECT format('enum %s %s', t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder))
       FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname`,
  );
  return rows.map((r) => r.line).sort();
}

describe('schema migrations', () => {
  let db: TestDatabase;
  let reference: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase({ empty: true });
    reference = await createTestDatabase({ empty: true });
  });
  afterAll(async () => {
    await db?.drop();
    await reference?.drop();
  });

  it('migrates a fresh database to every table, enum and NOT VALID constraint of the document', async () => {
    await deployMigrations(db.url);

    const tables = await query<{ table_name: string }>(db.url, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`);
    expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining([...DOCUMENT_TABLES, 'FleetRun']));

    const enums = await query<{ typname: string; labels: string[] }>(
      db.url,
      `SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text[] AS labels
         FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname`,
    );
    const enumMap = Object.fromEntries(enums.map((e) => [e.typname, e.labels]));
    for (const [name, labels] of Object.entries(DOCUMENT_ENUMS)) expect(enumMap[name]).toEqual(labels);

    const checks = await query<{ conname: string; convalidated: boolean }>(
      db.url,
      `SELECT conname, convalidated FROM pg_constraint WHERE contype = 'c' AND connamespace = 'public'::regnamespace`,
    );
    expect(checks.map((c) => c.conname).sort()).toEqual([...PHASE4_CONSTRAINTS].sort());
    expect(checks.every((c) => c.convalidated === false)).toBe(true);

    const indexes = await query<{ indexname: string }>(db.url, `SELECT indexname FROM pg_indexes WHERE schemaname = 'public'`);
    expect(indexes.map((i) => i.indexname)).toEqual(
      expect.arrayContaining([
        'Investment_ticker_idx',
        'AuditLog_entity_entityId_idx',
        'TaxLot_investmentId_status_idx',
        'TaxLotAllocation_saleId_taxLotId_key',
        'CorporateAction_processed_idx',
        'BenchmarkPrice_ticker_date_key',
        'PriceAlert_ticker_triggered_idx',
        'Goal_userId_status_idx',
        'SessionInfo_userId_lastActive_idx',
      ]),
    );

    const { migrations: states, notAdopted } = await migrationStatus(db.url);
    expect(notAdopted).toBe(false);
    expect(states).toHaveLength(MIGRATION_COUNT);
    expect(states.every((s) => s.appliedAt && !s.modified)).toBe(true);
  });

  it("keeps a history that Prisma's own migrate status and deploy accept", async () => {
    await deployMigrations(db.url);
    const env = { ...process.env, DATABASE_URL: db.url };
    const status = await execFileAsync(process.execPath, [PRISMA_CLI, 'migrate', 'status'], { cwd: PROJECT_ROOT, env });
    expect(status.stdout).toContain('Database schema is up to date');
    expect(await deployMigrations(db.url)).toEqual({ adopted: null, applied: [] });
  });

  it('matches schema.prisma exactly (no drift between the model and the SQL)', async () => {
    await deployMigrations(db.url);
    const { stdout } = await execFileAsync(
      process.execPath,
      [PRISMA_CLI, 'migrate', 'diff', '--from-empty', '--to-schema-datamodel', 'prisma/schema.prisma', '--script'],
      { cwd: PROJECT_ROOT, env: { ...process.env, DATABASE_URL: reference.url } },
    );
    const client = new pg.Client({ connectionString: reference.url });
    await client.connect();
    await client.query(stdout);
    await client.end();
    expect(await structure(db.url)).toEqual(await structure(reference.url));
  });

  it('goes down to the baseline and up again without losing MVP data', async () => {
    await deployMigrations(db.url);
    const prisma = createPrisma(db.url);
    try {
      const user = await prisma.user.create({ data: { email: 'round-trip@example.com', name: 'Round Trip' } });
      const portfolio = await prisma.portfolio.create({ data: { name: 'Core', userId: user.id } });
      await prisma.investment.create({
        data: {
          portfolioId: portfolio.id,
          ticker: 'VTI',
          name: 'Vanguard Total Market',
          assetType: 'ETF',
          totalQuantity: new Prisma.Decimal('12.34567891'),
          averageCostBasis: new Prisma.Decimal('201.12345678'),
          currentPrice: new Prisma.Decimal('250.5'),
        },
      });
    } finally {
      await prisma.$disconnect();
    }
    const before = await query(db.url, `SELECT * FROM "Investment" ORDER BY id`);

    const reverted = await revertMigrations(db.url, BASELINE);
    expect(reverted).toHaveLength(MIGRATION_COUNT - 1);
    const tables = await query<{ table_name: string }>(db.url, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`);
    expect(tables.map((t) => t.table_name)).toEqual(['Account', 'Investment', 'Portfolio', 'Session', 'User', 'VerificationToken', '_prisma_migrations']);
    const atBaseline = await query(db.url, `SELECT * FROM "Investment" ORDER BY id`);
    expect(atBaseline).toEqual(before.map(({ sector, industry, country, marketCap, ...mvp }) => mvp));
    expect(await query(db.url, `SELECT email FROM "User"`)).toEqual([{ email: 'round-trip@example.com' }]);

    await deployMigrations(db.url);
    expect(await query(db.url, `SELECT * FROM "Investment" ORDER BY id`)).toEqual(before);
    expect((await migrationStatus(db.url)).migrations.every((s) => s.appliedAt)).toBe(true);
  });
});
