import { Prisma, type PrismaClient } from '../db/prisma.js';
import { newRowIdSql } from '../db/row-id.js';
import { utcNowSql } from '../db/utc.js';
import { sqlRows, sqlTransaction, type SqlTransaction } from '../db/sql.js';
import { auditMetadataSql, FLEET_ACTOR } from '../fleet/audit.js';
import { PermanentJobError } from '../fleet/errors.js';
import { DEFAULT_FAMILY_OPTIONS, type AuditFinding, type ItemResult, type JobFamily, type WorkItem } from '../fleet/family.js';
import { investmentScopeSql, isRowId } from '../fleet/scope.js';
import { brokenPolicies, violationsOf, type Row } from './constraints.js';
import { planCatchUp, type CatchUpPlan, type Disposal, type HeldLot, type LoggedChange, type Position } from './lot-catch-up.js';

const VERIFY_SAMPLE = 100;

interface VerifyRow {
  id: string;
  totalQuantity: string;
  averageCostBasis: string;
  lotSum: string | null;
  minCost: string | null;
  /** The cost basis of a lot never changed since its creation that differs from its investment's average. */
  driftedCost: string | null;
  lots: bigint;
  offenders: bigint;
  checked: bigint;
}

function lotProblem(row: VerifyRow): string {
  const text = (value: string) => new Prisma.Decimal(value).toFixed();
  if (row.lots === 0n) return 'no tax lots';
  if (new Prisma.Decimal(row.minCost!).lt(0)) return `a lot has a negative costBasisPerUnit ${text(row.minCost!)}`;
  if (!new Prisma.Decimal(row.lotSum!).eq(row.totalQuantity)) return `lots hold ${text(row.lotSum!)} but totalQuantity is ${text(row.totalQuantity)}`;
  return `lot costBasisPerUnit ${text(row.driftedCost!)} but averageCostBasis is ${text(row.averageCostBasis)}`;
}

/** What an investment's lots hold, as `l.held` (NULL without lots), by one index lookup per investment (alias i). */
const heldSql = Prisma.sql`LEFT JOIN LATERAL (SELECT sum(t."remainingQuantity") AS held FROM "TaxLot" t WHERE t."investmentId" = i.id) l ON true`;

/** The investment (alias i) has logged writes not yet applied to its lots. */
const loggedSql = Prisma.sql`EXISTS (SELECT 1 FROM "FleetLotChange" c WHERE c."investmentId" = i.id)`;

/** Lots out of step with the position, and no logged write to say why (under heldSql). */
const unloggedDriftSql = Prisma.sql`l.held <> i."totalQuantity" AND NOT ${loggedSql}`;

/** A keyset page of the investments the log names, in id order after `after`. */
const loggedPageSql = (after: string, limit: number) =>
  Prisma.sql`SELECT DISTINCT "investmentId" AS id FROM "FleetLotChange" WHERE "investmentId" > ${after} ORDER BY 1 LIMIT ${limit}`;

/** An investment as locked by a job: its position, and the columns its constraints judge. */
type LockedPosition = Row & Position & { id: string };

const jsonRows = (rows: readonly object[]) => Prisma.sql`${JSON.stringify(rows)}::jsonb`;

/**
 * The first lot of every investment of the batch that has none, in one
 * statement: the whole position, on the day the investment was created, at
 * its average cost. Its logged writes are in that lot and are deleted.
 * Resolves to the lot made for each investment.
 */
