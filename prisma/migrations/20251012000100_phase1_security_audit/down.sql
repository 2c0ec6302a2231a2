DROP TABLE "SessionInfo";
DROP TABLE "AuditLog";
ALTER TABLE "User" DROP COLUMN "mfaSecret", DROP COLUMN "mfaEnabled";
