import { Prisma } from '../db/prisma.js';

/** Who made a change the fleet audits: recorded in every entry's metadata. */
export const FLEET_ACTOR = 'tys-fleet';

export interface AuditEntry {
  /** The owner of the changed row, so the change shows in that user's history. */
  userId: string;
  action: string;
  entity: string;
  entityId: string;
  runId: string;
  jobId: string;
  before?: Prisma.InputJsonValue | null;
  after?: Prisma.InputJsonValue | null;
  /** More context, merged into the metadata. */
  extra?: Record<string, Prisma.InputJsonValue>;
}

export function auditRecord(entry: AuditEntry): Prisma.AuditLogCreateManyInput {
  return {
    userId: entry.userId,
    action: entry.action,
    entity: entry.entity,
    entityId: entry.entityId,
    userAgent: FLEET_ACTOR,
    metadata: {
      actor: FLEET_ACTOR,
      runId: entry.runId,
      jobId: entry.jobId,
      ...(entry.before !== undefined ? { before: entry.before } : {}),
      ...(entry.after !== undefined ? { after: entry.after } : {}),
      ...entry.extra,
    },
  };
}

/**
 * The metadata of auditRecord, built in SQL for set-based handlers that write
 * their audit entries in the same statement as the change.
 */
export function auditMetadataSql(runId: Prisma.Sql, jobId: Prisma.Sql, before: Prisma.Sql, after: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`jsonb_build_object('actor', ${FLEET_ACTOR}::text, 'runId', ${runId}, 'jobId', ${jobId}, 'before', ${before}, 'after', ${after})`;
}
