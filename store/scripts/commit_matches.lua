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
--          (JSON array, as the match record keeps them), ticket ids (JSON
--          array), ticket count, and the ticket ids
--
-- A ticket is searching exactly when it is in the searching set (every
-- script that changes a ticket's status keeps the two in step), so one
-- ZMSCORE checks a whole match. The matched tickets leave the set in one
-- ZREM per 1000 at the end (until then, "taken" keeps a ticket from joining
-- two matches of one call). A match that exists is never written again,
-- even if its tickets are searching: a re-sent script may arrive after the
-- match failed and requeued them.
--
-- Returns one status per match: "ok" (committed now), "exists" (committed by
-- an earlier run of this script; go-redis may re-send a command whose reply
-- was lost) or "stale:<ticketId>" (a ticket is no longer searching; nothing
-- was changed for that match).
local searching, stream = KEYS[1], KEYS[2]
local now, ttl, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local nmatches = tonumber(ARGV[4])
local k, a = 3, 5
local results, gone, taken = {}, {}, {}
for m = 1, nmatches do
  local mkey = KEYS[k]
  local matchID, queue, regions, players, tickets, nt =
    ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], tonumber(ARGV[a + 5])
  local tids = {}
  for i = 1, nt do
    tids[i] = ARGV[a + 5 + i]
  end

  local outcome = nil
  if redis.call('EXISTS', mkey) == 1 then
    outcome = 'exists'
  else
    local scores = redis.call('ZMSCORE', searching, unpack(tids))
    for i = 1, nt do
      if not scores[i] or taken[tids[i]] then
        outcome = 'stale:' .. tids[i]
        break
      end
    end
  end
  if outcome then
    results[m] = outcome
  else
    for i = 1, nt do
      redis.call('HSET', KEYS[k + i], 'status', 'matched', 'matchId', matchID)
      gone[#gone + 1] = tids[i]
      taken[tids[i]] = true
    end
    redis.call('HSET', mkey,
      'id', matchID, 'queue', queue, 'tickets', tickets,
      'players', players, 'regions', regions,
      'state', 'allocating', 'attempt', 0, 'createdAt', now)
    redis.call('EXPIRE', mkey, ttl)
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'match', matchID)
    results[m] = 'ok'
  end
  k = k + 1 + nt
  a = a + 6 + nt
end
for i = 1, #gone, 1000 do
  redis.call('ZREM', searching, unpack(gone, i, math.min(i + 999, #gone)))
end
return results
