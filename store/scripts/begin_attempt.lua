-- Starts an allocation attempt on a match that is still allocating.
--
-- KEYS[1]  match key
-- ARGV[1]  node id of the allocator
--
-- For an allocating match, the attempt counter goes up by one: the caller
-- now owns that attempt. A match in any other state is left alone. Returns
-- the match's fields as HGETALL does (empty for a missing match), so the
-- caller needs no second round trip.
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'allocating' then
  redis.call('HINCRBY', KEYS[1], 'attempt', 1)
  redis.call('HSET', KEYS[1], 'allocator', ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
