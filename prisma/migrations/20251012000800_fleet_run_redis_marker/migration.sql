-- The marker of the Redis a run's jobs and live counters are in. A run is
-- declared lost only on evidence that this Redis lost its data, never
-- because a command was pointed at another Redis.
ALTER TABLE "FleetRun" ADD COLUMN "redisMarker" TEXT;
