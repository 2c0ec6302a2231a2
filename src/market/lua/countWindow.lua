-- The calls in the window that ends now, on the Redis server's clock.
-- KEYS: the window's log. ARGV: the window (ms).
-- @include "nowMs"
return redis.call('ZCOUNT', KEYS[1], '(' .. (nowMs() - tonumber(ARGV[1])), '+inf')
