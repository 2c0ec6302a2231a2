import { Prisma, type PrismaClient } from '../db/prisma.js';
import { sqlRows } from '../db/sql.js';
import { utcNowSql } from '../db/utc.js';
import { auditRecord } from '../fleet/audit.js';
import { PermanentJobError } from '../fleet/errors.js';
import { DEFAULT_FAMILY_OPTIONS, eachItem, type ItemResult, type JobFamily, type WorkItem } from '../fleet/family.js';
import { investmentScopeSql, isRowId } from '../fleet/scope.js';

export type Entity = 'Investment' | 'TaxLot';
/** Column values as Postgres prints them (numeric::text): exact, and comparable as text. */
export type Row = Record<string, string | null>;

/** What to do with a row that breaks a constraint. */
type Fix = { kind: 'set'; value: string | null } | { kind: 'clamp'; min: string; maxColumn: string } | { kind: 'manual'; reason: string };

export interface ConstraintPolicy {
  constraint: string;
  entity: Entity;
  /** The column the fix writes. */
  column: string;
  /** The rows that break the constraint, as SQL over the entity's table under the given alias. */
  violationSql(alias: Prisma.Sql): Prisma.Sql;
  /** The same test on a locked row. */
  violated(row: Row): boolean;
  fix: Fix;
}

const D = (value: string) => new Prisma.Decimal(value);

/**
 * The fix policy of phase 4, in one place. Investment: the document's fixes
 * (non-positive quantity becomes 0.00000001, negative cost basis 0, negative
 * price NULL), each recorded with its old value so it can be reverted. TaxLot:
 * remainingQuantity clamped into [0, quantity], a negative cost basis 0 (as
 * its investment's); a lot whose quantity is not positive is left for a
 * person. Policies apply in this order.
 */
export const CONSTRAINT_POLICIES: readonly ConstraintPolicy[] = [
  {
    constraint: 'Investment_totalQuantity_positive',
    entity: 'Investment',
    column: 'totalQuantity',
    violationSql: (x) => Prisma.sql`${x}."totalQuantity" <= 0`,
    violated: (row) => D(row.totalQuantity!).lte(0),
    fix: { kind: 'set', value: '0.00000001' },
  },
  {
    constraint: 'Investment_averageCostBasis_positive',
    entity: 'Investment',
    column: 'averageCostBasis',
    violationSql: (x) => Prisma.sql`${x}."averageCostBasis" < 0`,
    violated: (row) => D(row.averageCostBasis!).lt(0),
    fix: { kind: 'set', value: '0' },
  },
  {
    constraint: 'Investment_currentPrice_positive',
    entity: 'Investment',
    column: 'currentPrice',
    violationSql: (x) => Prisma.sql`${x}."currentPrice" < 0`,
    violated: (row) => row.currentPrice != null && D(row.currentPrice).lt(0),
    fix: { kind: 'set', value: null },
  },
  {
    constraint: 'TaxLot_quantity_positive',
    entity: 'TaxLot',
    column: 'quantity',
    violationSql: (x) => Prisma.sql`${x}.quantity <= 0`,
    violated: (row) => D(row.quantity!).lte(0),
    fix: { kind: 'manual', reason: 'a lot without a positive quantity cannot be repaired by rule: correct it by hand' },
  },
  {
    constraint: 'TaxLot_remainingQuantity_valid',
    entity: 'TaxLot',
    column: 'remainingQuantity',
    violationSql: (x) => Prisma.sql`(${x}."remainingQuantity" < 0 OR ${x}."remainingQuantity" > ${x}.quantity)`,
    violated: (row) => D(row.remainingQuantity!).lt(0) || D(row.remainingQuantity!).gt(D(row.quantity!)),
    fix: { kind: 'clamp', min: '0', maxColumn: 'quantity' },
  },
  {
    constraint: 'TaxLot_costBasisPerUnit_nonnegative',
    entity: 'TaxLot',
    column: 'costBasisPerUnit',
    violationSql: (x) => Prisma.sql`${x}."costBasisPerUnit" < 0`,
    violated: (row) => D(row.costBasisPerUnit!).lt(0),
    fix: { kind: 'set', value: '0' },
  },
];

/** Columns read from each entity (as text), owner included for the audit entry. */
const ENTITY_SQL: Record<Entity, { table: Prisma.Sql; columns: string[]; owner: Prisma.Sql }> = {
  Investment: {
    table: Prisma.sql`"Investment"`,
    columns: ['totalQuantity', 'averageCostBasis', 'currentPrice'],
    owner: Prisma.sql`(SELECT p."userId" FROM "Portfolio" p WHERE p.id = x."portfolioId")`,
  },
  TaxLot: {
    table: Prisma.sql`"TaxLot"`,
    columns: ['quantity', 'remainingQuantity', 'costBasisPerUnit'],
    owner: Prisma.sql`(SELECT p."userId" FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId" WHERE i.id = x."investmentId")`,
  },
};

const KEY_PATTERN = /^(Investment|TaxLot)\.([A-Za-z0-9_-]{1,64})$/;

