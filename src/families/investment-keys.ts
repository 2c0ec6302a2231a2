import { Prisma, type PrismaClient } from '../db/prisma.js';
import { sqlRows } from '../db/sql.js';

/** The ticker of the investment as the ticker families key their jobs (trimmed, upper case); none when there is no such investment. */
export async function investmentTicker(prisma: PrismaClient, investmentId: string): Promise<string[]> {
  const rows = await sqlRows<{ ticker: string }>(prisma, Prisma.sql`SELECT upper(trim(ticker)) AS ticker FROM "Investment" WHERE id = ${investmentId}`);
  return rows.map((row) => row.ticker);
}
