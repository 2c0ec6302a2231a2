import { randomBytes, randomInt } from 'node:crypto';
import { Prisma, type PrismaClient } from '../src/db/prisma.js';

/**
 * The application's own traffic, as the product would send it while the
 * migration runs: users opening portfolios, adding investments, buying more,
 * refreshing prices and, once phase 5 is in, setting price alerts. It writes
 * only rows of the users it made itself (email `...@traffic.invalid`), and
 * asks the schema which phases are in before it chooses its queries, as the
 * application deployed beside each phase would.
 */

export type RequestKind = 'open-portfolio' | 'add-investment' | 'purchase' | 'refresh-price' | 'price-alerts';

/** Share of each request kind in the mix. Kinds a phase has not brought yet are sent as open-portfolio instead. */
export const DEFAULT_MIX: Record<RequestKind, number> = {
  'open-portfolio': 0.5,
  'add-investment': 0.1,
  purchase: 0.15,
  'refresh-price': 0.2,
  'price-alerts': 0.05,
};

export interface TrafficOptions {
  /** Requests per second, sent on a fixed schedule whatever the answers' speed (open loop). Default 200. */
  rate?: number;
  /** Users the simulator makes and works for. Default 50. */
  users?: number;
  /**
   * Investments each of them starts with. Default 20. A portfolio that has
   * twice as many gets no more: the user opens another. Else every portfolio
   * read would grow with the run (20 new investments a second at 200
   * requests/s) and the application's own CPU with it, which a baseline taken
   * at the start cannot account for.
   */
  investmentsPerUser?: number;
  /**
   * Connections of the client's pool. setUp opens them all, as they are in an
   * application that has been running: opened during the baseline, they
   * would be counted against it. Default 20.
   */
  connections?: number;
  /** Requests in flight at most; one more is counted as an error (the application would time out). Default 100. */
  maxInFlight?: number;
  mix?: Record<RequestKind, number>;
}

export interface Phases {
  /** TaxLot exists: a purchase also records its lot, a portfolio shows open lots. */
  lots: boolean;
  /** PriceAlert exists. */
  alerts: boolean;
}

export interface KindStats {
  count: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** The first few error messages, for a human. */
  sampleErrors: string[];
}

export interface WindowStats {
  label: string;
  seconds: number;
  /** Requests due in the window, per second. */
  perSecond: number;
  all: KindStats;
  byKind: Partial<Record<RequestKind, KindStats>>;
  /**
   * p99 of the application process's event-loop delay over the window, in
   * ms: the part of a request's latency spent waiting for that process to get
   * a CPU, not for the database. On a machine the fleet shares, it tells the
   * two apart.
   */
  loopDelayP99Ms: number;
  /** Its longest single delay: one block, which the p99 of a short window can hide. */
  loopDelayMaxMs: number;
}

/** One request: when it was due (epoch ms), how long it took from then, and its error if it failed. */
export interface Sample {
  kind: RequestKind;
  at: number;
  ms: number;
  error?: string;
}

/** One look of the event-loop sampler: when (epoch ms), and how late its timer fired. */
export interface LoopDelaySample {
  at: number;
  ms: number;
}

/** What the simulator recorded since it was last drained. */
export interface TrafficRecord {
  samples: Sample[];
  loopDelays: LoopDelaySample[];
  /** Every request due before this (epoch ms) is among the samples drained so far. */
  settledAt: number;
}

/** A span of time, epoch ms, from inclusive, to exclusive. */
export type TimeRange = readonly [from: number, to: number];

const EMAIL_DOMAIN = 'traffic.invalid';
/** How often the event-loop sampler looks, in ms. */
const LOOP_DELAY_RESOLUTION_MS = 10;
const TICKERS = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'JPM', 'V', 'KO'];
const D = (value: string | number) => new Prisma.Decimal(value);

/** The nearest-rank percentile `p` (0 to 100) of values sorted ascending; 0 for none. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function statsOf(samples: readonly Sample[]): KindStats {
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
  const errors = samples.filter((s) => s.error);
  return {
    count: samples.length,
    errors: errors.length,
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    sampleErrors: [...new Set(errors.map((s) => s.error!))].slice(0, 5),
  };
}

/**
 * The requests a simulator recorded, gathered from its drains, and their
 * figures over any spans of time. A request counts in the span it was due
 * in, however late it answered: a stall is charged to the moment it hit.
 */
export class TrafficLog {
  private samples: Sample[] = [];
  private loopDelays: LoopDelaySample[] = [];
  /** Every request due before this (epoch ms) has been added. */
  settledAt = 0;

