-- A lot's cost basis per unit is never negative. Lots made before this
-- check from investments with a negative average cost basis are found by
-- "tys audit constraints" and fixed, with an audit record, by the
-- constraints family. Added NOT VALID like the phase 4 checks: existing rows
-- are not scanned under an exclusive lock, new writes are checked at once,
-- and "tys validate constraints" validates it once the data is clean.
ALTER TABLE "TaxLot"
  ADD CONSTRAINT "TaxLot_costBasisPerUnit_nonnegative"
  CHECK ("costBasisPerUnit" >= 0) NOT VALID;
