-- Takes one call from a provider's budget: a sliding window log in a sorted
-- set, and a count per day, on the Redis server's clock so that every
-- process on every machine agrees.
-- KEYS: the window's log, the prefix of the daily counts.
-- ARGV: the calls a window allows, the window (ms), the calls a day allows
-- (0: no daily cap).
-- Returns 0 when the call may go ahead (and records it), or the ms to wait
-- before asking again.
-- @include "nowMs"
local now = nowMs()
local windowMs = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - windowMs)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + windowMs - now)
end
local daily = tonumber(ARGV[3])
local dayKey = KEYS[2] .. ':' .. math.floor(now / 86400000)
if daily > 0 then
  local used = tonumber(redis.call('GET', dayKey) or '0')
  if used >= daily then return 86400000 - (now % 86400000) end
  redis.call('INCR', dayKey)
  redis.call('PEXPIRE', dayKey, 172800000)
end
local seq = redis.call('INCR', KEYS[1] .. ':seq')
redis.call('ZADD', KEYS[1], now, now .. '-' .. seq)
redis.call('PEXPIRE', KEYS[1], windowMs * 2)
redis.call('PEXPIRE', KEYS[1] .. ':seq', windowMs * 2)
return 0
