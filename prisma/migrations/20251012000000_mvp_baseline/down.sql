-- Reverses the MVP baseline: drops every table of the application.
DROP TABLE "Investment";
DROP TABLE "Portfolio";
DROP TABLE "VerificationToken";
DROP TABLE "Session";
DROP TABLE "Account";
DROP TABLE "User";
DROP TYPE "AssetType";
