import { Prisma, type PrismaClient } from '../db/prisma.js';
import { sqlRows } from '../db/sql.js';
import { FLEET_ACTOR } from './audit.js';
import { jobIdFor, type JobFamily } from './family.js';
import { JobOutcomes, type NotedOutcome } from './runs/outcomes.js';
import type { FleetRunStatus } from './runs/lifecycle.js';

/** A change the fleet made to the row, from the audit log. */
export interface AuditedChange {
  at: Date;
  runId: string | null;
  action: string;
  entity: string;
  entityId: string;
  before: unknown;
  after: unknown;
}

/** Everything the fleet knows of one row of a family: what its jobs ended with, what it changed, and what to do next. */
export interface RowStory {
  family: string;
  key: string;
  jobId: string;
  /** Jobs of the row that failed or were skipped, oldest first. */
  outcomes: NotedOutcome[];
  /** The fleet's changes to the row, oldest first. */
  changes: AuditedChange[];
  /** The runs named above, with their status now. */
  runs: { id: string; status: FleetRunStatus; startedAt: Date }[];
  /**
   * Whether the family's source query still selects the row now (it still
   * needs the family's work); null when the row names no investment that
   * the source can be asked about.
   */
  needsWork: boolean | null;
  /** What to run next, or why nothing: one line for an operator. */
  next: string;
}

/** At most this many of each: a row's story, not a table dump. */
const MOST = 50;

/**
 * The story of one row (its family's key: an investment's id, a ticker),
 * from the fleet's notes of failed and skipped jobs and its audit entries;
 * null when the fleet has neither. The audit log is read by the job's id
 * in its entries' metadata: on a large log that is a scan, fine for a
 * question about one row, not for a loop over many.
 */
export async function rowStory(prisma: PrismaClient, family: JobFamily, key: string, options: { investmentId?: string } = {}): Promise<RowStory | null> {
  const jobId = jobIdFor(family, key);
  const outcomes = (await new JobOutcomes(prisma).find({ family: family.name, key }, MOST)).reverse();
  const audited = await sqlRows<{ createdAt: Date; action: string; entity: string; entityId: string; metadata: Record<string, unknown> | null }>(
    prisma,
    Prisma.sql`SELECT "createdAt" AT TIME ZONE 'UTC' AS "createdAt", action, entity, "entityId", metadata FROM "AuditLog"
                WHERE "userAgent" = ${FLEET_ACTOR} AND metadata->>'jobId' = ${jobId} ORDER BY "createdAt", id LIMIT ${MOST}`,
  );
  if (outcomes.length === 0 && audited.length === 0) return null;
  const changes = audited.map((row) => ({
    at: new Date(row.createdAt),
    runId: typeof row.metadata?.runId === 'string' ? row.metadata.runId : null,
    action: row.action,
    entity: row.entity,
    entityId: row.entityId,
    before: row.metadata?.before ?? null,
    after: row.metadata?.after ?? null,
  }));
  const runIds = [
    ...new Set([...outcomes.flatMap((o) => (o.retriedBy ? [o.runId, o.retriedBy] : [o.runId])), ...changes.flatMap((c) => (c.runId ? [c.runId] : []))]),
  ];
  const runs = await prisma.fleetRun.findMany({
    where: { id: { in: runIds } },
    select: { id: true, status: true, startedAt: true },
    orderBy: { startedAt: 'asc' },
  });
  const needsWork = await stillNeedsWork(prisma, family, key, options.investmentId);
  return {
    family: family.name,
    key,
    jobId,
    outcomes,
    changes,
    runs,
    needsWork,
    next: nextStep(family, key, outcomes, changes, runs, { needsWork, investmentId: options.investmentId }),
  };
}

/** Whether the family's source query selects the row, asked for the rows of the investment it concerns; null when that cannot be asked. */
async function stillNeedsWork(prisma: PrismaClient, family: JobFamily, key: string, investmentId: string | undefined): Promise<boolean | null> {
  if (investmentId === undefined || !family.scopes.includes('investments')) return null;
  // An investment's rows of a family are a handful (itself, its lots, its ticker).
  const keys = await family.source(prisma, { kind: 'investments', ids: [investmentId] }, '', 1_000);
  return keys.includes(key);
}

/** What an operator does next for the row, from its latest event. */
function nextStep(
  family: JobFamily,
  key: string,
  outcomes: NotedOutcome[],
  changes: AuditedChange[],
  runs: RowStory['runs'],
  now: { needsWork: boolean | null; investmentId?: string },
): string {
  const { needsWork, investmentId } = now;
  const lastOutcome = outcomes.at(-1);
  const lastChange = changes.at(-1);
  if (needsWork === false && lastOutcome && !(lastChange && lastChange.at >= lastOutcome.at)) {
    return `nothing to do: the ${family.name} family has no work left for it (its row was put right since its last job)`;
  }
  if (!lastOutcome || (lastChange && lastChange.at >= lastOutcome.at)) {
    if (needsWork === true)
      return `the ${family.name} family has work for it again (it changed since the fleet last did): tys enqueue ${family.name} --investment ${investmentId}`;
    return `nothing to fix: the fleet last changed it in run ${lastChange?.runId ?? 'unknown'}; tys verify ${family.name} checks it with the rest`;
  }
  if (lastOutcome.retriedBy) {
    const retry = runs.find((r) => r.id === lastOutcome.retriedBy);
    return `${lastOutcome.outcome} (${lastOutcome.reason}), then taken up again by run ${lastOutcome.retriedBy}${retry ? ` (${retry.status})` : ''}: tys status --run ${lastOutcome.retriedBy}`;
  }
  const retry = `tys retry --run ${lastOutcome.runId} --key ${key} --yes`;
  if (lastOutcome.outcome === 'skipped') return `skipped (${lastOutcome.reason}): fix what the reason names, then ${retry}`;
  return `failed (${lastOutcome.reason}): once its cause is fixed, ${retry}`;
}
