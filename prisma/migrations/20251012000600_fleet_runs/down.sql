DROP TABLE "FleetRun";
DROP TYPE "FleetRunStatus";
