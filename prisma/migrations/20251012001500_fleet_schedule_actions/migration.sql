-- Operators' changes to the schedulers (tys schedule apply and remove) go
-- into the same history as their actions on runs: such an entry names a
-- scheduler instead of a run. Dropping NOT NULL and adding a nullable
-- column change only the catalog. The only client of this table is the
-- fleet, which reads a run's entries by their run id: a row without one is
-- never among them.
-- squawk-ignore ban-drop-not-null
ALTER TABLE "FleetRunAction" ALTER COLUMN "runId" DROP NOT NULL;
ALTER TABLE "FleetRunAction" ADD COLUMN "schedule" TEXT;
