-- Phase 4: data-integrity CHECK constraints, added NOT VALID: existing rows
-- are not checked and no table is scanned under an exclusive lock, while new
-- writes are checked from now on. Existing violations are fixed row by row,
-- with an audit record, by the "constraints" job family, and
-- "tys validate constraints" then runs VALIDATE CONSTRAINT. Nothing here
-- rewrites data. (No semicolons in comments: the schema engine splits on them.)

ALTER TABLE "Investment"
  ADD CONSTRAINT "Investment_totalQuantity_positive"
  CHECK ("totalQuantity" > 0) NOT VALID;

ALTER TABLE "Investment"
  ADD CONSTRAINT "Investment_averageCostBasis_positive"
  CHECK ("averageCostBasis" >= 0) NOT VALID;

ALTER TABLE "Investment"
  ADD CONSTRAINT "Investment_currentPrice_positive"
  CHECK ("currentPrice" IS NULL OR "currentPrice" >= 0) NOT VALID;

ALTER TABLE "TaxLot"
  ADD CONSTRAINT "TaxLot_quantity_positive"
  CHECK ("quantity" > 0) NOT VALID;

ALTER TABLE "TaxLot"
  ADD CONSTRAINT "TaxLot_remainingQuantity_valid"
  CHECK ("remainingQuantity" >= 0 AND "remainingQuantity" <= "quantity") NOT VALID;
