-- For each job of a page, in order: 0 absent, 1 pending (queued, active or
-- held), 2 finished (completed or failed), 3 orphan (a hash without data,
-- left by a removal that did not finish).
-- KEYS: the queue's completed and failed sets, then each job's hash.
-- ARGV: the job ids, in the same order.
local states = {}
for i = 3, #KEYS do
  local id = ARGV[i - 2]
  if redis.call('EXISTS', KEYS[i]) == 0 then states[i - 2] = 0
  elseif redis.call('HEXISTS', KEYS[i], 'data') == 0 then states[i - 2] = 3
  elseif redis.call('ZSCORE', KEYS[1], id) or redis.call('ZSCORE', KEYS[2], id) then states[i - 2] = 2
  else states[i - 2] = 1 end
end
return states
