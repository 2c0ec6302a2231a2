-- Creates the fleet's marker when there is none. When the caller saw
-- another marker in this same Redis before and it is no longer the current
-- one, this Redis lost that marker's data: it is added to the lost ones.
-- KEYS: the marker's hash.
-- ARGV: a fresh id, the id the caller saw ('' for none), now (ISO 8601),
-- the markers the seen one had lost (space-separated).
local id = redis.call('HGET', KEYS[1], 'id')
if not id then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'createdAt', ARGV[3])
  id = ARGV[1]
end
local lost = redis.call('HGET', KEYS[1], 'lost') or ''
if ARGV[2] ~= '' and ARGV[2] ~= id and not string.find(' ' .. lost .. ' ', ' ' .. ARGV[2] .. ' ', 1, true) then
  lost = ARGV[2] .. (lost ~= '' and (' ' .. lost) or '') .. (ARGV[4] ~= '' and (' ' .. ARGV[4]) or '')
  redis.call('HSET', KEYS[1], 'lost', lost)
end
return {id, lost}
