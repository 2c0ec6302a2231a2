import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { releaseBrokenTransactions } from './release-guard.js';

export { Prisma, PrismaClient } from '../generated/prisma/client.js';

export interface PrismaOptions {
  /** Pool size of the pg driver. Default 10. */
  maxConnections?: number;
}

export function createPrisma(databaseUrl: string, options: PrismaOptions = {}): PrismaClient {
  const adapter = releaseBrokenTransactions(new PrismaPg({ connectionString: databaseUrl, max: options.maxConnections ?? 10 }));
  return new PrismaClient({ adapter });
}