async function makeFirstLots(tx: SqlTransaction, items: readonly WorkItem[]): Promise<Map<string, string>> {
  const created = await tx.query<{ investmentId: string; lotId: string }>(Prisma.sql`
    WITH input AS (
      SELECT DISTINCT ON (id) id, run_id, job_id
        FROM unnest(${items.map((i) => i.key)}::text[], ${items.map((i) => i.runId)}::text[], ${items.map((i) => i.jobId)}::text[])
             AS u(id, run_id, job_id)
       ORDER BY id
    ), lots AS (
      INSERT INTO "TaxLot" (id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", fees,
                            "remainingQuantity", status, "createdAt", "updatedAt")
      SELECT ${newRowIdSql()}, i.id, i."createdAt"::date, i."totalQuantity", i."averageCostBasis", 0,
             i."totalQuantity", 'OPEN', ${utcNowSql}, ${utcNowSql}
        FROM "Investment" i JOIN input ON input.id = i.id
       WHERE NOT EXISTS (SELECT 1 FROM "TaxLot" t WHERE t."investmentId" = i.id)
         AND NOT (${violationsOf('Investment', Prisma.raw('i'))})
      RETURNING id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", "remainingQuantity", status
    ), audit AS (
      INSERT INTO "AuditLog" (id, "userId", action, entity, "entityId", "userAgent", "createdAt", metadata)
      SELECT ${newRowIdSql()}, p."userId", 'CREATE_TAX_LOT', 'TaxLot', lots.id, ${FLEET_ACTOR}, ${utcNowSql},
             ${auditMetadataSql(Prisma.sql`input.run_id`, Prisma.sql`input.job_id`, Prisma.sql`NULL`, lotAfterSql)}
        FROM lots
        JOIN input ON input.id = lots."investmentId"
        JOIN "Investment" i ON i.id = lots."investmentId"
        JOIN "Portfolio" p ON p.id = i."portfolioId"
    ), applied AS (
      DELETE FROM "FleetLotChange" c USING lots WHERE c."investmentId" = lots."investmentId"
    )
    SELECT "investmentId", id AS "lotId" FROM lots`);
  return new Map(created.map((row) => [row.investmentId, row.lotId]));
}

/** What a created lot's audit entry holds as its values (the lot as stored, under the alias lots). */
const lotAfterSql = Prisma.sql`jsonb_build_object(
  'investmentId', lots."investmentId",
  'purchaseDate', to_char(lots."purchaseDate", 'YYYY-MM-DD'),
  'quantity', lots.quantity::text,
  'costBasisPerUnit', lots."costBasisPerUnit"::text,
  'remainingQuantity', lots."remainingQuantity"::text,
  'status', lots.status::text)`;

interface HeldLotRow extends HeldLot {
  investmentId: string;
}

interface ChangeRow extends LoggedChange {
  id: string;
  investmentId: string;
}

/** The lots and logged writes of some positions, read together, by position. */
interface CatchUpState {
  lots: Map<string, HeldLotRow[]>;
  changes: Map<string, ChangeRow[]>;
}

function byInvestment<T extends { investmentId: string }>(rows: readonly T[]): Map<string, T[]> {
  const grouped = new Map<string, T[]>();
  for (const row of rows) grouped.set(row.investmentId, [...(grouped.get(row.investmentId) ?? []), row]);
  return grouped;
}

/** A position's columns as the catch-up reads them (text, exact), under the alias i. */
const positionSql = Prisma.sql`i.id, i."totalQuantity"::text AS "totalQuantity", i."averageCostBasis"::text AS "averageCostBasis",
  i."currentPrice"::text AS "currentPrice", to_char(i."createdAt", 'YYYY-MM-DD') AS "createdOn", to_char(i."updatedAt", 'YYYY-MM-DD') AS "updatedOn"`;

