-- Seals a run nobody adds to any more with what its producer noted: the
-- jobs it noted added, those it followed, and those of its adding set that
-- Redis holds as the run's (it died between adding and noting them).
-- KEYS: the run's hash, its adding set.
-- ARGV: '1' for the hash that holds the producer's lease, which must have
-- lapsed; the prefix of the queue's job keys; the run's id.
-- Returns {total, followed, 1}; {total, followed, 0} for a run sealed
-- already; nil for a run Redis lost or, in the hash that holds the lease,
-- one whose producer's lease has not lapsed or that never had one (a
-- producer of a version without leases).
-- @include "nowMs"
-- @include "jobData"
local run = redis.call('HMGET', KEYS[1], 'family', 'enqueued', 'producerUntil', 'added', 'followed', 'total')
if not run[1] then return nil end
local followed = tonumber(run[5] or '0')
if run[2] == '1' then return {tonumber(run[6] or '0'), followed, 0} end
if ARGV[1] == '1' then
  if not run[3] then return nil end
  if nowMs() <= tonumber(run[3]) then return nil end
end
local added = tonumber(run[4] or '0')
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local job = jobData(ARGV[2] .. id)
  -- A job handed over to a later run keeps the id of the run that added it.
  if job and (job.runId == ARGV[3] or job.by == ARGV[3]) then added = added + 1 end
end
local total = added + followed
redis.call('HSET', KEYS[1], 'total', total, 'enqueued', 1)
return {total, followed, 1}
