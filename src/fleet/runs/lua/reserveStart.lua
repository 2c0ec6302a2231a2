-- Reserves the next start slot of a paced run, a number of ms after the
-- previous one, and starts the job at the first multiple of the group's
-- length from that slot on.
-- KEYS: the run's next free slot (ms, on the Redis server's clock, so that
-- every worker process on every machine agrees).
-- ARGV: the ms between two starts, the group's length (ms).
-- Returns the ms from now to the start (0: start now).
-- @include "nowMs"
local now = nowMs()
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
-- Slots may fall between milliseconds (500/1s is 2.5 ms apart); an expiry may not.
redis.call('SET', KEYS[1], slot + tonumber(ARGV[1]), 'PX', math.ceil(math.max(60000, slot - now + 60000)))
return math.max(0, math.ceil(slot / tonumber(ARGV[2])) * tonumber(ARGV[2]) - now)
