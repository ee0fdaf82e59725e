-- Replaces a player's ticket claim that points at a finished ticket.
-- KEYS[1] claim key, ARGV[1] the old claim seen by the caller, ARGV[2] the
-- new claim, ARGV[3] TTL (seconds). Returns 1 if replaced.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