async function readCatchUpState(q: SqlTransaction, ids: readonly string[]): Promise<CatchUpState> {
  // A lot is the fleet's when it has a CREATE_TAX_LOT entry; untouched when
  // its last change is the fleet's own (the entry's time is the lot's
  // updatedAt: both are the writing transaction's start), nothing was sold
  // from it and no sale allocates it.
  const lots = await q.query<HeldLotRow>(Prisma.sql`
    SELECT t.id, t."investmentId", to_char(t."purchaseDate", 'YYYY-MM-DD') AS "purchaseDate",
           t.quantity::text AS quantity, t."remainingQuantity"::text AS "remainingQuantity",
           t."costBasisPerUnit"::text AS "costBasisPerUnit", t.status::text AS status,
           coalesce(f.made, false) AS "fleetMade",
           coalesce(f.made AND t."updatedAt" = f.last AND t."remainingQuantity" = t.quantity
                    AND NOT EXISTS (SELECT 1 FROM "TaxLotAllocation" a WHERE a."taxLotId" = t.id), false) AS untouched
      FROM "TaxLot" t
      LEFT JOIN LATERAL (
        SELECT bool_or(a.action = 'CREATE_TAX_LOT') AS made, max(a."createdAt") AS last
          FROM "AuditLog" a WHERE a.entity = 'TaxLot' AND a."entityId" = t.id AND a."userAgent" = ${FLEET_ACTOR}
      ) f ON true
     WHERE t."investmentId" = ANY(${ids}::text[])
     ORDER BY t."investmentId", t."purchaseDate", t."createdAt", t.id`);
  const changes = await q.query<ChangeRow>(Prisma.sql`
    SELECT id::text AS id, "investmentId", "oldQuantity"::text AS "oldQuantity", "newQuantity"::text AS "newQuantity",
           "oldAverage"::text AS "oldAverage", "newAverage"::text AS "newAverage", to_char("changedAt", 'YYYY-MM-DD') AS "changedOn",
           "transactionId"::text AS "transactionId"
      FROM "FleetLotChange" c WHERE "investmentId" = ANY(${ids}::text[]) ORDER BY "investmentId", c.id`);
  return { lots: byInvestment(lots), changes: byInvestment(changes) };
}

/** The plan of one position, from the state read for its batch. */
function planFor(position: Position & { id: string }, state: CatchUpState): { plan: CatchUpPlan; held: HeldLotRow[]; logged: ChangeRow[] } {
  const held = state.lots.get(position.id) ?? [];
  const logged = state.changes.get(position.id) ?? [];
  return { plan: planCatchUp(position, held, logged), held, logged };
}

/**
 * Brings the lots of positions that have some back in step (see
 * planCatchUp), a batch at a time: one read of their lots, one of their
 * logged writes, then at most one statement each for the lots made, the
 * lots changed and the log entries applied.
 */
async function catchUp(tx: SqlTransaction, positions: readonly LockedPosition[], items: readonly WorkItem[]): Promise<Map<string, ItemResult>> {
  const state = await readCatchUpState(
    tx,
    positions.map((p) => p.id),
  );
  const work = new Map(items.map((item) => [item.key, item]));
  const results = new Map<string, ItemResult>();
  const created: object[] = [];
  const updated: object[] = [];
  const applied: object[] = [];
  for (const position of positions) {
    const { plan, held, logged } = planFor(position, state);
    const brokenLot = brokenLotOf(held);
    if (brokenLot) {
      results.set(position.id, new PermanentJobError(`investment ${position.id}: ${brokenLot}: run the constraints family first (tys enqueue constraints)`));
      continue;
    }
    if (plan.kind === 'refused') {
      results.set(position.id, new PermanentJobError(`investment ${position.id}: ${plan.reason}; nothing was changed (tys audit lots lists it)`));
      continue;
    }
    const last = logged[logged.length - 1];
    if (last) applied.push({ investment_id: position.id, last: last.id });
    if (plan.kind === 'in-step') {
      results.set(position.id, { status: 'skipped', reason: 'lots already in step with the position' });
      continue;
    }
    const { runId, jobId } = work.get(position.id)!;
    const sold = soldFrom(plan.disposals);
    plan.created.forEach((lot, n) =>
      created.push({ ...lot, investment_id: position.id, sold: sold.get(`new ${n + 1}`) ?? null, via: plan.via, run_id: runId, job_id: jobId }),
    );
    for (const lot of plan.updated) {
      const was = held.find((h) => h.id === lot.id)!;
      updated.push({
        ...lot,
        action: new Prisma.Decimal(was.remainingQuantity).eq(lot.remainingQuantity) ? 'CORRECT_TAX_LOT_COST' : 'DISPOSE_TAX_LOT',
        before: { remainingQuantity: was.remainingQuantity, status: was.status, costBasisPerUnit: was.costBasisPerUnit },
        investment_id: position.id,
        sold: sold.get(lot.id) ?? null,
        via: plan.via,
        run_id: runId,
        job_id: jobId,
      });
    }
    results.set(position.id, describePlan(plan));
  }
  if (created.length > 0) await insertLots(tx, created);
  if (updated.length > 0) await updateLots(tx, updated);
  if (applied.length > 0) {
    await tx.query(Prisma.sql`
      DELETE FROM "FleetLotChange" c
       USING jsonb_to_recordset(${jsonRows(applied)}) AS u(investment_id text, last bigint)
       WHERE c."investmentId" = u.investment_id AND c.id <= u.last`);
  }
  return results;
}

