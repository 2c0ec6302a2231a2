import type { Job } from 'bullmq';
import type { RedisClient } from '../redis/connection.js';

// Reserves the next start slot of a paced run (KEYS[1]: its next free
// slot, on the Redis server's clock, so that every worker process on every
// machine agrees), ARGV[1] ms after the previous one, and starts the job at
// the first multiple of ARGV[2] ms from that slot on. Returns the ms from now
// to that start (0: start now).
const RESERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
-- Slots may fall between milliseconds (500/1s is 2.5 ms apart); an expiry may not.
redis.call('SET', KEYS[1], slot + tonumber(ARGV[1]), 'PX', math.ceil(math.max(60000, slot - now + 60000)))
return math.max(0, math.ceil(slot / tonumber(ARGV[2])) * tonumber(ARGV[2]) - now)`;

/**
 * Paced jobs start in groups this many ms apart rather than one by one. A
 * job started alone is a batch of one for its handler: at 400 jobs a second,
 * one every 2.5 ms, the lots family spent 3.5 times the Postgres CPU per job
 * of batches of hundreds (a transaction, four statements and a commit per
 * handful of rows), and 2.5 times what it spends grouped every 50 ms, which
 * makes batches of 20 at that rate.
 * The rate is kept on average; a start is never earlier than its own slot
 * and at most this much later.
 */
const START_GROUP_MS = 50;

/** Where a job keeps its reserved start, in its progress field: visible on the board. */
interface PacedProgress {
  startsAt: number;
}

function reservedStart(job: Job): number | null {
  const progress = job.progress as Partial<PacedProgress> | number | string | boolean | undefined;
  return typeof progress === 'object' && progress !== null && typeof progress.startsAt === 'number' ? progress.startsAt : null;
}

/**
 * Paces a run's jobs at an operator's rate (`tys enqueue --rate 500/1s`),
 * whatever the number of workers: each job reserves its own start slot once,
 * waits aside (delayed, no attempt spent) until then, and starts when it
 * comes back. Unlike BullMQ's limiter, which holds a whole queue, this slows
 * one run and leaves the family's other runs alone.
 */
export class RunPacer {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  /** How long the job must still wait before it starts, in ms; reserves its slot the first time. */
  async waitFor(job: Job, runId: string, intervalMs: number): Promise<number> {
    const reserved = reservedStart(job);
    if (reserved !== null) return Math.max(0, reserved - Date.now());
    const wait = Number(await this.redis.eval(RESERVE, 1, `${this.prefix}:runs:${runId}:next-start`, intervalMs, START_GROUP_MS));
    if (wait <= 0) return 0;
    const progress: PacedProgress = { startsAt: Date.now() + wait };
    await job.updateProgress(progress);
    return wait;
  }
}
