import { Prisma } from '../generated/prisma/client.js';

/**
 * The application's timestamp(3) and date columns hold UTC: Prisma writes
 * and reads them so. In SQL, now() is a point in time, and turning it into
 * a time or a date without a zone (a write into such a column, a comparison
 * with one, current_date) takes the session's TimeZone, which a production
 * server may well have set to its own zone. A bare now() would store that
 * zone's clock time (an Investment's updatedAt hours off, behind or ahead
 * of the application's own writes) and judge a stored time in that zone (a
 * price hours old taken for fresh). The fleet's SQL says UTC rather than
 * rely on the session's setting, which a connection pooler may not pass on.
 */
export const utcNowSql = Prisma.sql`(now() AT TIME ZONE 'UTC')`;

/** Today's date in UTC, as the application's date columns hold dates. */
export const utcTodaySql = Prisma.sql`(now() AT TIME ZONE 'UTC')::date`;

/**
 * A moment of this process's clock as a timestamp(3) column holds it. A
 * JavaScript Date handed to pg as it is goes as this process's local time
 * with its offset, which a column without a time zone drops.
 */
export function utcTimestampSql(moment: Date): Prisma.Sql {
  return Prisma.sql`(${moment.toISOString()}::timestamptz AT TIME ZONE 'UTC')`;
}
