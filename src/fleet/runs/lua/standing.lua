-- How long, in ms, the run has had a number of outcomes as the looks of
-- every process saw it: -1 for the first look at that number, which starts
-- the clock, and for a run Redis lost (not brought back as a bare hash).
-- KEYS: the run's hash. ARGV: the number of outcomes seen now.
-- @include "nowMs"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local seen = redis.call('HMGET', KEYS[1], 'lookDone', 'lookSince')
local now = nowMs()
if seen[1] ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'lookDone', ARGV[1], 'lookSince', now)
  return -1
end
return now - tonumber(seen[2])
