-- Replaces a player's claim that points at something finished.
-- KEYS[1] claim key, ARGV[1] the old claim seen by the caller, ARGV[2] the
-- new claim, ARGV[3] TTL (seconds). Returns 1 if the claim is now ARGV[2]
-- (replaced now, or by an earlier run of this script whose reply was lost).
local v = redis.call('GET', KEYS[1])
if v == ARGV[2] then
  return 1
end
if v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
