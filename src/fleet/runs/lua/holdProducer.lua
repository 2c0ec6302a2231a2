-- The producer's lease on a run it is still adding jobs to, on the Redis
-- server's clock (the producer and the workers may be on machines whose
-- clocks disagree). Returns 0, and holds nothing, once the run is sealed:
-- its producer must stop adding.
-- KEYS: the run's hash. ARGV: the lease (ms).
-- @include "nowMs"
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HGET', KEYS[1], 'enqueued') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'producerUntil', nowMs() + tonumber(ARGV[1]))
return 1
