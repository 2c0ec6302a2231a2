-- CreateEnum
CREATE TYPE "DividendType" AS ENUM ('QUALIFIED', 'ORDINARY', 'RETURN_OF_CAPITAL');

-- CreateEnum
CREATE TYPE "CorporateActionType" AS ENUM ('STOCK_SPLIT', 'REVERSE_SPLIT', 'TICKER_CHANGE', 'MERGER', 'ACQUISITION', 'SPIN_OFF', 'DELISTING');

-- CreateTable
CREATE TABLE "Dividend" (
    "id" TEXT NOT NULL,
    "investmentId" TEXT NOT NULL,
    "exDate" DATE NOT NULL,
    "paymentDate" DATE NOT NULL,
    "amountPerShare" DECIMAL(20,8) NOT NULL,
    "totalAmount" DECIMAL(20,2) NOT NULL,
    "dividendType" "DividendType" NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Dividend_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "CorporateAction" (
    "id" TEXT NOT NULL,
    "investmentId" TEXT NOT NULL,
    "actionType" "CorporateActionType" NOT NULL,
    "effectiveDate" DATE NOT NULL,
    "description" TEXT NOT NULL,
    "splitRatio" TEXT,
    "newTicker" TEXT,
    "processed" BOOLEAN NOT NULL DEFAULT false,
    "processedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "CorporateAction_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Dividend_investmentId_exDate_idx" ON "Dividend"("investmentId", "exDate");

-- CreateIndex
CREATE INDEX "CorporateAction_investmentId_effectiveDate_idx" ON "CorporateAction"("investmentId", "effectiveDate");

-- CreateIndex
CREATE INDEX "CorporateAction_processed_idx" ON "CorporateAction"("processed");

-- AddForeignKey
ALTER TABLE "Dividend" ADD CONSTRAINT "Dividend_investmentId_fkey" FOREIGN KEY ("investmentId") REFERENCES "Investment"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "CorporateAction" ADD CONSTRAINT "CorporateAction_investmentId_fkey" FOREIGN KEY ("investmentId") REFERENCES "Investment"("id") ON DELETE CASCADE ON UPDATE CASCADE;
