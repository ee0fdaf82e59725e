-- Marks a match failed and puts its tickets back in the queue with their
-- original creation time, so they keep their place. A ticket cancelled
-- while the match was allocating (its player left) is not requeued.
--
-- KEYS[1]  match key
-- KEYS[2]  searching sorted set
-- KEYS[3]  incoming list (the leader picks requeued tickets up from it)
-- KEYS[4]  searching data hash (a requeued ticket's entry: see
--          searchingEntry in tickets.go)
-- KEYS[5..] the match's ticket keys
-- ARGV[1]  attempt the caller owns
-- ARGV[2]  reason
-- ARGV[3]  hold until (ms): requeued tickets are not matched again before
--          then, so a failing PlayFab is not hammered by the same players
-- ARGV[4..] the ticket ids, in KEYS order from KEYS[5]
--
-- Returns {"ok", requeued ticket ids...}, or {"failed"} (already failed: a
-- re-sent script), {"stale"} (a newer attempt owns the match) or {state}.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {'missing'}
end
if state ~= 'allocating' then
  return {state}
end
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then
  return {'stale'}
end
redis.call('HSET', KEYS[1], 'state', 'failed', 'failReason', ARGV[2])
local matchID = redis.call('HGET', KEYS[1], 'id')
local requeued = {'ok'}
for i = 5, #KEYS do
  local tid = ARGV[i - 1]
  if redis.call('HGET', KEYS[i], 'status') == 'matched' and redis.call('HGET', KEYS[i], 'matchId') == matchID then
    redis.call('HSET', KEYS[i], 'status', 'searching', 'holdUntil', ARGV[3])
    redis.call('HDEL', KEYS[i], 'matchId')
    local created = redis.call('HGET', KEYS[i], 'createdAt')
    redis.call('ZADD', KEYS[2], created, tid)
    redis.call('HSET', KEYS[4], tid, created .. ':' .. ARGV[3] .. ':' .. redis.call('HGET', KEYS[i], 'data'))
    redis.call('RPUSH', KEYS[3], tid)
    requeued[#requeued + 1] = tid
  end
end
redis.call('HSET', KEYS[1], 'requeued', cjson.encode(requeued))
return requeued
