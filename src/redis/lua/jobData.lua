-- The fleet's data of a BullMQ job (the 'data' field of its hash, JSON),
-- or nil when the job is gone or its data is no table.
local function jobData(jobKey)
  local raw = redis.call('HGET', jobKey, 'data')
  if not raw then return nil end
  local ok, job = pcall(cjson.decode, raw)
  if ok and type(job) == 'table' then return job end
  return nil
end
