-- Hands jobs of a run being cancelled that other runs follow to the first
-- of those runs still open, by rewriting the run id in the job's data, so
-- that the followers still get the outcomes they wait for.
-- KEYS: the adopters hash.
-- ARGV: the prefix of the queue's job keys, the cancelled run's id, the ids
-- of the open runs (space-separated), then job ids.
-- Returns {jobId, heir, ...} for each job handed over.
-- @include "jobData"
local jobPrefix, cancelled = ARGV[1], ARGV[2]
local open = {}
for runId in string.gmatch(ARGV[3], '%S+') do open[runId] = true end
local handed = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local job = jobData(jobPrefix .. id)
  if job and job.runId ~= cancelled and open[job.runId] then
    -- Handed over already (a worker fetched it before the cancel rewrote it).
    handed[#handed + 1] = id
    handed[#handed + 1] = job.runId
  elseif job and job.runId == cancelled then
    local heir = false
    for runId in string.gmatch(redis.call('HGET', KEYS[1], id) or '', '%S+') do
      if not heir and open[runId] then heir = runId end
    end
    if heir then
      -- The heir stays among the job's followers: a worker that took the job
      -- under the old run just before this still counts it for the heir
      -- (once: counting is once per run and job). Who added the job stays
      -- known: its seal is that run's.
      if job.by == nil then job.by = job.runId end
      job.runId = heir
      redis.call('HSET', jobPrefix .. id, 'data', cjson.encode(job))
      handed[#handed + 1] = id
      handed[#handed + 1] = heir
    end
  end
end
return handed
