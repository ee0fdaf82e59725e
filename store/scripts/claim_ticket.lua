-- Claims a ticket for a player, unless they hold a live claim already.
--
-- KEYS[1]  the player's ticket claim
-- KEYS[2]  the player's lobby claim
-- ARGV[1]  the new claim ("<queue>:<ticketId>")
-- ARGV[2]  TTL (seconds)
-- ARGV[3]  "1" for a solo ticket: refuse a player who holds a lobby claim
--          (a lobby member queues with the lobby)
--
-- Returns "ok" (claimed now, or by an earlier run of this script whose reply
-- was lost), "lobby:<lobbyId>" (nothing changed), or "held:<claim>" (the
-- current claim, which the caller checks for liveness).
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  return 'ok'
end
if ARGV[3] == '1' then
  local lobby = redis.call('GET', KEYS[2])
  if lobby then
    return 'lobby:' .. lobby
  end
end
if v then
  return 'held:' .. v
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 'ok'
