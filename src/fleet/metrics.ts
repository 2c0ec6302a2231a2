import type { RedisClient } from '../redis/connection.js';

/** Upper bounds, in seconds, of the job duration histogram. */
export const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

export interface DurationHistogram {
  /** Cumulative counts per bucket bound, as Prometheus wants them, then +Inf. */
  buckets: { le: string; count: number }[];
  sum: number;
  count: number;
}

/** How a job ended, as the outcome counters count it: `retried` is a failed attempt that will be tried again. */
export type CountedOutcome = 'completed' | 'skipped' | 'failed' | 'retried';
export const COUNTED_OUTCOMES: readonly CountedOutcome[] = ['completed', 'skipped', 'failed', 'retried'];

/** How often counts gathered in a process are added to Redis, in ms. */
const FLUSH_EVERY_MS = 1_000;

/**
 * Job metrics kept in Redis so that every worker process, on any machine,
 * adds to the same figures and the dashboard can report them: outcome
 * counters and a duration histogram per family, the time spent waiting on
 * rate limits, and the market-data provider's answers and latency.
 */
export class FleetMetrics {
  private readonly pendingOutcomes = new Map<string, number>();
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private key(kind: string, family: string): string {
    return `${this.prefix}:metrics:${kind}:${family}`;
  }

  /**
   * Counts a job's outcome. Gathered in memory and added to Redis once a
   * second, so a busy worker pays a fraction of a round trip per job; a
   * process killed meanwhile loses at most a second of counts (the run
   * records keep the exact totals).
   */
  countOutcome(family: string, outcome: CountedOutcome): void {
    const field = `${family}\n${outcome}`;
    this.pendingOutcomes.set(field, (this.pendingOutcomes.get(field) ?? 0) + 1);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => void this.flush().catch(() => undefined), FLUSH_EVERY_MS);
      this.flushTimer.unref();
    }
  }

  /** Adds the counts gathered so far to Redis. */
  async flush(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.pendingOutcomes.size === 0) return;
    const pipeline = this.redis.pipeline();
    for (const [field, n] of this.pendingOutcomes) {
      const [family, outcome] = field.split('\n') as [string, string];
      pipeline.hincrby(this.key('outcomes', family), outcome, n);
    }
    this.pendingOutcomes.clear();
    await pipeline.exec();
  }

  async outcomes(family: string): Promise<Record<CountedOutcome, number>> {
    const raw = await this.redis.hgetall(this.key('outcomes', family));
    return Object.fromEntries(COUNTED_OUTCOMES.map((outcome) => [outcome, Number(raw[outcome] ?? 0)])) as Record<CountedOutcome, number>;
  }

  /**
   * One answer of the market-data provider: its class (data, no-data,
   * rate-limited...), how long the call took, and the calls the budget
   * still allows in its window.
   */
  async recordProviderAnswer(provider: string, answerClass: string, durationMs: number, budgetLeft: number): Promise<void> {
    await this.recordDurations(provider, [durationMs], 'provider-duration');
    await this.redis
      .pipeline()
      .hincrby(this.key('provider-answers', provider), answerClass, 1)
      .set(this.key('provider-budget-left', provider), budgetLeft)
      .exec();
  }

  async providerAnswers(provider: string): Promise<{ answers: Record<string, number>; budgetLeft: number | null; durations: DurationHistogram }> {
    const [answers, left] = await Promise.all([
      this.redis.hgetall(this.key('provider-answers', provider)),
      this.redis.get(this.key('provider-budget-left', provider)),
    ]);
    return {
      answers: Object.fromEntries(Object.entries(answers).map(([k, v]) => [k, Number(v)])),
      budgetLeft: left === null ? null : Number(left),
      durations: await this.durations(provider, 'provider-duration'),
    };
  }

  /** One round trip for a whole batch of durations. */
  async recordDurations(family: string, durationsMs: number[], kind = 'duration'): Promise<void> {
    if (durationsMs.length === 0) return;
    const counts = new Map<string, number>();
    let sumMs = 0;
    for (const ms of durationsMs) {
      sumMs += ms;
      const bound = DURATION_BUCKETS.find((b) => ms <= b * 1000);
      const field = bound === undefined ? '+Inf' : String(bound);
      counts.set(field, (counts.get(field) ?? 0) + 1);
    }
    const pipeline = this.redis.pipeline();
    const key = this.key(kind, family);
    for (const [field, n] of counts) pipeline.hincrby(key, field, n);
    pipeline.hincrby(key, 'count', durationsMs.length);
    pipeline.hincrbyfloat(key, 'sum', sumMs / 1000);
    await pipeline.exec();
  }

  async recordRateLimitDelay(family: string, delayMs: number): Promise<void> {
    await this.redis
      .pipeline()
      .hincrby(this.key('ratelimit', family), 'count', 1)
      .hincrbyfloat(this.key('ratelimit', family), 'seconds', delayMs / 1000)
      .exec();
  }

  async durations(family: string, kind = 'duration'): Promise<DurationHistogram> {
    const raw = await this.redis.hgetall(this.key(kind, family));
    let cumulative = 0;
    const buckets = DURATION_BUCKETS.map((bound) => {
      cumulative += Number(raw[String(bound)] ?? 0);
      return { le: String(bound), count: cumulative };
    });
    const count = Number(raw.count ?? 0);
    buckets.push({ le: '+Inf', count });
    return { buckets, sum: Number(raw.sum ?? 0), count };
  }

  async rateLimitDelays(family: string): Promise<{ count: number; seconds: number }> {
    const raw = await this.redis.hgetall(this.key('ratelimit', family));
    return { count: Number(raw.count ?? 0), seconds: Number(raw.seconds ?? 0) };
  }
}
