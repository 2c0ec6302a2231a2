ALTER TABLE "FleetRun" DROP COLUMN "redisAddress", DROP COLUMN "redisMarker";
