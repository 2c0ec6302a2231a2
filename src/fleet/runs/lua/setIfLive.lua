-- Sets fields of a run Redis still has: a run it lost is not brought back
-- as a bare hash, which the reconciler would take for live counters.
-- KEYS: the run's hash. ARGV: field, value, ...
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