  add(record: TrafficRecord): void {
    // One by one: spread, a long drain would pass more arguments than a call takes.
    for (const sample of record.samples) this.samples.push(sample);
    for (const delay of record.loopDelays) this.loopDelays.push(delay);
    this.settledAt = Math.max(this.settledAt, record.settledAt);
  }

  /** Drops what was recorded before `at`, for a log kept as long as the traffic runs. */
  forgetBefore(at: number): void {
    this.samples = this.samples.filter((s) => s.at >= at);
    this.loopDelays = this.loopDelays.filter((d) => d.at >= at);
  }

  /** The latencies (ms) of the requests due within `range`, failed ones included. */
  latencies([from, to]: TimeRange): number[] {
    return this.samples.filter((s) => s.at >= from && s.at < to).map((s) => s.ms);
  }

  /** The figures of the requests due within `ranges`, taken as one window. */
  window(label: string, ranges: readonly TimeRange[]): WindowStats {
    const within = (at: number) => ranges.some(([from, to]) => at >= from && at < to);
    const samples = this.samples.filter((s) => within(s.at));
    const delays = this.loopDelays
      .filter((d) => within(d.at))
      .map((d) => d.ms)
      .sort((a, b) => a - b);
    const byKind: Partial<Record<RequestKind, KindStats>> = {};
    for (const kind of new Set(samples.map((s) => s.kind))) byKind[kind] = statsOf(samples.filter((s) => s.kind === kind));
    const seconds = ranges.reduce((sum, [from, to]) => sum + Math.max(0, to - from), 0) / 1000;
    return {
      label,
      seconds,
      perSecond: seconds > 0 ? samples.length / seconds : 0,
      all: statsOf(samples),
      byKind,
      loopDelayP99Ms: percentile(delays, 99),
      loopDelayMaxMs: delays.at(-1) ?? 0,
    };
  }
}

function newId(): string {
  // The shape of the fleet's SQL ids (src/db/row-id.ts): time first, then random.
  return (Date.now() * 1000).toString(16).padStart(14, '0') + randomBytes(9).toString('hex');
}

export class TrafficSimulator {
  private readonly rate: number;
  private readonly maxInFlight: number;
  private readonly mix: [RequestKind, number][];
  private samples: Sample[] = [];
  private loopDelays: LoopDelaySample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private loopTimer: NodeJS.Timeout | null = null;
  /** Each request in flight, with the epoch ms it was due. */
  private inFlight = new Map<Promise<void>, number>();
  /** When the next request and the next look at the event loop are due (epoch ms): not recorded yet, even if their timers are late. */
  private nextDueAt = Infinity;
  private nextLookAt = Infinity;
  private portfolios: { userId: string; portfolioId: string; investments: string[] }[] = [];
  private phases: Phases = { lots: false, alerts: false };
  private phaseCheckedAt = 0;
  private readonly runTag = randomBytes(3).toString('hex');

  constructor(
    private readonly prisma: PrismaClient,
    private readonly options: TrafficOptions = {},
  ) {
    this.rate = options.rate ?? 200;
    this.maxInFlight = options.maxInFlight ?? 100;
    const mix = options.mix ?? DEFAULT_MIX;
    let sum = 0;
    this.mix = (Object.entries(mix) as [RequestKind, number][]).map(([kind, share]) => [kind, (sum += share)]);
  }

  /** The simulator's users, portfolios and first investments (MVP columns only: the schema may be the MVP's). */
  async setUp(): Promise<void> {
    await this.refreshPhases(true);
    const run = this.runTag;
    for (let u = 0; u < (this.options.users ?? 50); u += 1) {
      const userId = newId();
      await this.prisma.$executeRaw`INSERT INTO "User" (id, email, name) VALUES (${userId}, ${`user-${run}-${u}@${EMAIL_DOMAIN}`}, 'traffic')`;
      const portfolio = await this.openPortfolio(userId);
      for (let i = 0; i < (this.options.investmentsPerUser ?? 20); i += 1)
        portfolio.investments.push(await this.insertInvestment(this.prisma, portfolio.portfolioId));
      this.portfolios.push(portfolio);
    }
    await this.refreshPhases(true);
    // Each sleeps long enough to hold its connection while the others ask for theirs.
    await Promise.all(Array.from({ length: this.options.connections ?? 20 }, () => this.prisma.$queryRaw`SELECT 1 AS held FROM pg_sleep(0.05)`));
  }

