-- Which run took a job up again is forgotten; the outcomes stay.
ALTER TABLE "FleetJobOutcome" DROP COLUMN "retriedBy";
