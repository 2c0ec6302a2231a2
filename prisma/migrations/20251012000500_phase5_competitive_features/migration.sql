-- AlterTable
ALTER TABLE "Investment" ADD COLUMN     "sector" TEXT,
ADD COLUMN     "industry" TEXT,
ADD COLUMN     "country" TEXT,
ADD COLUMN     "marketCap" DECIMAL(20,2);

-- CreateEnum
CREATE TYPE "GoalType" AS ENUM ('RETIREMENT', 'HOME_PURCHASE', 'EDUCATION', 'EMERGENCY_FUND', 'FINANCIAL_INDEPENDENCE', 'CUSTOM');

-- CreateEnum
CREATE TYPE "GoalStatus" AS ENUM ('ON_TRACK', 'OFF_TRACK', 'AT_RISK', 'ACHIEVED');

-- CreateEnum
CREATE TYPE "PriceAlertType" AS ENUM ('PRICE_ABOVE', 'PRICE_BELOW', 'PERCENT_GAIN', 'PERCENT_LOSS');

-- CreateTable
CREATE TABLE "PortfolioBenchmark" (
    "id" TEXT NOT NULL,
    "portfolioId" TEXT NOT NULL,
    "benchmarkTicker" TEXT NOT NULL,
    "benchmarkName" TEXT NOT NULL,
    "weight" DECIMAL(5,4) NOT NULL DEFAULT 1.0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "PortfolioBenchmark_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "BenchmarkPrice" (
    "id" TEXT NOT NULL,
    "ticker" TEXT NOT NULL,
    "date" DATE NOT NULL,
    "closePrice" DECIMAL(20,8) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "BenchmarkPrice_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Goal" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "type" "GoalType" NOT NULL,
    "targetAmount" DECIMAL(20,2) NOT NULL,
    "targetDate" TIMESTAMP(3) NOT NULL,
    "currentAmount" DECIMAL(20,2) NOT NULL DEFAULT 0,
    "linkedPortfolioId" TEXT,
    "status" "GoalStatus" NOT NULL DEFAULT 'ON_TRACK',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Goal_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PriceAlert" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "ticker" TEXT NOT NULL,
    "alertType" "PriceAlertType" NOT NULL,
    "targetPrice" DECIMAL(20,8),
    "percentChange" DECIMAL(5,2),
    "triggered" BOOLEAN NOT NULL DEFAULT false,
    "triggeredAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "PriceAlert_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "PortfolioBenchmark_portfolioId_idx" ON "PortfolioBenchmark"("portfolioId");

-- CreateIndex
CREATE UNIQUE INDEX "PortfolioBenchmark_portfolioId_benchmarkTicker_key" ON "PortfolioBenchmark"("portfolioId", "benchmarkTicker");

-- CreateIndex
CREATE INDEX "BenchmarkPrice_ticker_date_idx" ON "BenchmarkPrice"("ticker", "date");

-- CreateIndex
CREATE UNIQUE INDEX "BenchmarkPrice_ticker_date_key" ON "BenchmarkPrice"("ticker", "date");

-- CreateIndex
CREATE INDEX "Goal_userId_status_idx" ON "Goal"("userId", "status");

-- CreateIndex
CREATE INDEX "PriceAlert_userId_triggered_idx" ON "PriceAlert"("userId", "triggered");

-- CreateIndex
CREATE INDEX "PriceAlert_ticker_triggered_idx" ON "PriceAlert"("ticker", "triggered");

-- AddForeignKey
ALTER TABLE "PortfolioBenchmark" ADD CONSTRAINT "PortfolioBenchmark_portfolioId_fkey" FOREIGN KEY ("portfolioId") REFERENCES "Portfolio"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Goal" ADD CONSTRAINT "Goal_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Goal" ADD CONSTRAINT "Goal_linkedPortfolioId_fkey" FOREIGN KEY ("linkedPortfolioId") REFERENCES "Portfolio"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PriceAlert" ADD CONSTRAINT "PriceAlert_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
