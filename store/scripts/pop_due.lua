-- Pops up to ARGV[2] members of the sorted set KEYS[1] whose score is at
-- most ARGV[1], atomically, so each is handled by exactly one caller.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then
  redis.call('ZREM', KEYS[1], unpack(due))
end
return due
