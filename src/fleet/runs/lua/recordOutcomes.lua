-- Counts each (jobId, outcome) pair once, and only if the run's hash still
-- exists (a flushed Redis must not resurrect a run). A job that later runs
-- adopted (an enqueue that found it still queued) is counted for them too,
-- once. A job that failed and succeeds when retried moves from failed to
-- its new outcome.
-- A batch is hundreds of jobs of one run: each run's hash is looked up, and
-- its counters and expiry written, once per call rather than once per job.
-- A job of the run that its producer was still adding (in the run's adding
-- set) is noted as added by its outcome, should the producer die before it
-- notes it (see noteAdded).
-- KEYS: the run's hash, its pending hash (outcomes by job), the adopters
-- hash (followers by job), the run's adding set.
-- ARGV: the prefix of run keys, the runs' time to live (s), then job id and
-- outcome pairs.
-- Returns {lost, revised, then for each run touched: id, total, completed,
-- skipped, failed, enqueued}: lost 1 when the run's hash is gone, revised 1
-- when a failure of the run turned into a success. Whether a run is done is
-- the caller's to decide from those counters.
local runsPrefix, ttl = ARGV[1], ARGV[2]
local revised, added = 0, 0
local runs, changes, pendingOf = {}, {}, {}
local function open(hash, pending)
  if changes[hash] == nil then
    if redis.call('EXISTS', hash) == 1 then
      runs[#runs + 1] = hash
      changes[hash] = {completed = 0, skipped = 0, failed = 0}
      pendingOf[hash] = pending
    else
      changes[hash] = false
    end
  end
  return changes[hash]
end
local function count(hash, pending, jobId, outcome)
  local change = open(hash, pending)
  if not change then return end
  if redis.call('HSETNX', pending, jobId, outcome) == 1 then
    change[outcome] = change[outcome] + 1
    if hash == KEYS[1] then added = added + redis.call('SREM', KEYS[4], jobId) end
  elseif outcome ~= 'failed' and redis.call('HGET', pending, jobId) == 'failed' then
    redis.call('HSET', pending, jobId, outcome)
    change.failed = change.failed - 1
    change[outcome] = change[outcome] + 1
    if hash == KEYS[1] then revised = 1 end
  end
end
local own = open(KEYS[1], KEYS[2])
for i = 3, #ARGV, 2 do
  local jobId, outcome = ARGV[i], ARGV[i + 1]
  count(KEYS[1], KEYS[2], jobId, outcome)
  local adopters = redis.call('HGET', KEYS[3], jobId)
  if adopters then
    for runId in string.gmatch(adopters, '%S+') do
      local hash = runsPrefix .. runId
      count(hash, hash .. ':pending', jobId, outcome)
    end
    redis.call('HDEL', KEYS[3], jobId)
  end
end
if own and added > 0 then redis.call('HINCRBY', KEYS[1], 'added', added) end
local result = {own and 0 or 1, revised}
for _, hash in ipairs(runs) do
  for _, outcome in ipairs({'completed', 'skipped', 'failed'}) do
    local n = changes[hash][outcome]
    if n ~= 0 then redis.call('HINCRBY', hash, outcome, n) end
  end
  redis.call('EXPIRE', pendingOf[hash], ttl)
  local c = redis.call('HMGET', hash, 'total', 'completed', 'skipped', 'failed', 'enqueued')
  result[#result + 1] = string.sub(hash, #runsPrefix + 1)
  for k = 1, 5 do result[#result + 1] = tonumber(c[k] or '0') end
end
return result
