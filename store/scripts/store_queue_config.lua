-- Stores a queue configuration for every node (a reloaded queue file),
-- with a version one above the last, unless it is the one stored already.
--
-- KEYS[1]  queue configuration hash
-- ARGV[1]  the file's SHA-256 (hex), ARGV[2] its contents, ARGV[3] the
--          node storing it, ARGV[4] now (ms)
--
-- Returns {version, 1} when stored, {version, 0} when it was stored already.
if redis.call('HGET', KEYS[1], 'sha') == ARGV[1] then
  return {tonumber(redis.call('HGET', KEYS[1], 'version')), 0}
end
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'sha', ARGV[1], 'content', ARGV[2], 'by', ARGV[3], 'at', ARGV[4])
return {version, 1}
