-- Now in ms on the Redis server's clock: every process on every machine
-- reads the same clock, whatever their own say.
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
