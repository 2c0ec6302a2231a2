-- Notes the jobs a producer is about to add to a run, before it adds them:
-- should it die before it notes them added (noteAdded), the workers that
-- count their outcomes (recordOutcomes) and the seal of the abandoned run
-- (sealAbandoned) still find them. Nothing for a run Redis lost.
-- KEYS: the run's hash, its adding set. ARGV: the runs' time to live (s),
-- then job ids.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #ARGV, 1000 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