  /** Deletes the users this simulator made, and with them (cascading) everything of theirs. */
  async tearDown(): Promise<number> {
    return this.prisma.$executeRaw`DELETE FROM "User" WHERE email LIKE ${`user-${this.runTag}-%@${EMAIL_DOMAIN}`}`;
  }

  /** The phases the simulator last saw in the schema. */
  get phasesSeen(): Phases {
    return { ...this.phases };
  }

  /** Sends requests at the rate until stop(). */
  start(): void {
    const everyMs = 1000 / this.rate;
    let due = performance.now();
    const tick = () => {
      const now = performance.now();
      // Every request due by now is sent, each timed from when it was due:
      // a slow database cannot hide its slowness by slowing the sender.
      while (due <= now) {
        this.send(due);
        due += everyMs;
      }
      this.nextDueAt = performance.timeOrigin + due;
      this.timer = setTimeout(tick, Math.max(1, due - performance.now()));
    };
    tick();
    const look = () => {
      const now = performance.timeOrigin + performance.now();
      // Stamped with when it was due, as requests are: a block counts where it began.
      this.loopDelays.push({ at: this.nextLookAt, ms: Math.max(0, now - this.nextLookAt) });
      this.nextLookAt = now + LOOP_DELAY_RESOLUTION_MS;
      this.loopTimer = setTimeout(look, LOOP_DELAY_RESOLUTION_MS);
    };
    this.nextLookAt = performance.timeOrigin + performance.now() + LOOP_DELAY_RESOLUTION_MS;
    this.loopTimer = setTimeout(look, LOOP_DELAY_RESOLUTION_MS);
  }

  async stop(): Promise<void> {
    for (const timer of [this.timer, this.loopTimer]) if (timer) clearTimeout(timer);
    this.timer = this.loopTimer = null;
    this.nextDueAt = this.nextLookAt = Infinity;
    await Promise.all([...this.inFlight.keys()]);
  }

  /** What was recorded since the last drain, handed over and forgotten here. */
  drain(): TrafficRecord {
    const record = {
      samples: this.samples,
      loopDelays: this.loopDelays,
      settledAt: Math.min(Date.now(), this.nextDueAt, this.nextLookAt, ...this.inFlight.values()),
    };
    this.samples = [];
    this.loopDelays = [];
    return record;
  }

  /** The simulator's investments, for checks after a run (they are the ones the application changed). */
  investmentIds(): string[] {
    return this.portfolios.flatMap((p) => p.investments);
  }

  private send(dueAt: number): void {
    const at = performance.timeOrigin + dueAt;
    if (this.inFlight.size >= this.maxInFlight) {
      this.samples.push({ kind: 'open-portfolio', at, ms: 0, error: `more than ${this.maxInFlight} requests in flight` });
      return;
    }
    const kind = this.pick();
    const request = this.perform(kind)
      .then(() => this.samples.push({ kind, at, ms: performance.now() - dueAt }))
      .catch((error: Error) =>
        this.samples.push({ kind, at, ms: performance.now() - dueAt, error: error.message.split('\n').filter(Boolean).pop()!.slice(0, 200) }),
      )
      .finally(() => this.inFlight.delete(request))
      .then(() => undefined);
    this.inFlight.set(request, at);
  }

  private pick(): RequestKind {
    const roll = Math.random() * this.mix[this.mix.length - 1]![1];
    const kind = this.mix.find(([, upTo]) => roll < upTo)![0];
    if (kind === 'price-alerts' && !this.phases.alerts) return 'open-portfolio';
    return kind;
  }

  private async refreshPhases(force = false): Promise<void> {
    if (!force && Date.now() - this.phaseCheckedAt < 1_000) return;
    this.phaseCheckedAt = Date.now();
    const [row] = await this.prisma.$queryRaw<{ lots: boolean; alerts: boolean }[]>`
      SELECT to_regclass('"TaxLot"') IS NOT NULL AS lots, to_regclass('"PriceAlert"') IS NOT NULL AS alerts`;
    this.phases = row!;
  }

