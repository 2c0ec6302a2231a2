-- Dropping a CHECK constraint touches no data.
ALTER TABLE "TaxLot" DROP CONSTRAINT "TaxLot_remainingQuantity_valid";
ALTER TABLE "TaxLot" DROP CONSTRAINT "TaxLot_quantity_positive";
ALTER TABLE "Investment" DROP CONSTRAINT "Investment_currentPrice_positive";
ALTER TABLE "Investment" DROP CONSTRAINT "Investment_averageCostBasis_positive";
ALTER TABLE "Investment" DROP CONSTRAINT "Investment_totalQuantity_positive";
