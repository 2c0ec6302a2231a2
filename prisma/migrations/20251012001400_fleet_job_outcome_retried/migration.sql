-- Which run took a failed or skipped job up again (tys retry with a filter):
-- a retry by the same filter a second time then finds nothing new to do,
-- and tys why can say where the row went next. A nullable column without a
-- default: no rewrite of the table, and only a brief lock to add it.
ALTER TABLE "FleetJobOutcome" ADD COLUMN "retriedBy" TEXT;
