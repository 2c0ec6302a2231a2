import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Prisma } from '../src/db/prisma.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';

const D = (value: string) => new Prisma.Decimal(value);

describe('every model through Prisma Client', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  it('creates, reads and follows the relations of every model', async () => {
    const { prisma } = db;
    const user = await prisma.user.create({
      data: {
        email: 'ada@example.com',
        name: 'Ada',
        mfaEnabled: true,
        mfaSecret: 'encrypted',
        accounts: { create: { type: 'oauth', provider: 'github', providerAccountId: '42' } },
        sessions: { create: { sessionToken: 'token-1', expires: new Date('2030-01-01T00:00:00Z') } },
      },
    });
    await prisma.verificationToken.create({ data: { identifier: 'ada@example.com', token: 'vt-1', expires: new Date() } });
    const portfolio = await prisma.portfolio.create({ data: { name: 'Growth', userId: user.id } });
    const investment = await prisma.investment.create({
      data: {
        portfolioId: portfolio.id,
        ticker: 'AAPL',
        name: 'Apple',
        assetType: 'STOCK',
        totalQuantity: D('10.12345678'),
        averageCostBasis: D('150.5'),
        sector: 'Technology',
        industry: 'Consumer Electronics',
        country: 'USA',
        marketCap: D('3000000000000.25'),
      },
    });
    const lot = await prisma.taxLot.create({
      data: {
        investmentId: investment.id,
        purchaseDate: new Date('2024-03-01'),
        quantity: D('10.12345678'),
        costBasisPerUnit: D('150.5'),
        remainingQuantity: D('4.12345678'),
        status: 'PARTIALLY_CLOSED',
      },
    });
    const sale = await prisma.saleTransaction.create({
      data: {
        investmentId: investment.id,
        saleDate: new Date('2024-06-01'),
        quantity: D('6'),
        salePricePerUnit: D('190.01'),
        fees: D('1.99'),
        allocations: { create: { taxLotId: lot.id, quantityAllocated: D('6') } },
      },
    });
    await prisma.dividend.create({
      data: {
        investmentId: investment.id,
        exDate: new Date('2024-05-10'),
        paymentDate: new Date('2024-05-16'),
        amountPerShare: D('0.25'),
        totalAmount: D('2.53'),
        dividendType: 'QUALIFIED',
      },
    });
    await prisma.corporateAction.create({
      data: { investmentId: investment.id, actionType: 'STOCK_SPLIT', effectiveDate: new Date('2024-08-01'), description: '4-for-1', splitRatio: '4:1' },
    });
    await prisma.auditLog.create({
      data: { userId: user.id, action: 'CREATE_PORTFOLIO', entity: 'Portfolio', entityId: portfolio.id, metadata: { source: 'test' } },
    });
    await prisma.sessionInfo.create({ data: { userId: user.id, deviceName: 'laptop' } });
    await prisma.portfolioBenchmark.create({
      data: { portfolioId: portfolio.id, benchmarkTicker: 'SPY', benchmarkName: 'S&P 500', weight: D('0.6') },
    });
    await prisma.benchmarkPrice.create({ data: { ticker: 'SPY', date: new Date('2024-06-03'), closePrice: D('527.8') } });
    await prisma.goal.create({
      data: {
        userId: user.id,
        name: 'Retire',
        type: 'RETIREMENT',
        targetAmount: D('1000000'),
        targetDate: new Date('2050-01-01'),
        linkedPortfolioId: portfolio.id,
      },
    });
    await prisma.priceAlert.create({ data: { userId: user.id, ticker: 'AAPL', alertType: 'PRICE_ABOVE', targetPrice: D('200') } });

    const loaded = await prisma.user.findUniqueOrThrow({
      where: { id: user.id },
      include: {
        accounts: true,
        sessions: true,
        goals: { include: { linkedPortfolio: true } },
        priceAlerts: true,
        portfolios: {
          include: {
            benchmarks: true,
            goals: true,
            investments: {
              include: {
                taxLots: { include: { allocations: true } },
                saleTransactions: { include: { allocations: true } },
                dividends: true,
                corporateActions: true,
              },
            },
          },
        },
      },
    });
    expect(loaded.accounts[0]!.provider).toBe('github');
    expect(loaded.sessions[0]!.sessionToken).toBe('token-1');
    expect(loaded.goals[0]!.linkedPortfolio!.name).toBe('Growth');
    expect(loaded.priceAlerts[0]!.targetPrice!.toFixed(8)).toBe('200.00000000');
    const inv = loaded.portfolios[0]!.investments[0]!;
    expect(inv.totalQuantity).toBeInstanceOf(Prisma.Decimal);
    expect(inv.totalQuantity.toString()).toBe('10.12345678');
    expect(inv.marketCap!.toFixed(2)).toBe('3000000000000.25');
    expect(inv.taxLots[0]!.allocations[0]!.saleId).toBe(sale.id);
    expect(inv.saleTransactions[0]!.fees.toFixed(2)).toBe('1.99');
    expect(inv.dividends[0]!.dividendType).toBe('QUALIFIED');
    expect(inv.corporateActions[0]!.processed).toBe(false);
    expect(loaded.portfolios[0]!.benchmarks[0]!.weight.toFixed(4)).toBe('0.6000');
    expect(loaded.portfolios[0]!.goals).toHaveLength(1);
    expect(await prisma.benchmarkPrice.count({ where: { ticker: 'SPY' } })).toBe(1);
    expect((await prisma.auditLog.findFirstOrThrow()).metadata).toEqual({ source: 'test' });
    expect(await prisma.sessionInfo.count()).toBe(1);
    expect(await prisma.verificationToken.count()).toBe(1);
  });

  it('rejects new rows that break a phase 4 constraint, even while it is NOT VALID', async () => {
    const user = await db.prisma.user.create({ data: { email: 'grace@example.com', name: 'Grace' } });
    const portfolio = await db.prisma.portfolio.create({ data: { name: 'Checks', userId: user.id } });
    await expect(
      db.prisma.investment.create({
        data: { portfolioId: portfolio.id, ticker: 'BAD', name: 'Bad', assetType: 'STOCK', totalQuantity: D('-1'), averageCostBasis: D('1') },
      }),
    ).rejects.toThrow(/Investment_totalQuantity_positive/);
  });
});