/** A lot that breaks a phase 4 rule, described, if the position has one: its sums would carry the fault into the plan. */
function brokenLotOf(held: readonly HeldLotRow[]): string | null {
  for (const lot of held) {
    const broken = brokenPolicies('TaxLot', lot as unknown as Row);
    if (broken.length > 0)
      return `its lot ${lot.id} breaks ${broken.map((p) => `${p.constraint} (${p.column} = ${lot[p.column as keyof HeldLotRow]})`).join(', ')}`;
  }
  return null;
}

/** The disposals of a plan, lot by lot: what each lot gave, and when. */
function soldFrom(disposals: readonly Disposal[]): Map<string, { on: string; quantity: string }[]> {
  const byLot = new Map<string, { on: string; quantity: string }[]>();
  for (const disposal of disposals) {
    for (const { lot, quantity } of disposal.lots) byLot.set(lot, [...(byLot.get(lot) ?? []), { on: disposal.on, quantity }]);
  }
  return byLot;
}

function describePlan(plan: Extract<CatchUpPlan, { kind: 'apply' }>): ItemResult {
  const parts = [
    ...plan.created.map((lot) => `bought ${lot.quantity} on ${lot.purchaseDate} at ${lot.costBasisPerUnit}`),
    ...plan.disposals.map((d) => `sold ${d.quantity} on ${d.on} from ${d.lots.length} lot(s), no sale recorded`),
    ...(plan.corrections > 0 ? ['lot costs follow the corrected average'] : []),
  ];
  const leftAlone = plan.leftAlone.map((text) => `${text}: lots the application made or changed keep their costs`);
  if (parts.length === 0) return { status: 'skipped', reason: leftAlone.join('; ') };
  return { status: 'changed', detail: [...parts, ...leftAlone].join('; ') };
}

/** Extra audit context of a catch-up's entry: its investment, the shares sold from the lot (no sale recorded), how the change was read. */
const catchUpExtraSql = Prisma.sql`jsonb_build_object('investmentId', u.investment_id, 'sold', u.sold, 'via', u.via)`;

async function insertLots(tx: SqlTransaction, rows: readonly object[]): Promise<void> {
  await tx.query(Prisma.sql`
    WITH u AS MATERIALIZED (
      -- Ids in the order of the rows: lots bought on one day are sold from in that order.
      SELECT ${newRowIdSql(Prisma.sql`u.n`)} AS id, u.*
        FROM jsonb_to_recordset(${jsonRows(rows.map((row, n) => ({ ...row, n })))}) AS u(investment_id text, "purchaseDate" date, quantity numeric, "costBasisPerUnit" numeric,
                                                        "remainingQuantity" numeric, status text, sold jsonb, via text, run_id text, job_id text, n bigint)
    ), lots AS (
      INSERT INTO "TaxLot" (id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", fees,
                            "remainingQuantity", status, "createdAt", "updatedAt")
      SELECT id, investment_id, "purchaseDate", quantity, "costBasisPerUnit", 0, "remainingQuantity", status::"TaxLotStatus", ${utcNowSql}, ${utcNowSql}
        FROM u
      RETURNING id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", "remainingQuantity", status
    )
    INSERT INTO "AuditLog" (id, "userId", action, entity, "entityId", "userAgent", "createdAt", metadata)
    SELECT ${newRowIdSql()}, p."userId", 'CREATE_TAX_LOT', 'TaxLot', lots.id, ${FLEET_ACTOR}, ${utcNowSql},
           ${auditMetadataSql(Prisma.sql`u.run_id`, Prisma.sql`u.job_id`, Prisma.sql`NULL`, lotAfterSql)} || ${catchUpExtraSql}
      FROM lots JOIN u ON u.id = lots.id
      JOIN "Investment" i ON i.id = lots."investmentId" JOIN "Portfolio" p ON p.id = i."portfolioId"`);
}

