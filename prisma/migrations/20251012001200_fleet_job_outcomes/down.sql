-- The outcomes of failed and skipped jobs go; runs keep their counts.
DROP TABLE "FleetJobOutcome";
