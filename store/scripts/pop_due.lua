-- Leases up to ARGV[3] members of the sorted set KEYS[1] whose score is at
-- most ARGV[1]: their score becomes ARGV[2] (a retry time) and they are
-- returned. The caller removes each with remove_if_score.lua once handled,
-- so a lost reply, a re-sent script or a crashed caller only delays them.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
