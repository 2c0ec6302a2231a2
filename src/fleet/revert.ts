import { Prisma, type PrismaClient } from '../db/prisma.js';
import { utcNowSql } from '../db/utc.js';
import { auditRecord } from './audit.js';
import type { JobFamily, RevertibleColumnType, RevertibleTable } from './family.js';
import { newRunId } from './runs/store.js';

/**
 * What the families may revert, table by table: the union of what each
 * declares (several families write the same table).
 */
export function revertibleTables(families: readonly JobFamily[]): Record<string, Required<RevertibleTable>> {
  const tables: Record<string, Required<RevertibleTable>> = {};
  for (const family of families) {
    for (const [table, spec] of Object.entries(family.revertible ?? {})) {
      const known = (tables[table] ??= { columns: {}, deletable: false, hasUpdatedAt: spec.hasUpdatedAt });
      for (const [column, type] of Object.entries(spec.columns)) {
        if (known.columns[column] && known.columns[column] !== type) {
          throw new Error(`family ${family.name} declares ${table}.${column} as ${type}, another family as ${known.columns[column]}`);
        }
        known.columns[column] = type;
      }
      known.deletable ||= spec.deletable ?? false;
    }
  }
  return tables;
}

export interface RevertConflict {
  auditId: string;
  entity: string;
  entityId: string;
  reason: string;
  expected?: Record<string, string | null>;
  found?: Record<string, string | null>;
}

export interface RevertReport {
  /** Run id under which the revert's own audit entries are written (itself revertible). */
  revertRunId: string;
  entries: number;
  reverted: number;
  alreadyReverted: number;
  conflicts: RevertConflict[];
  /** Constraints the restored values break: put back NOT VALID (VALIDATE them again once fixed). */
  constraintsReopened: string[];
}

type Values = Record<string, string | null>;

function asValues(value: unknown): Values | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const out: Values = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v !== null && typeof v !== 'string') return null;
    out[k] = v;
  }
  return out;
}

const ident = (name: string) => Prisma.raw(`"${name}"`);
const cast = (type: RevertibleColumnType) => Prisma.raw(type);

function matches(columns: string[], values: Values, types: Record<string, RevertibleColumnType>): Prisma.Sql {
  return Prisma.join(
    columns.map((c) => Prisma.sql`${ident(c)} IS NOT DISTINCT FROM ${values[c] ?? null}::${cast(types[c]!)}`),
    ' AND ',
  );
}

/**
 * Puts back the values a run changed, newest change first, from the run's
 * audit entries: only where the row still holds exactly what the run wrote.
 * A row changed since is reported as a conflict and left alone, so nothing is
 * lost. Rows the run created are deleted on the same condition. Entries
 * already reverted are skipped: running it twice changes nothing.
 */
export async function revertRun(prisma: PrismaClient, runId: string, families: readonly JobFamily[], pageSize = 500): Promise<RevertReport> {
  const tables = revertibleTables(families);
  const report: RevertReport = {
    revertRunId: newRunId(),
    entries: 0,
    reverted: 0,
    alreadyReverted: 0,
    conflicts: [],
    constraintsReopened: [],
  };
  let cursor: string | undefined;
  for (;;) {
    const page = await prisma.auditLog.findMany({
      where: { metadata: { path: ['runId'], equals: runId } },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: pageSize,
      ...(cursor ? { cursor: { id: cursor }, skip: 1 } : {}),
    });
    if (page.length === 0) break;
    cursor = page[page.length - 1]!.id;
    await prisma.$transaction(
      async (tx) => {
        const setAside = new Map<string, { table: string; definition: string }>();
        for (const entry of page) {
          report.entries += 1;
          const outcome = await revertEntry(tx, tables, entry, runId, report.revertRunId, setAside);
          if (outcome === 'reverted') report.reverted += 1;
          else if (outcome === 'already') report.alreadyReverted += 1;
          else report.conflicts.push(outcome);
        }
        // Back as NOT VALID: new writes are checked again, the restored rows are not.
        for (const [name, { table, definition }] of setAside) {
          await tx.$executeRawUnsafe(`ALTER TABLE "${table}" ADD CONSTRAINT "${name}" ${definition} NOT VALID`);
          if (!report.constraintsReopened.includes(name)) report.constraintsReopened.push(name);
        }
      },
      { timeout: 120_000 },
    );
  }
  return report;
}

/**
 * A restored value may break a CHECK constraint (that is what the run fixed).
 * The constraint is set aside for the rest of this page's transaction and put
 * back NOT VALID at its end; its definition is read from pg_constraint so it
 * comes back exactly as it was.
 */
