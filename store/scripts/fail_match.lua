-- Marks a match failed and puts its tickets back in the queue with their
-- original creation time, so they keep their place.
--
-- KEYS[1]  match key
-- KEYS[2]  searching sorted set
-- KEYS[3..] the match's ticket keys
-- ARGV[1]  attempt the caller owns
-- ARGV[2]  reason
-- ARGV[3..] the ticket ids, in KEYS order
--
-- Returns "ok", "failed" (already failed: a re-sent script), "stale" (a newer
-- attempt owns the match) or the match's state.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return 'missing'
end
if state == 'failed' then
  return 'failed'
end
if state ~= 'allocating' then
  return state
end
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then
  return 'stale'
end
redis.call('HSET', KEYS[1], 'state', 'failed', 'failReason', ARGV[2])
local matchID = redis.call('HGET', KEYS[1], 'id')
for i = 3, #KEYS do
  local tid = ARGV[i]
  if redis.call('HGET', KEYS[i], 'status') == 'matched' and redis.call('HGET', KEYS[i], 'matchId') == matchID then
    redis.call('HSET', KEYS[i], 'status', 'searching')
    redis.call('HDEL', KEYS[i], 'matchId')
    redis.call('ZADD', KEYS[2], redis.call('HGET', KEYS[i], 'createdAt'), tid)
  end
end
return 'ok'
