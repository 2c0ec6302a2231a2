DROP TABLE "CorporateAction";
DROP TABLE "Dividend";
DROP TYPE "CorporateActionType";
DROP TYPE "DividendType";