async function setConstraintAside(
  tx: Prisma.TransactionClient,
  table: string,
  name: string,
  setAside: Map<string, { table: string; definition: string }>,
): Promise<void> {
  const [row] = await tx.$queryRaw<{ definition: string }[]>`
    SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint
     WHERE conname = ${name} AND conrelid = ${`"${table}"`}::regclass`;
  if (!row) throw new Error(`constraint ${name} on ${table} not found`);
  setAside.set(name, { table, definition: row.definition.replace(/\s+NOT VALID$/, '') });
  await tx.$executeRawUnsafe(`ALTER TABLE "${table}" DROP CONSTRAINT "${name}"`);
}

function brokenConstraint(error: unknown): string | null {
  const text = error instanceof Error ? error.message : String(error);
  if (!/23514/.test(text) && !/violates check constraint/.test(text)) return null;
  return /check constraint \\?"([A-Za-z0-9_]+)\\?"/.exec(text)?.[1] ?? null;
}

async function revertEntry(
  tx: Prisma.TransactionClient,
  tables: Record<string, Required<RevertibleTable>>,
  entry: { id: string; userId: string; entity: string; entityId: string; metadata: Prisma.JsonValue },
  runId: string,
  revertRunId: string,
  setAside: Map<string, { table: string; definition: string }>,
): Promise<'reverted' | 'already' | RevertConflict> {
  const conflict = (reason: string, extra: Partial<RevertConflict> = {}): RevertConflict => ({
    auditId: entry.id,
    entity: entry.entity,
    entityId: entry.entityId,
    reason,
    ...extra,
  });
  const spec = tables[entry.entity];
  const metadata = (entry.metadata ?? {}) as Record<string, unknown>;
  if (!spec) return conflict(`entity ${entry.entity} is not revertible`);
  const after = asValues(metadata.after);
  const before = metadata.before === null ? null : asValues(metadata.before);
  if (!after || (metadata.before !== null && !before)) return conflict('audit entry has no before/after values');
  const columns = Object.keys(before ?? after).filter((c) => c in spec.columns);
  if (before && columns.length !== Object.keys(before).length) return conflict('audit entry names columns that are not revertible');
  const table = ident(entry.entity);

  const done = await tx.auditLog.count({ where: { action: 'REVERT', metadata: { path: ['revertOf'], equals: entry.id } } });
  if (done > 0) return 'already';
  const restore = () => tx.$queryRaw<{ id: string }[]>`
    UPDATE ${table} SET ${Prisma.join(columns.map((c) => Prisma.sql`${ident(c)} = ${before![c] ?? null}::${cast(spec.columns[c]!)}`))}
     ${spec.hasUpdatedAt ? Prisma.sql`, "updatedAt" = ${utcNowSql}` : Prisma.empty}
     WHERE id = ${entry.entityId} AND ${matches(columns, after, spec.columns)}
     RETURNING id`;
  let changed: { id: string }[] = [];
  if (before) {
    // Each attempt under a savepoint: a CHECK violation must not abort the page's transaction.
    for (let attempt = 0; ; attempt += 1) {
      await tx.$executeRawUnsafe('SAVEPOINT tys_revert');
      try {
        changed = await restore();
        await tx.$executeRawUnsafe('RELEASE SAVEPOINT tys_revert');
        break;
      } catch (error) {
        await tx.$executeRawUnsafe('ROLLBACK TO SAVEPOINT tys_revert');
        const constraint = brokenConstraint(error);
        if (!constraint || attempt >= 5) throw error;
        await setConstraintAside(tx, entry.entity, constraint, setAside);
      }
    }
  } else if (spec.deletable) {
    // A row the run created goes, unless it changed or sales were allocated to it since.
    changed = await tx.$queryRaw<{ id: string }[]>`
      DELETE FROM ${table} WHERE id = ${entry.entityId} AND ${matches(columns, after, spec.columns)}
        AND NOT EXISTS (SELECT 1 FROM "TaxLotAllocation" a WHERE a."taxLotId" = ${entry.entityId})
      RETURNING id`;
  }
  if (changed.length === 0) {
    const [current] = await tx.$queryRaw<Values[]>`
      SELECT ${Prisma.join(columns.map((c) => Prisma.sql`${ident(c)}::text AS ${ident(c)}`))} FROM ${table} WHERE id = ${entry.entityId}`;
    return conflict(current ? 'row changed since the run wrote it, or is in use; left as it is' : before ? 'row no longer exists' : 'row was already deleted', {
      expected: Object.fromEntries(columns.map((c) => [c, after[c] ?? null])),
      ...(current ? { found: current } : {}),
    });
  }
  await tx.auditLog.create({
    data: auditRecord({
      userId: entry.userId,
      action: 'REVERT',
      entity: entry.entity,
      entityId: entry.entityId,
      runId: revertRunId,
      jobId: `revert-${entry.id}`,
      before: Object.fromEntries(columns.map((c) => [c, after[c] ?? null])),
      after: before ? Object.fromEntries(columns.map((c) => [c, before[c] ?? null])) : null,
      extra: { revertOf: entry.id, revertedRun: runId },
    }),
  });
  return 'reverted';
}
