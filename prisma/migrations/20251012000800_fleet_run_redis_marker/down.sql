ALTER TABLE "FleetRun" DROP COLUMN "redisMarker";
