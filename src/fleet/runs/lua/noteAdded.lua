-- Notes as added the jobs of the run's adding set, which Redis has
-- accepted: those a worker has not noted already by counting their outcome.
-- KEYS: the run's hash, its adding set.
-- Returns how many it noted.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('SCARD', KEYS[2])
if n > 0 then redis.call('HINCRBY', KEYS[1], 'added', n) end
redis.call('DEL', KEYS[2])
return n
