-- Drops the tax-lot tables and every lot, sale and allocation in them.
DROP TABLE "TaxLotAllocation";
DROP TABLE "SaleTransaction";
DROP TABLE "TaxLot";
DROP TYPE "TaxLotStatus";
