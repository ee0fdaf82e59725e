-- Deletes a player's undelivered match only if it is still the given match.
-- KEYS[1] pending match hash, ARGV[1] match id. Returns 1 if deleted.
if redis.call('HGET', KEYS[1], 'matchId') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
