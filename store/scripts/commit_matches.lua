-- Commits formed matches: each one all or nothing.
--
-- KEYS[1]  searching sorted set of the queue
-- KEYS[2]  allocation stream of the queue
-- then, per match: the match key, followed by its ticket keys
-- ARGV[1]  now (ms)
-- ARGV[2]  match key TTL (seconds)
-- ARGV[3]  stream MAXLEN (approximate)
-- ARGV[4]  number of matches
-- then, per match: match id, queue name, regions (JSON array), players
--          (JSON array, as the match record keeps them), ticket count, and
--          the ticket ids
--
-- Returns one status per match: "ok" (committed now), "exists" (committed by
-- an earlier run of this script; go-redis may re-send a command whose reply
-- was lost) or "stale:<ticketId>" (a ticket is no longer searching; nothing
-- was changed for that match).
local searching, stream = KEYS[1], KEYS[2]
local now, ttl, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local nmatches = tonumber(ARGV[4])
local k, a = 3, 5
local results = {}
for m = 1, nmatches do
  local mkey = KEYS[k]
  local matchID, queue, regions, players, nt =
    ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  local tids, tkeys = {}, {}
  for i = 1, nt do
    tids[i] = ARGV[a + 4 + i]
    tkeys[i] = KEYS[k + i]
  end
  k = k + 1 + nt
  a = a + 5 + nt

  if redis.call('EXISTS', mkey) == 1 then
    results[m] = 'exists'
  else
    local stale = nil
    for i = 1, nt do
      if redis.call('HGET', tkeys[i], 'status') ~= 'searching' then
        stale = tids[i]
        break
      end
    end
    if stale then
      results[m] = 'stale:' .. stale
    else
      redis.call('ZREM', searching, unpack(tids))
      for i = 1, nt do
        redis.call('HSET', tkeys[i], 'status', 'matched', 'matchId', matchID)
      end
      redis.call('HSET', mkey,
        'id', matchID, 'queue', queue, 'tickets', cjson.encode(tids),
        'players', players, 'regions', regions,
        'state', 'allocating', 'attempt', 0, 'createdAt', now)
      redis.call('EXPIRE', mkey, ttl)
      redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'match', matchID)
      results[m] = 'ok'
    end
  end
end
return results
