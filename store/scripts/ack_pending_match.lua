-- Forgets a player's copy of a match.ready once it is written to one of
-- their sockets, if the copy is still of that match.
--
-- KEYS[1]  the player's pending match hash ({p:P}:match)
-- ARGV[1]  match id
--
-- The copy (matchId, payload) goes; the hash's "round" stays until the
-- hash expires, with "delivered" naming the match, so that a late re-send
-- of the same match is not stored and pushed again, and one of an earlier
-- round is refused (see store_pending_match.lua). A copy stored by an
-- older lobbyd has no round and leaves nothing behind. Returns 1 if a copy
-- was forgotten; safe to run twice (the second run finds none).
-- (Three calls into Redis: each costs about a microsecond, and every
-- matched player's ack runs this.)
local f = redis.call('HMGET', KEYS[1], 'matchId', 'round')
if f[1] ~= ARGV[1] then
  return 0
end
redis.call('HDEL', KEYS[1], 'matchId', 'payload')
if f[2] then
  redis.call('HSET', KEYS[1], 'delivered', ARGV[1])
end
return 1