/**
 * Each lot changes only if it still holds what the plan was made from: a
 * lot written since (by the application's new code, which does not lock the
 * position first) fails the batch, whose jobs are tried again on a fresh read.
 */
async function updateLots(tx: SqlTransaction, rows: readonly object[]): Promise<void> {
  const changed = await tx.query<{ id: string }>(Prisma.sql`
    WITH u AS (
      SELECT * FROM jsonb_to_recordset(${jsonRows(rows)}) AS u(id text, "remainingQuantity" numeric, status text, "costBasisPerUnit" numeric,
                                                              before jsonb, action text, investment_id text, sold jsonb, via text, run_id text, job_id text)
    ), lots AS (
      UPDATE "TaxLot" t SET "remainingQuantity" = u."remainingQuantity", status = u.status::"TaxLotStatus",
                            "costBasisPerUnit" = u."costBasisPerUnit", "updatedAt" = ${utcNowSql}
        FROM u
       WHERE t.id = u.id AND t."remainingQuantity" = (u.before->>'remainingQuantity')::numeric
         AND t.status::text = u.before->>'status' AND t."costBasisPerUnit" = (u.before->>'costBasisPerUnit')::numeric
      RETURNING t.id, t."remainingQuantity", t.status, t."costBasisPerUnit"
    ), audit AS (
      INSERT INTO "AuditLog" (id, "userId", action, entity, "entityId", "userAgent", "createdAt", metadata)
      SELECT ${newRowIdSql()}, p."userId", u.action, 'TaxLot', lots.id, ${FLEET_ACTOR}, ${utcNowSql},
             ${auditMetadataSql(
               Prisma.sql`u.run_id`,
               Prisma.sql`u.job_id`,
               Prisma.sql`u.before`,
               Prisma.sql`jsonb_build_object('remainingQuantity', lots."remainingQuantity"::text, 'status', lots.status::text,
                                             'costBasisPerUnit', lots."costBasisPerUnit"::text)`,
             )} || ${catchUpExtraSql}
        FROM lots JOIN u ON u.id = lots.id
        JOIN "Investment" i ON i.id = u.investment_id JOIN "Portfolio" p ON p.id = i."portfolioId"
    )
    SELECT id FROM lots`);
  if (changed.length !== rows.length) {
    throw new Error(`lots family: ${rows.length - changed.length} tax lot(s) changed while their positions were being caught up; the batch is tried again`);
  }
}

const AUDIT_SAMPLE = 10;
/** Disposals listed for a person to record their sales: all of them, up to this many. */
const DISPOSAL_LIST = 1_000;
/** Positions planned at a time by the audit, from the change log. */
const AUDIT_PAGE = 1_000;

/**
 * What a catch-up would do, counted by planning it (nothing is written)
 * over the positions the change log names, page by page; the positions
 * without lots or out of step with no logged write, in one pass; and the
 * disposals made so far without a sale record, for a person to record.
 */
