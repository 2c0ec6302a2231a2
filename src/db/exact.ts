import { Prisma } from './prisma.js';

/**
 * Decimal arithmetic wide enough that sums and products of Decimal(20,8)
 * values (and percentages of them) are exact; decimal.js keeps 20
 * significant digits by default, which a quantity times a price exceeds.
 * Results are rounded to the column's places (half away from zero, as
 * Postgres rounds numeric) only where they are stored.
 */
export const Exact = Prisma.Decimal.clone({ precision: 80, rounding: Prisma.Decimal.ROUND_HALF_UP });
export type Exact = InstanceType<typeof Exact>;
