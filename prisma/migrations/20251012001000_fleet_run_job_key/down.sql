-- Runs' jobs are no longer sealed: workers judge them by their run alone.
ALTER TABLE "FleetRun" DROP COLUMN "jobKey";