async function auditLots(prisma: PrismaClient): Promise<AuditFinding[]> {
  const pool: SqlTransaction = { query: (statement) => sqlRows(prisma, statement) };
  const tally = new Map<string, { count: number; sample: string[] }>();
  const note = (check: string, id: string) => {
    const entry = tally.get(check) ?? { count: 0, sample: [] };
    entry.count += 1;
    if (entry.sample.length < AUDIT_SAMPLE) entry.sample.push(id);
    tally.set(check, entry);
  };
  for (let after = ''; ;) {
    const ids = (await sqlRows<{ id: string }>(prisma, loggedPageSql(after, AUDIT_PAGE))).map((row) => row.id);
    if (ids.length === 0) break;
    after = ids[ids.length - 1]!;
    const positions = await pool.query<LockedPosition>(Prisma.sql`
      SELECT ${positionSql} FROM "Investment" i
       WHERE i.id = ANY(${ids}::text[]) AND EXISTS (SELECT 1 FROM "TaxLot" t WHERE t."investmentId" = i.id)`);
    const state = await readCatchUpState(
      pool,
      positions.map((p) => p.id),
    );
    for (const position of positions) {
      const { plan, held } = planFor(position, state);
      if (brokenPolicies('Investment', position).length > 0 || brokenLotOf(held) || plan.kind === 'refused') {
        note(CHECKS.refused, position.id);
        continue;
      }
      if (plan.kind !== 'apply') continue;
      if (plan.purchases > 0) note(CHECKS.purchases, position.id);
      if (plan.disposals.length > 0) note(CHECKS.disposals, position.id);
      if (plan.corrections > 0) note(CHECKS.corrections, position.id);
      if (plan.leftAlone.length > 0) note(CHECKS.leftAlone, position.id);
    }
  }
  const [scan] = await sqlRows<{ noLots: string; unlogged: string }>(
    prisma,
    Prisma.sql`
    SELECT count(*) FILTER (WHERE l.held IS NULL)::text AS "noLots",
           count(*) FILTER (WHERE ${unloggedDriftSql})::text AS unlogged
      FROM "Investment" i
      ${heldSql}`,
  );
  const sampleOf = async (where: Prisma.Sql) =>
    (
      await sqlRows<{ id: string }>(
        prisma,
        Prisma.sql`
        SELECT i.id FROM "Investment" i
          ${heldSql}
         WHERE ${where} ORDER BY i.id LIMIT ${AUDIT_SAMPLE}`,
      )
    ).map((row) => row.id);
  const disposals = await unrecordedDisposals(prisma);
  const counted = (check: string) => ({ check, count: tally.get(check)?.count ?? 0, sample: tally.get(check)?.sample ?? [] });
  return [
    { check: CHECKS.noLots, count: Number(scan!.noLots), sample: Number(scan!.noLots) > 0 ? await sampleOf(Prisma.sql`l.held IS NULL`) : [] },
    counted(CHECKS.purchases),
    counted(CHECKS.disposals),
    counted(CHECKS.corrections),
    counted(CHECKS.leftAlone),
    counted(CHECKS.refused),
    {
      check: CHECKS.unlogged,
      count: Number(scan!.unlogged),
      sample: Number(scan!.unlogged) > 0 ? await sampleOf(unloggedDriftSql) : [],
    },
    { check: CHECKS.unrecorded, count: disposals.length, sample: disposals },
  ];
}

const CHECKS = {
  noLots: 'positions without tax lots',
  purchases: 'purchases to add as lots',
  disposals: 'sales to take from the oldest lots',
  corrections: 'average-cost corrections lots follow',
  leftAlone: 'average-cost corrections lots keep (check them)',
  refused: 'refused: changes that do not add up (check them)',
  unlogged: 'out of step with no logged change (tys enqueue lots --all)',
  unrecorded: 'shares sold with no sale recorded (record the sale)',
} as const;

/**
 * The disposals catch-ups made without a sale record, one per position and
 * day ("ID on DATE: QUANTITY from N lot(s)"), newest first: neither reverted
 * since nor matched by a sale the application recorded for that day.
 */
async function unrecordedDisposals(prisma: PrismaClient): Promise<string[]> {
  const rows = await sqlRows<{ investment: string; on: string; quantity: string; lots: string }>(
    prisma,
    Prisma.sql`
    WITH sold AS (
      SELECT a.metadata->>'investmentId' AS investment, s->>'on' AS "on", sum((s->>'quantity')::numeric) AS quantity, count(DISTINCT a."entityId") AS lots
        FROM "AuditLog" a CROSS JOIN LATERAL jsonb_array_elements(a.metadata->'sold') s
       WHERE a.entity = 'TaxLot' AND a.action IN ('CREATE_TAX_LOT', 'DISPOSE_TAX_LOT') AND jsonb_typeof(a.metadata->'sold') = 'array'
         AND NOT EXISTS (SELECT 1 FROM "AuditLog" r WHERE r.entity = 'TaxLot' AND r."entityId" = a."entityId"
                                                      AND r.action = 'REVERT' AND r.metadata->>'revertOf' = a.id)
       GROUP BY 1, 2
    )
    SELECT investment, "on", quantity::text AS quantity, lots::text AS lots FROM sold
     WHERE NOT EXISTS (SELECT 1 FROM "SaleTransaction" t WHERE t."investmentId" = sold.investment AND t."saleDate" = sold."on"::date)
     ORDER BY "on" DESC, investment LIMIT ${DISPOSAL_LIST}`,
  );
  return rows.map((row) => `${row.investment} on ${row.on}: ${new Prisma.Decimal(row.quantity).toFixed()} from ${row.lots} lot(s)`);
}

