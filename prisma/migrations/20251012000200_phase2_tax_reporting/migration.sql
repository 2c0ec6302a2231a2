-- CreateEnum
CREATE TYPE "TaxLotStatus" AS ENUM ('OPEN', 'PARTIALLY_CLOSED', 'CLOSED');

-- CreateTable
CREATE TABLE "TaxLot" (
    "id" TEXT NOT NULL,
    "investmentId" TEXT NOT NULL,
    "purchaseDate" DATE NOT NULL,
    "quantity" DECIMAL(20,8) NOT NULL,
    "costBasisPerUnit" DECIMAL(20,8) NOT NULL,
    "fees" DECIMAL(20,2) NOT NULL DEFAULT 0,
    "remainingQuantity" DECIMAL(20,8) NOT NULL,
    "status" "TaxLotStatus" NOT NULL DEFAULT 'OPEN',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "TaxLot_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SaleTransaction" (
    "id" TEXT NOT NULL,
    "investmentId" TEXT NOT NULL,
    "saleDate" DATE NOT NULL,
    "quantity" DECIMAL(20,8) NOT NULL,
    "salePricePerUnit" DECIMAL(20,8) NOT NULL,
    "fees" DECIMAL(20,2) NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SaleTransaction_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "TaxLotAllocation" (
    "id" TEXT NOT NULL,
    "saleId" TEXT NOT NULL,
    "taxLotId" TEXT NOT NULL,
    "quantityAllocated" DECIMAL(20,8) NOT NULL,

    CONSTRAINT "TaxLotAllocation_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "TaxLot_investmentId_status_idx" ON "TaxLot"("investmentId", "status");

-- CreateIndex
CREATE INDEX "TaxLot_investmentId_purchaseDate_idx" ON "TaxLot"("investmentId", "purchaseDate");

-- CreateIndex
CREATE INDEX "SaleTransaction_investmentId_saleDate_idx" ON "SaleTransaction"("investmentId", "saleDate");

-- CreateIndex
CREATE INDEX "TaxLotAllocation_saleId_idx" ON "TaxLotAllocation"("saleId");

-- CreateIndex
CREATE INDEX "TaxLotAllocation_taxLotId_idx" ON "TaxLotAllocation"("taxLotId");

-- CreateIndex
CREATE UNIQUE INDEX "TaxLotAllocation_saleId_taxLotId_key" ON "TaxLotAllocation"("saleId", "taxLotId");

-- AddForeignKey
ALTER TABLE "TaxLot" ADD CONSTRAINT "TaxLot_investmentId_fkey" FOREIGN KEY ("investmentId") REFERENCES "Investment"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SaleTransaction" ADD CONSTRAINT "SaleTransaction_investmentId_fkey" FOREIGN KEY ("investmentId") REFERENCES "Investment"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TaxLotAllocation" ADD CONSTRAINT "TaxLotAllocation_saleId_fkey" FOREIGN KEY ("saleId") REFERENCES "SaleTransaction"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TaxLotAllocation" ADD CONSTRAINT "TaxLotAllocation_taxLotId_fkey" FOREIGN KEY ("taxLotId") REFERENCES "TaxLot"("id") ON DELETE CASCADE ON UPDATE CASCADE;
