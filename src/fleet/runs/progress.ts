import type { RedisClient } from '../../redis/connection.js';
import { runKeys } from './keys.js';

export interface ProgressSample {
  /** Epoch ms, the start of the sample's bucket. */
  at: number;
  /** Jobs of the run with an outcome by then. */
  done: number;
}

export interface RunProgressOptions {
  /** Width of a sample's bucket in ms: every process writing within it writes the same field. Default 5,000. */
  bucketMs?: number;
  /** Samples kept per run, the oldest dropped first. Default 720 (an hour at 5 s). */
  maxSamples?: number;
}

/** Progress history outlives the run by as long as its live counters do. */
const PROGRESS_TTL_SECONDS = 30 * 24 * 3600;

/**
 * How far a running run had got over time, for its moving rate and its
 * throughput chart. Every worker process's reconciler writes a sample per
 * bucket (a hash field per bucket, so that several writers make one
 * sample); the dashboard reads them.
 */
export class RunProgress {
  private readonly bucketMs: number;
  private readonly maxSamples: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    options: RunProgressOptions = {},
  ) {
    this.bucketMs = options.bucketMs ?? 5_000;
    this.maxSamples = options.maxSamples ?? 720;
  }

  private key(runId: string): string {
    return runKeys(this.prefix).progress(runId);
  }

  async record(runId: string, done: number, now = Date.now()): Promise<void> {
    const key = this.key(runId);
    const bucket = Math.floor(now / this.bucketMs) * this.bucketMs;
    const [, , length] = ((await this.redis.multi().hset(key, String(bucket), done).expire(key, PROGRESS_TTL_SECONDS).hlen(key).exec()) ?? []).map(
      ([, value]) => value,
    );
    if (Number(length) > this.maxSamples) {
      const fields = (await this.redis.hkeys(key)).sort((a, b) => Number(a) - Number(b));
      await this.redis.hdel(key, ...fields.slice(0, fields.length - this.maxSamples));
    }
  }

  /** The run's samples, oldest first. */
  async read(runId: string): Promise<ProgressSample[]> {
    const raw = await this.redis.hgetall(this.key(runId));
    return Object.entries(raw)
      .map(([at, done]) => ({ at: Number(at), done: Number(done) }))
      .sort((a, b) => a.at - b.at);
  }
}

/**
 * Jobs per second over the last `windowMs` (default 60 s), from the oldest
 * sample in the window to `latest`; null without a sample old enough to
 * measure from. Unlike the run's average it falls to 0 when a run stalls or
 * is paused, and rises again when it resumes.
 */
export function movingRate(samples: ProgressSample[], latest: ProgressSample, windowMs = 60_000): number | null {
  const from = samples.find((sample) => sample.at >= latest.at - windowMs && sample.at < latest.at - 1_000);
  if (!from) return null;
  return Math.max(0, latest.done - from.done) / ((latest.at - from.at) / 1000);
}
