-- The schedulers' history goes; the runs' stays.
DELETE FROM "FleetRunAction" WHERE "runId" IS NULL;
ALTER TABLE "FleetRunAction" DROP COLUMN "schedule";
ALTER TABLE "FleetRunAction" ALTER COLUMN "runId" SET NOT NULL;
