-- Stores a player's copy of a match.ready until it is written to one of
-- their sockets, and releases their claim on the match's ticket so they may
-- queue again; unless the player has queued again since: then this match
-- is an earlier round and is neither stored nor to be pushed.
--
-- KEYS[1]  the player's pending match hash ({p:P}:match)
-- KEYS[2]  the player's ticket claim ({p:P}:ticket)
-- ARGV[1]  match id, ARGV[2] match.ready payload
-- ARGV[3]  the player's claim on the match's ticket ("<queue>:<ticket>"),
--          "" if the match does not say (then the copy is stored as before)
-- ARGV[4]  TTL of the copy (seconds)
--
-- The hash's "round" field is the claim of the ticket the player last
-- queued with, as far as this hash knows: set here, and by
-- supersede_pending_match.lua when the player claims a new ticket. It
-- outlives the copy (ack_pending_match.lua keeps it), so a copy re-sent
-- late (its job was claimed again after its ack was lost) cannot come back
-- once the player has queued again.
--
-- Returns 1 if the copy is stored (push it), 0 if the player has queued
-- again since (do not), 2 if this match was already written to a socket of
-- theirs (do not). Safe to run twice: a re-run finds the claim released and
-- the round set, and stores the same copy again.
local pending, claimKey = KEYS[1], KEYS[2]
local matchID, payload, ticketClaim, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local claim = redis.call('GET', claimKey)
local f = redis.call('HMGET', pending, 'round', 'matchId', 'delivered')
local round, copyOf, delivered = f[1], f[2], f[3]
if delivered == matchID then
  return 2
end
-- The claim, while there is one, says which ticket is the player's
-- current one; once it is released, the round does (a copy of this very
-- match stored by an older lobbyd, which does not set rounds, counts too).
if ticketClaim ~= '' then
  if claim then
    if claim ~= ticketClaim then
      return 0
    end
  elseif round and round ~= ticketClaim and copyOf ~= matchID then
    return 0
  end
end
if delivered then
  redis.call('HDEL', pending, 'delivered')
end
if ticketClaim ~= '' then
  redis.call('HSET', pending, 'matchId', matchID, 'payload', payload, 'round', ticketClaim)
else
  redis.call('HSET', pending, 'matchId', matchID, 'payload', payload)
end
redis.call('EXPIRE', pending, ttl)
if claim and claim == ticketClaim then
  redis.call('DEL', claimKey)
end
return 1
