-- The jobs of a run in a queue's failed set since a time whose outcome the
-- run has not counted. A failure counted stays in the pending hash.
-- KEYS: the queue's failed set, the run's pending hash.
-- ARGV: the prefix of the queue's job keys, the run's id, since (ms).
-- @include "jobData"
local missing = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[3], '+inf')) do
  if redis.call('HEXISTS', KEYS[2], id) == 0 then
    local job = jobData(ARGV[1] .. id)
    if job and job.runId == ARGV[2] then missing[#missing + 1] = id end
  end
end
return missing