  private async perform(kind: RequestKind): Promise<void> {
    await this.refreshPhases();
    const portfolio = this.portfolios[randomInt(this.portfolios.length)]!;
    const investmentId = portfolio.investments[randomInt(portfolio.investments.length)]!;
    switch (kind) {
      case 'open-portfolio':
        await this.prisma.$queryRaw`
          SELECT i.id, i.ticker, i."totalQuantity", i."averageCostBasis", i."currentPrice"
            FROM "Portfolio" p JOIN "Investment" i ON i."portfolioId" = p.id WHERE p.id = ${portfolio.portfolioId}`;
        if (this.phases.lots) {
          await this.prisma.$queryRaw`
            SELECT t.id, t."investmentId", t."remainingQuantity", t."costBasisPerUnit"
              FROM "TaxLot" t JOIN "Investment" i ON i.id = t."investmentId"
             WHERE i."portfolioId" = ${portfolio.portfolioId} AND t.status = 'OPEN'`;
        }
        return;
      case 'add-investment': {
        const full = portfolio.investments.length >= 2 * (this.options.investmentsPerUser ?? 20);
        const target = full ? await this.openPortfolio(portfolio.userId) : portfolio;
        await this.prisma.$transaction(async (tx) => {
          const id = await this.insertInvestment(tx, target.portfolioId);
          target.investments.push(id);
        });
        if (full) this.portfolios.push(target);
        return;
      }
      case 'purchase':
        await this.purchase(investmentId);
        return;
      case 'refresh-price':
        await this.prisma.$executeRaw`
          UPDATE "Investment" SET "currentPrice" = ${D(randomInt(10, 900))}, "priceUpdatedAt" = now(), "updatedAt" = now() WHERE id = ${investmentId}`;
        return;
      case 'price-alerts':
        await this.prisma.$executeRaw`
          INSERT INTO "PriceAlert" (id, "userId", ticker, "alertType", "targetPrice")
          VALUES (${newId()}, ${portfolio.userId}, ${TICKERS[randomInt(TICKERS.length)]!}, 'PRICE_ABOVE', ${D(randomInt(10, 900))})`;
        await this.prisma.$queryRaw`SELECT id, ticker, "targetPrice", triggered FROM "PriceAlert" WHERE "userId" = ${portfolio.userId}`;
        return;
    }
  }

  /**
   * Buys more of an investment as the application does: the position's
   * quantity and average cost in one update under the row's lock and, once
   * phase 2 is in, the purchase's own tax lot in the same transaction.
   */
  private async purchase(investmentId: string): Promise<void> {
    const quantity = D(randomInt(1, 50));
    const price = D(randomInt(10, 900));
    await this.prisma.$transaction(async (tx) => {
      const [row] = await tx.$queryRaw<{ totalQuantity: Prisma.Decimal; averageCostBasis: Prisma.Decimal }[]>`
        SELECT "totalQuantity", "averageCostBasis" FROM "Investment" WHERE id = ${investmentId} FOR UPDATE`;
      if (!row) return;
      const total = row.totalQuantity.plus(quantity);
      const average = row.totalQuantity.times(row.averageCostBasis).plus(quantity.times(price)).div(total).toDecimalPlaces(8);
      await tx.$executeRaw`UPDATE "Investment" SET "totalQuantity" = ${total}, "averageCostBasis" = ${average}, "updatedAt" = now() WHERE id = ${investmentId}`;
      if (this.phases.lots) {
        await tx.$executeRaw`
          INSERT INTO "TaxLot" (id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", "remainingQuantity", "updatedAt")
          VALUES (${newId()}, ${investmentId}, current_date, ${quantity}, ${price}, ${quantity}, now())`;
      }
    });
  }

  /** A new portfolio of the user's; the caller lists it once it holds an investment (requests pick one of its investments). */
  private async openPortfolio(userId: string): Promise<{ userId: string; portfolioId: string; investments: string[] }> {
    const portfolio = { userId, portfolioId: newId(), investments: [] as string[] };
    await this.prisma.$executeRaw`INSERT INTO "Portfolio" (id, name, "userId", "updatedAt") VALUES (${portfolio.portfolioId}, 'traffic', ${userId}, now())`;
    return portfolio;
  }

  private async insertInvestment(db: Pick<PrismaClient, '$executeRaw'>, portfolioId: string): Promise<string> {
    const id = newId();
    const quantity = D(randomInt(1, 500));
    const cost = D(randomInt(10, 900));
    await db.$executeRaw`
      INSERT INTO "Investment" (id, ticker, name, "assetType", "totalQuantity", "averageCostBasis", "portfolioId", "updatedAt")
      VALUES (${id}, ${TICKERS[randomInt(TICKERS.length)]!}, 'traffic', 'STOCK', ${quantity}, ${cost}, ${portfolioId}, now())`;
    if (this.phases.lots) {
      await db.$executeRaw`
        INSERT INTO "TaxLot" (id, "investmentId", "purchaseDate", quantity, "costBasisPerUnit", "remainingQuantity", "updatedAt")
        VALUES (${newId()}, ${id}, current_date, ${quantity}, ${cost}, ${quantity}, now())`;
    }
    return id;
  }
}
