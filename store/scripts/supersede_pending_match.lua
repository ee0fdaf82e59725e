-- Records that a player has queued again: their copy of an earlier match
-- is dropped, and the new round is noted so that a late re-send of an
-- earlier match is refused (see store_pending_match.lua).
--
-- KEYS[1]  the player's pending match hash ({p:P}:match)
-- KEYS[2]  the player's ticket claim ({p:P}:ticket)
-- ARGV[1]  the claim the player just took ("<queue>:<ticket>")
--
-- Acts only while the claim is still ARGV[1] and the hash exists (it keeps
-- its TTL: it must outlive only the earlier match's copy). Returns 1 if it
-- changed the hash. Safe to run twice: the second run finds the round set.
if redis.call('GET', KEYS[2]) ~= ARGV[1] or redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if redis.call('HGET', KEYS[1], 'round') == ARGV[1] then
  return 0
end
redis.call('HDEL', KEYS[1], 'matchId', 'payload', 'delivered')
redis.call('HSET', KEYS[1], 'round', ARGV[1])
return 1
