-- The fleet's own run history (not part of the Track Your Stack application).

-- CreateEnum
CREATE TYPE "FleetRunStatus" AS ENUM ('ENQUEUEING', 'RUNNING', 'COMPLETED', 'FAILED', 'INTERRUPTED');

-- CreateTable
CREATE TABLE "FleetRun" (
    "id" TEXT NOT NULL,
    "family" TEXT NOT NULL,
    "scope" JSONB NOT NULL,
    "status" "FleetRunStatus" NOT NULL DEFAULT 'ENQUEUEING',
    "total" INTEGER NOT NULL DEFAULT 0,
    "alreadyQueued" INTEGER NOT NULL DEFAULT 0,
    "completed" INTEGER NOT NULL DEFAULT 0,
    "failed" INTEGER NOT NULL DEFAULT 0,
    "skipped" INTEGER NOT NULL DEFAULT 0,
    "stats" JSONB,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "enqueuedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "FleetRun_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "FleetRun_family_startedAt_idx" ON "FleetRun"("family", "startedAt");
