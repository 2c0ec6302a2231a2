ALTER TABLE "FleetRun" DROP COLUMN "origin";
-- Postgres cannot drop enum values: the type is made again without them.
-- Paused runs become running again and cancelled ones interrupted (their
-- rows are picked up by the next enqueue either way).
ALTER TYPE "FleetRunStatus" RENAME TO "FleetRunStatus_with_control";
CREATE TYPE "FleetRunStatus" AS ENUM ('ENQUEUEING', 'RUNNING', 'COMPLETED', 'FAILED', 'INTERRUPTED');
ALTER TABLE "FleetRun" ALTER COLUMN "status" DROP DEFAULT;
ALTER TABLE "FleetRun" ALTER COLUMN "status" TYPE "FleetRunStatus" USING (
  CASE "status"::text
    WHEN 'PAUSING' THEN 'RUNNING'
    WHEN 'PAUSED' THEN 'RUNNING'
    WHEN 'CANCELLING' THEN 'INTERRUPTED'
    WHEN 'CANCELLED' THEN 'INTERRUPTED'
    ELSE "status"::text
  END
)::"FleetRunStatus";
ALTER TABLE "FleetRun" ALTER COLUMN "status" SET DEFAULT 'ENQUEUEING';
DROP TYPE "FleetRunStatus_with_control";
