import type { RedisClient } from '../redis/connection.js';
import type { BudgetLimits } from '../config/rate.js';

// Sliding window log in a sorted set, timed by the Redis server's clock so that
// every process on every machine agrees. Returns 0 when the call may go ahead
// (and records it), or the ms to wait before asking again.
const TAKE = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local windowMs = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs - windowMs)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + windowMs - nowMs)
end
local daily = tonumber(ARGV[3])
local dayKey = KEYS[2] .. ':' .. math.floor(nowMs / 86400000)
if daily > 0 then
  local used = tonumber(redis.call('GET', dayKey) or '0')
  if used >= daily then return 86400000 - (nowMs % 86400000) end
  redis.call('INCR', dayKey)
  redis.call('PEXPIRE', dayKey, 172800000)
end
local seq = redis.call('INCR', KEYS[1] .. ':seq')
redis.call('ZADD', KEYS[1], nowMs, nowMs .. '-' .. seq)
redis.call('PEXPIRE', KEYS[1], windowMs * 2)
redis.call('PEXPIRE', KEYS[1] .. ':seq', windowMs * 2)
return 0`;

// Calls in the window that ends now (KEYS[1]: the window's log), on the Redis server's clock.
const COUNT_WINDOW = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. (nowMs - tonumber(ARGV[1])), '+inf')`;

/**
 * One call budget per provider account, shared by every family and every
 * worker process through Redis (BullMQ's limiter is per queue; two families
 * calling one provider must not add up to twice the budget).
 */
export class CallBudget {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly limits: BudgetLimits,
  ) {}

  /** Calls the window still allows now (the daily cap aside). */
  async remaining(): Promise<number> {
    const used = Number(await this.redis.eval(COUNT_WINDOW, 1, `${this.key}:window`, this.limits.windowMs));
    return Math.max(0, this.limits.max - used);
  }

  /** 0 when a call may be made now (it is counted), otherwise how long to wait in ms. */
  async take(): Promise<number> {
    const wait = await this.redis.eval(TAKE, 2, `${this.key}:window`, `${this.key}:day`, this.limits.max, this.limits.windowMs, this.limits.daily ?? 0);
    return Number(wait);
  }
}