function parseKey(key: string): { entity: Entity; id: string } {
  const match = KEY_PATTERN.exec(key)!;
  return { entity: match[1] as Entity, id: match[2]! };
}

const column = (name: string) => Prisma.raw(`"${name}"`);

const X = Prisma.raw('x');

/** SQL true for a row of `entity` (under `alias`) that breaks any of its policies. */
export function violationsOf(entity: Entity, alias: Prisma.Sql): Prisma.Sql {
  // A NULL column satisfies a CHECK: coalesce so that NOT (...) is true for it.
  const tests = Prisma.join(
    CONSTRAINT_POLICIES.filter((p) => p.entity === entity).map((p) => p.violationSql(alias)),
    ' OR ',
  );
  return Prisma.sql`coalesce(${tests}, false)`;
}

function fixedValue(policy: ConstraintPolicy, row: Row): string | null {
  const { fix } = policy;
  if (fix.kind === 'set') return fix.value;
  if (fix.kind === 'clamp') return Prisma.Decimal.min(Prisma.Decimal.max(D(row[policy.column]!), D(fix.min)), D(row[fix.maxColumn]!)).toFixed();
  throw new Error(`policy ${policy.constraint} has no automatic fix`);
}

/** What the policies make of one row: nothing, new values for some columns, or a refusal that needs a person. */
export type FixPlan =
  | { kind: 'clean' }
  | { kind: 'fix'; broken: ConstraintPolicy[]; changes: Map<string, string | null> }
  | { kind: 'manual'; policy: ConstraintPolicy; reason: string };

/** The policies of `entity` that a row's values (as numeric text) break. */
export function brokenPolicies(entity: Entity, row: Row): ConstraintPolicy[] {
  return CONSTRAINT_POLICIES.filter((p) => p.entity === entity && p.violated(row));
}

/** Pure: the policies applied to a row's values (as numeric text), in their order. */
export function planFix(entity: Entity, row: Row): FixPlan {
  const broken = brokenPolicies(entity, row);
  if (broken.length === 0) return { kind: 'clean' };
  const manual = broken.find((p) => p.fix.kind === 'manual');
  if (manual?.fix.kind === 'manual') return { kind: 'manual', policy: manual, reason: manual.fix.reason };
  return { kind: 'fix', broken, changes: new Map(broken.map((p) => [p.column, fixedValue(p, row)])) };
}

async function fixRow(prisma: PrismaClient, item: WorkItem): Promise<ItemResult> {
  const { entity, id } = parseKey(item.key);
  const { table, columns, owner } = ENTITY_SQL[entity];
  return prisma.$transaction(async (tx) => {
    // Re-checked under a row lock: the row may have been fixed, by a person or another job, since it was enqueued.
    const [row] = await tx.$queryRaw<(Row & { userId: string })[]>`
      SELECT ${Prisma.join(columns.map((c) => Prisma.sql`x.${column(c)}::text AS ${column(c)}`))}, ${owner} AS "userId"
        FROM ${table} x WHERE x.id = ${id} FOR UPDATE`;
    if (!row) return { status: 'skipped', reason: `${entity} no longer exists` };
    const plan = planFix(entity, row);
    if (plan.kind === 'clean') return { status: 'skipped', reason: `${entity} already satisfies every constraint` };
    if (plan.kind === 'manual') {
      const { policy, reason } = plan;
      return new PermanentJobError(`${entity} ${id} breaks ${policy.constraint} (${policy.column} = ${row[policy.column]}): ${reason}`);
    }
    const { broken, changes } = plan;
    const [after] = await tx.$queryRaw<Row[]>`
      UPDATE ${table} x SET ${Prisma.join([...changes].map(([c, value]) => Prisma.sql`${column(c)} = ${value}::numeric`))}, "updatedAt" = ${utcNowSql}
       WHERE x.id = ${id}
       RETURNING ${Prisma.join([...changes.keys()].map((c) => Prisma.sql`x.${column(c)}::text AS ${column(c)}`))}`;
    await tx.auditLog.create({
      data: auditRecord({
        userId: row.userId,
        action: 'FIX_CONSTRAINT',
        entity,
        entityId: id,
        runId: item.runId,
        jobId: item.jobId,
        before: Object.fromEntries([...changes.keys()].map((c) => [c, row[c] ?? null])),
        after: after!,
        extra: { constraints: broken.map((p) => p.constraint) },
      }),
    });
    return { status: 'changed', detail: broken.map((p) => p.constraint).join(', ') };
  });
}

export interface ConstraintAudit {
  constraint: string;
  entity: Entity;
  violations: number;
  sample: string[];
}

