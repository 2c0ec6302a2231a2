-- Makes a run follow jobs of earlier runs that are still queued or active.
-- A job whose outcome its own run has already counted is counted for this
-- run at once. Both are added to the run's followed jobs in the same step,
-- so that a producer that dies right after still has them in its total.
-- KEYS: the adopters hash, the run's hash, its pending hash, the queue's
-- completed and failed sets.
-- ARGV: the prefix of the queue's job keys, the prefix of run keys, the
-- run's id, the runs' time to live (s), then job ids.
-- Returns {followed, counted, ids of jobs that finished meanwhile...}:
-- those need a fresh job.
-- @include "jobData"
local jobPrefix, runsPrefix, runId, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local followed, counted, gone = 0, 0, {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local job = jobData(jobPrefix .. id)
  local outcome = false
  if job and type(job.runId) == 'string' then
    outcome = redis.call('HGET', runsPrefix .. job.runId .. ':pending', id)
  end
  -- A failure on record whose job is queued again (retried) is not final: it is followed.
  if outcome == 'failed' and not redis.call('ZSCORE', KEYS[5], id) then outcome = false end
  if outcome then
    if redis.call('HSETNX', KEYS[3], id, outcome) == 1 then redis.call('HINCRBY', KEYS[2], outcome, 1) end
    counted = counted + 1
  elseif job and not redis.call('ZSCORE', KEYS[4], id) and not redis.call('ZSCORE', KEYS[5], id) then
    local current = redis.call('HGET', KEYS[1], id)
    if not current then
      redis.call('HSET', KEYS[1], id, runId)
    elseif not string.find(' ' .. current .. ' ', ' ' .. runId .. ' ', 1, true) then
      redis.call('HSET', KEYS[1], id, current .. ' ' .. runId)
    end
    followed = followed + 1
  else
    gone[#gone + 1] = id
  end
end
redis.call('EXPIRE', KEYS[3], ttl)
if followed + counted > 0 and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HINCRBY', KEYS[2], 'followed', followed + counted) end
local result = {followed, counted}
for _, id in ipairs(gone) do result[#result + 1] = id end
return result
