-- Starts an allocation attempt on a match that is still allocating.
--
-- KEYS[1]  match key
-- ARGV[1]  node id of the allocator
--
-- Returns {state, attempt}: for an allocating match the attempt number this
-- caller now owns; for any other state the attempt is 0 and nothing changes.
-- A missing match returns {"missing", 0}.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {'missing', 0}
end
if state ~= 'allocating' then
  return {state, 0}
end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'allocator', ARGV[1])
return {state, attempt}
