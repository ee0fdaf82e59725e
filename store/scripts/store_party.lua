-- Stores a party on a match, compare-and-set on the allocation attempt.
--
-- KEYS[1]  match key
-- ARGV[1]  attempt the caller owns
-- ARGV[2]  party id, ARGV[3] network descriptor, ARGV[4] invitation id
-- ARGV[5]  now (ms), kept as readyAt (for the operator console)
--
-- Returns an outcome followed by the match's fields as HGETALL gives them
-- (so the caller needs no second round trip). The outcome is "ok" when
-- stored, "ready" when the match already holds a party (a re-sent script, or
-- another allocator won), "stale" when a newer attempt owns the match, or the
-- match's state ("failed", "missing").
local function answer(outcome)
  local out = redis.call('HGETALL', KEYS[1])
  table.insert(out, 1, outcome)
  return out
end
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return answer('missing')
end
if state == 'ready' then
  if redis.call('HGET', KEYS[1], 'partyId') == ARGV[2] and redis.call('HGET', KEYS[1], 'attempt') == ARGV[1] then
    return answer('ok')
  end
  return answer('ready')
end
if state ~= 'allocating' then
  return answer(state)
end
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then
  return answer('stale')
end
redis.call('HSET', KEYS[1], 'state', 'ready', 'partyId', ARGV[2],
  'networkDescriptor', ARGV[3], 'invitationId', ARGV[4], 'readyAt', ARGV[5])
return answer('ok')
