-- Extends KEYS[1]'s TTL to ARGV[2] ms only if it still holds ARGV[1].
-- Returns 1 if extended.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
