-- Run control: an operator pauses, resumes and cancels runs. A pausing run
-- starts no new job and is paused once its active jobs have ended; a
-- cancelling run has its waiting jobs removed and ends cancelled once its
-- active jobs have ended. (Postgres adds enum values without rewriting the
-- table; they are used only after this transaction.)
ALTER TYPE "FleetRunStatus" ADD VALUE IF NOT EXISTS 'PAUSING' AFTER 'INTERRUPTED';
ALTER TYPE "FleetRunStatus" ADD VALUE IF NOT EXISTS 'PAUSED' AFTER 'PAUSING';
ALTER TYPE "FleetRunStatus" ADD VALUE IF NOT EXISTS 'CANCELLING' AFTER 'PAUSED';
ALTER TYPE "FleetRunStatus" ADD VALUE IF NOT EXISTS 'CANCELLED' AFTER 'CANCELLING';

-- Who started a run: "cli user@host", "schedule NAME" or "dashboard".
ALTER TABLE "FleetRun" ADD COLUMN "origin" TEXT;
