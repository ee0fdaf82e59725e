-- Removes ARGV[1] from the sorted set KEYS[1] only if its score is still
-- ARGV[2] (nobody set a new deadline meanwhile). Returns 1 if removed.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
