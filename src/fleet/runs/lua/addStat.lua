-- Adds to a named figure of a run Redis still has (see setIfLive).
-- KEYS: the run's hash. ARGV: the figure's field, the amount.
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2]) end
