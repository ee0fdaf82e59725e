-- Refreshes a player's presence: extends it if it is still ARGV[1], or sets
-- it if it is missing (Redis restarted empty, or the key expired during an
-- outage). A presence held by another connection is left alone.
-- KEYS[1] presence key, ARGV[1] value, ARGV[2] TTL (ms).
-- Returns 1 if extended, 2 if restored, 0 if held by another connection.
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