/** Violations of every phase 4 constraint, with a sample of offending ids each. */
export async function auditConstraints(prisma: PrismaClient, sampleSize = 10): Promise<ConstraintAudit[]> {
  const results: ConstraintAudit[] = [];
  for (const policy of CONSTRAINT_POLICIES) {
    const { table } = ENTITY_SQL[policy.entity];
    const [count] = await prisma.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM ${table} x WHERE ${policy.violationSql(X)}`;
    const sample = await prisma.$queryRaw<{ id: string }[]>`
      SELECT x.id FROM ${table} x WHERE ${policy.violationSql(X)} ORDER BY x.id LIMIT ${sampleSize}`;
    results.push({ constraint: policy.constraint, entity: policy.entity, violations: Number(count!.n), sample: sample.map((r) => r.id) });
  }
  return results;
}

export interface ValidationResult {
  constraint: string;
  table: string;
  validBefore: boolean;
  validAfter: boolean;
}

/**
 * VALIDATE CONSTRAINT for each phase 4 constraint not yet valid. VALIDATE
 * takes only a SHARE UPDATE EXCLUSIVE lock: reads and writes go on meanwhile.
 */
export async function validateConstraints(prisma: PrismaClient): Promise<ValidationResult[]> {
  const state = async () =>
    new Map(
      (
        await prisma.$queryRaw<{ conname: string; table: string; convalidated: boolean }[]>`
          SELECT conname, conrelid::regclass::text AS table, convalidated FROM pg_constraint
           WHERE conname = ANY(${CONSTRAINT_POLICIES.map((p) => p.constraint)}::text[])`
      ).map((row) => [row.conname, row]),
    );
  const before = await state();
  for (const policy of CONSTRAINT_POLICIES) {
    const constraint = before.get(policy.constraint);
    if (!constraint) throw new Error(`constraint ${policy.constraint} does not exist: apply the migrations first (tys migrate)`);
    if (!constraint.convalidated) {
      await prisma.$executeRawUnsafe(`ALTER TABLE "${policy.entity}" VALIDATE CONSTRAINT "${policy.constraint}"`);
    }
  }
  const after = await state();
  return CONSTRAINT_POLICIES.map((p) => ({
    constraint: p.constraint,
    table: p.entity,
    validBefore: before.get(p.constraint)!.convalidated,
    validAfter: after.get(p.constraint)!.convalidated,
  }));
}

/**
 * Phase 4: every Investment and TaxLot row that breaks a CHECK constraint is
 * fixed in a job of its own, by the policy above, with its old values kept in
 * the audit entry (tys revert --run ID puts them back).
 */
export const constraintsFamily: JobFamily = {
  name: 'constraints',
  description: 'fix rows that break a phase 4 CHECK constraint, keeping the old values (phase 4)',
  exampleKey: 'Investment.nosuchinvestment',
  auditHelp: 'violations of each phase 4 CHECK constraint',
  verifyHelp: 'no Investment or TaxLot row breaks a phase 4 constraint',
  scopes: ['all', 'investments', 'portfolio', 'user'],

  async source(prisma, scope, after, limit) {
    const rows = await sqlRows<{ key: string }>(
      prisma,
      Prisma.sql`
      SELECT key FROM (
        SELECT 'Investment.' || i.id AS key
          FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId"
         WHERE (${violationsOf('Investment', Prisma.raw('i'))}) AND ${investmentScopeSql(scope)}
        UNION ALL
        SELECT 'TaxLot.' || x.id
          FROM "TaxLot" x JOIN "Investment" i ON i.id = x."investmentId" JOIN "Portfolio" p ON p.id = i."portfolioId"
         WHERE (${violationsOf('TaxLot', X)}) AND ${investmentScopeSql(scope)}
      ) k
      WHERE key > ${after} ORDER BY key LIMIT ${limit}`,
    );
    return rows.map((row) => row.key);
  },

  isValidKey: (key) => KEY_PATTERN.test(key) && isRowId(parseKey(key).id),
  async investmentKeys(prisma, investmentId) {
    const lots = await sqlRows<{ id: string }>(prisma, Prisma.sql`SELECT id FROM "TaxLot" WHERE "investmentId" = ${investmentId} ORDER BY id`);
    return [`Investment.${investmentId}`, ...lots.map((lot) => `TaxLot.${lot.id}`)];
  },

  handle: eachItem((ctx, item) => fixRow(ctx.prisma, item)),

  revertible: {
    Investment: { columns: { totalQuantity: 'numeric', averageCostBasis: 'numeric', currentPrice: 'numeric' }, hasUpdatedAt: true },
    TaxLot: { columns: { quantity: 'numeric', remainingQuantity: 'numeric', costBasisPerUnit: 'numeric' }, hasUpdatedAt: true },
  },

  async audit(prisma) {
    const audits = await auditConstraints(prisma);
    return audits.map((a) => ({ check: `${a.constraint} (${a.entity})`, count: a.violations, sample: a.sample }));
  },

  async verify(prisma) {
    const audits = await auditConstraints(prisma, 100);
    const [checked] = await prisma.$queryRaw<{ n: bigint }[]>`SELECT (SELECT count(*) FROM "Investment") + (SELECT count(*) FROM "TaxLot") AS n`;
    const problems = audits.flatMap((a) => a.sample.map((id) => ({ id, problem: `${a.entity} breaks ${a.constraint}` })));
    const problemCount = audits.reduce((sum, a) => sum + a.violations, 0);
    return { ok: problemCount === 0, checked: Number(checked!.n), problems: problems.slice(0, 100), problemCount };
  },

  // Violations are rare and each is its own transaction: no batching needed.
  options: { ...DEFAULT_FAMILY_OPTIONS, concurrency: 10 },
};
