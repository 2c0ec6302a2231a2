-- Where a run's jobs and live counters are: the marker of its Redis, and
-- the address of its keys (host, port, database and key prefix; never a
-- password). A run is declared lost only on evidence that this Redis lost
-- its data (another marker at that address), never because a command
-- looked at another Redis.
ALTER TABLE "FleetRun" ADD COLUMN "redisMarker" TEXT, ADD COLUMN "redisAddress" TEXT;
