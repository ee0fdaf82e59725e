-- Stores a queue configuration for every node (a reloaded queue file),
-- with a version one above the last, unless it is the one stored already.
--
-- KEYS[1]  queue configuration hash
-- ARGV[1]  the file's SHA-256 (hex), ARGV[2] its contents, ARGV[3] the
--          node storing it, ARGV[4] now (ms), ARGV[5] the retired queues
--          (JSON array: queues earlier configurations had and this one
--          drops), ARGV[6] the SHA-256 of the configuration the caller
--          computed ARGV[5] from ("" for none)
--
-- Returns {version, 1} when stored, {version, 0} when it was stored
-- already, {version, -1} when the stored configuration is no longer the
-- one ARGV[6] names (another reload came first: compute again).
local current = redis.call('HGET', KEYS[1], 'sha')
local version = tonumber(redis.call('HGET', KEYS[1], 'version')) or 0
if current == ARGV[1] then
  return {version, 0}
end
if (current or '') ~= ARGV[6] then
  return {version, -1}
end
version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'sha', ARGV[1], 'content', ARGV[2], 'by', ARGV[3], 'at', ARGV[4], 'retired', ARGV[5])
return {version, 1}
