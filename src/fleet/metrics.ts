import type { Redis } from 'ioredis';

/** Upper bounds, in seconds, of the job duration histogram. */
export const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

export interface DurationHistogram {
  /** Cumulative counts per bucket bound, as Prometheus wants them, then +Inf. */
  buckets: { le: string; count: number }[];
  sum: number;
  count: number;
}

/**
 * Job metrics kept in Redis so that every worker process, on any machine,
 * adds to the same figures and the dashboard can report them: a duration
 * histogram per family and the time spent waiting on rate limits.
 */
export class FleetMetrics {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(kind: string, family: string): string {
    return `${this.prefix}:metrics:${kind}:${family}`;
  }

  /** One round trip for a whole batch of durations. */
  async recordDurations(family: string, durationsMs: number[]): Promise<void> {
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
    const key = this.key('duration', family);
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

  async durations(family: string): Promise<DurationHistogram> {
    const raw = await this.redis.hgetall(this.key('duration', family));
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