/**
 * Phase 2, and after it until cut-over: every investment's tax lots in step
 * with its position.
 *
 * A position without lots gets one OPEN lot carrying it whole (the MVP kept
 * no purchase history): bought on the day the investment was created, at
 * its average cost, no fees; set-based, one statement for a whole batch.
 *
 * The MVP application keeps writing positions while the fleet runs and
 * until its lot-writing code is deployed: a purchase or a sale changes only
 * `totalQuantity` and `averageCostBasis`. A trigger logs each such write
 * (FleetLotChange), and a job for a position that has lots brings them back
 * in step (see lot-catch-up.ts): a purchase becomes a lot dated on the day
 * of the write at the price the position implies, a sale takes shares from
 * the oldest lots (no sale record and no price are invented: `tys audit
 * lots` lists these disposals for a person), a corrected average moves the
 * lots the fleet made and nothing has touched. All of it under the
 * investment's row lock, with an audit entry per lot, in one transaction
 * that also deletes the log entries it applied; a plan that does not add up
 * is refused with its numbers and changes nothing.
 */
export const lotsFamily: JobFamily = {
  name: 'lots',
  description: 'make the tax lots of every investment, and keep them in step with positions the MVP application changes (phase 2)',
  exampleKey: 'nosuchinvestment',
  auditHelp: 'positions whose lots are out of step (no lots, purchases, sales, cost corrections, refused), and the disposals made without a sale record',
  verifyHelp: 'every investment has tax lots, and the sum of their remainingQuantity equals its totalQuantity exactly (no tolerance)',
  scopes: ['all', 'changed', 'investments', 'portfolio', 'user'],

  async source(prisma, scope, after, limit) {
    const rows = await sqlRows<{ id: string }>(
      prisma,
      scope.kind === 'changed'
        ? // Driven by the log, so that a catch-up where nothing changed reads nothing.
          loggedPageSql(after, limit)
        : Prisma.sql`
      SELECT i.id FROM "Investment" i JOIN "Portfolio" p ON p.id = i."portfolioId"
        -- One index lookup per investment: written as NOT EXISTS ... OR a
        -- sum, the planner hashed a scan of every lot into each page.
        ${heldSql}
       WHERE i.id > ${after} AND ${investmentScopeSql(scope)}
         AND (l.held IS NULL OR i."totalQuantity" <> l.held
              OR ${loggedSql})
       ORDER BY i.id LIMIT ${limit}`,
    );
    return rows.map((row) => row.id);
  },

  isValidKey: isRowId,
  investmentKeys: (_prisma, investmentId) => Promise.resolve([investmentId]),

  async handle({ prisma }, items) {
    const ids = items.map((item) => item.key);
    return sqlTransaction(prisma, async (tx) => {
      // Row locks, taken in id order so that overlapping batches cannot
      // deadlock, serialise a job with the application's writes and with
      // racing jobs for one investment: an UPDATE of the position waits for
      // this transaction, and this one for a write in flight. What follows
      // must be statements of their own, after the lock: only a new
      // statement's snapshot (READ COMMITTED) sees what the other committed.
      const locked = await tx.query<LockedPosition>(Prisma.sql`
        SELECT ${positionSql} FROM "Investment" i WHERE i.id = ANY(${ids}::text[]) ORDER BY i.id FOR NO KEY UPDATE`);
      const firstLots = await makeFirstLots(tx, items);
      const investments = new Map(locked.map((row) => [row.id, row]));
      const broken = new Map(locked.map((row) => [row.id, brokenPolicies('Investment', row)]));
      const rest = locked.filter((row) => !firstLots.has(row.id) && broken.get(row.id)!.length === 0);
      const caughtUp = rest.length > 0 ? await catchUp(tx, rest, items) : new Map<string, ItemResult>();
      const gone = ids.filter((id) => !investments.has(id));
      // A deleted position's logged writes have nothing left to apply to.
      if (gone.length > 0) await tx.query(Prisma.sql`DELETE FROM "FleetLotChange" WHERE "investmentId" = ANY(${gone}::text[])`);
      const answered = new Set<string>();
      return items.map((item): ItemResult => {
        const investment = investments.get(item.key);
        if (!investment) return { status: 'skipped', reason: 'investment no longer exists' };
        // The same key twice in a batch: the second finds the work done.
        if (answered.has(item.key)) return { status: 'skipped', reason: 'lots already in step with the position' };
        answered.add(item.key);
        const lotId = firstLots.get(item.key);
        if (lotId) return { status: 'changed', detail: `lot ${lotId}` };
        // A lot copies the investment's values: a broken one would carry its
        // fault into every later tax figure. Fixed first, with its own audit.
        const rules = broken.get(item.key)!;
        if (rules.length > 0) {
          const named = rules.map((p) => `${p.constraint} (${p.column} = ${investment[p.column]})`).join(', ');
          return new PermanentJobError(`investment ${item.key} breaks ${named}: run the constraints family first (tys enqueue constraints)`);
        }
        return caughtUp.get(item.key)!;
      });
    });
  },

  // From no lots to one per investment: stale statistics would send the
  // application's lot queries to sequential scans (seen in the rehearsal).
  grows: ['TaxLot'],

  // The lots it created (a revert deletes those still as made), and what a
  // catch-up changes of existing ones (put back where still as it left them).
  revertible: {
    TaxLot: {
      columns: { quantity: 'numeric', remainingQuantity: 'numeric', costBasisPerUnit: 'numeric', status: '"TaxLotStatus"' },
      deletable: true,
      hasUpdatedAt: true,
    },
  },

  audit: auditLots,

  // The document's check, exactly: decimal sums compared in SQL, no tolerance.
  async verify(prisma) {
    // The only lot of an investment, untouched since it was made from the
    // position (no split, no fix), still has the investment's average as its
    // cost basis: when the investment's basis was fixed and the lot's not,
    // they differ.
    const rows = await prisma.$queryRaw<VerifyRow[]>`
      WITH sums AS (
        SELECT i.id, i."totalQuantity", i."averageCostBasis", sum(t."remainingQuantity") AS "lotSum", count(t.id) AS lots,
               min(t."costBasisPerUnit") AS "minCost",
               min(t."costBasisPerUnit") FILTER (
                 WHERE t."updatedAt" = t."createdAt" AND t."costBasisPerUnit" <> i."averageCostBasis") AS "driftedCost"
          FROM "Investment" i LEFT JOIN "TaxLot" t ON t."investmentId" = i.id
         GROUP BY i.id
      )
      SELECT id, "totalQuantity"::text, "averageCostBasis"::text, "lotSum"::text, "minCost"::text, "driftedCost"::text, lots,
             count(*) OVER () AS offenders, (SELECT count(*) FROM "Investment") AS checked
        FROM sums
       WHERE lots = 0 OR "lotSum" <> "totalQuantity" OR "minCost" < 0 OR (lots = 1 AND "driftedCost" IS NOT NULL)
       ORDER BY id LIMIT ${VERIFY_SAMPLE}`;
    const checked = rows[0] ? Number(rows[0].checked) : await prisma.investment.count();
    return {
      ok: rows.length === 0,
      checked,
      problemCount: rows[0] ? Number(rows[0].offenders) : 0,
      problems: rows.map((row) => ({ id: row.id, problem: lotProblem(row) })),
    };
  },

  options: { ...DEFAULT_FAMILY_OPTIONS, concurrency: 500, batch: { maxSize: 250, maxWaitMs: 10 } },
};
