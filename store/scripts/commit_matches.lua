-- Commits formed matches: each one all or nothing.
--
-- KEYS[1]  searching sorted set of the queue
-- KEYS[2]  allocation stream of the queue
-- KEYS[3]  searching data hash of the queue
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
-- ZMSCORE per 1000 tickets checks every match of the call. The matched
-- tickets leave the set and the searching data in one ZREM and one HDEL
-- per 1000 at the end (until then, "taken" keeps a ticket from joining two
-- matches of one call). A match that exists is never written again, even if
-- its tickets are searching: a re-sent script may arrive after the match
-- failed and requeued them. One EXISTS over every match key of the call
-- finds none in the usual case; only when it finds some are they checked
-- one by one.
--
-- Returns one status per match: "ok" (committed now), "exists" (committed by
-- an earlier run of this script; go-redis may re-send a command whose reply
-- was lost) or "stale:<ticketId>" (a ticket is no longer searching; nothing
-- was changed for that match).
local searching, stream, data = KEYS[1], KEYS[2], KEYS[3]
local now, ttl, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local nmatches = tonumber(ARGV[4])

-- Where each match's arguments and keys start, and every ticket id.
local margs, mkeys, mkeyIndex, tids, firstTid = {}, {}, {}, {}, {}
do
  local k, a = 4, 5
  for m = 1, nmatches do
    local nt = tonumber(ARGV[a + 5])
    margs[m], mkeyIndex[m], mkeys[m], firstTid[m] = a, k, KEYS[k], #tids + 1
    for i = 1, nt do
      tids[#tids + 1] = ARGV[a + 5 + i]
    end
    k = k + 1 + nt
    a = a + 6 + nt
  end
end

local anyExists = redis.call('EXISTS', unpack(mkeys)) > 0
local scores = {}
for i = 1, #tids, 1000 do
  local part = redis.call('ZMSCORE', searching, unpack(tids, i, math.min(i + 999, #tids)))
  for j = 1, #part do
    scores[i + j - 1] = part[j]
  end
end

local results, gone, taken = {}, {}, {}
for m = 1, nmatches do
  local a, k, f = margs[m], mkeyIndex[m], firstTid[m]
  local mkey = mkeys[m]
  local matchID, queue, regions, players, tickets, nt =
    ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], tonumber(ARGV[a + 5])

  local outcome = nil
  if anyExists and redis.call('EXISTS', mkey) == 1 then
    outcome = 'exists'
  else
    for i = f, f + nt - 1 do
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
      local tid = tids[f + i - 1]
      redis.call('HSET', KEYS[k + i], 'status', 'matched', 'matchId', matchID)
      gone[#gone + 1] = tid
      taken[tid] = true
    end
    redis.call('HSET', mkey,
      'id', matchID, 'queue', queue, 'tickets', tickets,
      'players', players, 'regions', regions,
      'state', 'allocating', 'attempt', 0, 'createdAt', now)
    redis.call('EXPIRE', mkey, ttl)
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'match', matchID)
    results[m] = 'ok'
  end
end
for i = 1, #gone, 1000 do
  local j = math.min(i + 999, #gone)
  redis.call('ZREM', searching, unpack(gone, i, j))
  redis.call('HDEL', data, unpack(gone, i, j))
end
return results
