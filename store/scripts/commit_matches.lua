-- Commits formed matches: each one all or nothing.
--
-- KEYS[1]  searching sorted set of the queue
-- KEYS[2]  allocation stream of the queue
-- KEYS[3]  searching data hash of the queue
-- then, per match: the match key, followed by its ticket keys
-- ARGV[1]  match key TTL (seconds)
-- ARGV[2]  stream MAXLEN (approximate)
-- ARGV[3]  number of matches
-- then, per match: match id, its record (JSON: queue, tickets, players,
--          regions, createdAt; see matchRecord in matches.go), ticket
--          count, and the ticket ids
--
-- A ticket is searching exactly when it is in the searching set (every
-- script that changes a ticket's status keeps the two in step), so taking a
-- match's tickets out of the set with one ZREM is also the check: it
-- removes them all exactly when they were all searching. When it removes
-- fewer (rare: a ticket was cancelled or expired behind the leader's back,
-- or is taken by an earlier match of this call), the ones it did remove are
-- those whose status still says searching, and they go back with their
-- creation time as score. A match that exists is never written again, even
-- if its tickets are searching: a re-sent script may arrive after the match
-- failed and requeued them. One EXISTS over every match key of the call
-- finds none in the usual case; only when it finds some are they checked
-- one by one. The matched tickets' searching data goes in one HDEL per
-- 1000 at the end.
--
-- Returns one status per match: "ok" (committed now), "exists" (committed by
-- an earlier run of this script; go-redis may re-send a command whose reply
-- was lost) or "stale:<ticketId>" (a ticket is no longer searching; nothing
-- was changed for that match).
local searching, stream, data = KEYS[1], KEYS[2], KEYS[3]
local ttl, maxlen, nmatches = ARGV[1], ARGV[2], tonumber(ARGV[3])

local mkeys = {}
do
  local k, a = 4, 4
  for m = 1, nmatches do
    mkeys[m] = KEYS[k]
    local nt = tonumber(ARGV[a + 2])
    k = k + 1 + nt
    a = a + 3 + nt
  end
end
local anyExists = redis.call('EXISTS', unpack(mkeys)) > 0

local results, gone = {}, {}
local k, a = 4, 4
for m = 1, nmatches do
  local mkey = KEYS[k]
  local matchID, rec, nt = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local t0 = a + 2 -- ARGV[t0 + i] is ticket i, KEYS[k + i] its key

  if anyExists and redis.call('EXISTS', mkey) == 1 then
    results[m] = 'exists'
  elseif redis.call('ZREM', searching, unpack(ARGV, t0 + 1, t0 + nt)) ~= nt then
    -- Put back what this ZREM took: the tickets still marked searching.
    local stale = nil
    for i = 1, nt do
      local tkey, tid = KEYS[k + i], ARGV[t0 + i]
      local f = redis.call('HMGET', tkey, 'status', 'createdAt')
      if f[1] == 'searching' and not redis.call('ZSCORE', searching, tid) then
        redis.call('ZADD', searching, f[2], tid)
      elseif not stale then
        stale = tid
      end
    end
    results[m] = 'stale:' .. (stale or ARGV[t0 + 1]) -- none: a ticket listed twice
  else
    for i = 1, nt do
      redis.call('HSET', KEYS[k + i], 'status', 'matched', 'matchId', matchID)
      gone[#gone + 1] = ARGV[t0 + i]
    end
    redis.call('HSET', mkey, 'id', matchID, 'rec', rec, 'state', 'allocating', 'attempt', '0')
    redis.call('EXPIRE', mkey, ttl)
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'match', matchID)
    results[m] = 'ok'
  end
  k = k + 1 + nt
  a = a + 3 + nt
end
for i = 1, #gone, 1000 do
  redis.call('HDEL', data, unpack(gone, i, math.min(i + 999, #gone)))
end
return results
