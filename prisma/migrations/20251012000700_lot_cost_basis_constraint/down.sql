-- Dropping a CHECK constraint touches no data.
ALTER TABLE "TaxLot" DROP CONSTRAINT "TaxLot_costBasisPerUnit_nonnegative";
