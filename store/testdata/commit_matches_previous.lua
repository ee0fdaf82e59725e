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
-- ARGV[5]  queue name
-- then, per match: match id, regions (JSON array), players (JSON array, as
--          the match record keeps them), ticket ids (JSON array), ticket
--          count, and the ticket ids
--
-- A ticket is searching exactly when it is in the searching set (every
-- script that changes a ticket's status keeps the two in step), so taking a
-- match's tickets out of the set with one ZREM is also the check: it
-- removes them all exactly when they were all searching. When it removes
-- fewer (rare: a ticket was cancelled or expired behind the leader's back,
-- or is taken by an earlier match of this call), the ones it did remove are
-- those whose status still says searching, and they go back with their
-- creation time as score, so the match changes nothing. A match that exists
-- is never written again, even if its tickets are searching: a re-sent
-- script may arrive after the match failed and requeued them. One EXISTS
-- over every match key of the call finds none in the usual case; only when
-- it finds some are they checked one by one. The matched tickets' searching
-- data goes in one HDEL per 1000 at the end.
--
-- Returns one status per match: "ok" (committed now), "exists" (committed by
-- an earlier run of this script; go-redis may re-send a command whose reply
-- was lost) or "stale:<ticketId>" (a ticket is no longer searching; nothing
-- was changed for that match).
local searching, stream, data = KEYS[1], KEYS[2], KEYS[3]
local now, ttl, maxlen = ARGV[1], ARGV[2], ARGV[3]
local nmatches, queue = tonumber(ARGV[4]), ARGV[5]

local mkeys = {}
do
  local k, a = 4, 6
  for m = 1, nmatches do
    mkeys[m] = KEYS[k]
    local nt = tonumber(ARGV[a + 4])
    k = k + 1 + nt
    a = a + 5 + nt
  end
end
local anyExists = redis.call('EXISTS', unpack(mkeys)) > 0

local results, gone = {}, {}
local k, a = 4, 6
for m = 1, nmatches do
  local mkey = KEYS[k]
  local matchID, regions, players, tickets, nt =
    ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  local t0 = a + 4 -- ARGV[t0 + i] is ticket i, KEYS[k + i] its key

  if anyExists and redis.call('EXISTS', mkey) == 1 then
    results[m] = 'exists'
  elseif redis.call('ZREM', searching, unpack(ARGV, t0 + 1, t0 + nt)) ~= nt then
    -- A ticket was not searching. Put back what this ZREM took (the
    -- tickets whose status still says searching), with their creation
    -- time; a ticket whose status says otherwise, or whose record expired,
    -- loses any searching data left behind. A ticket listed twice is put
    -- back once and reported.
    local stale = nil
    for i = 1, nt do
      local tkey, tid = KEYS[k + i], ARGV[t0 + i]
      local f = redis.call('HMGET', tkey, 'status', 'createdAt')
      if f[1] == 'searching' and not redis.call('ZSCORE', searching, tid) then
        redis.call('ZADD', searching, f[2], tid)
      else
        if f[1] ~= 'searching' then
          redis.call('HDEL', data, tid)
        end
        stale = stale or tid
      end
    end
    -- (None stale: every ticket said searching, one was missing from the
    -- set, against the invariant; it is back in the set now.)
    results[m] = 'stale:' .. (stale or ARGV[t0 + 1])
  else
    for i = 1, nt do
      if redis.call('HSET', KEYS[k + i], 'status', 'matched', 'matchId', matchID) == 2 then
        -- Both fields new: the ticket's record had expired (it can only if
        -- Redis lost it: tickets expire from the queue long before). Give
        -- the one just written the match's lifetime.
        redis.call('EXPIRE', KEYS[k + i], ttl)
      end
      gone[#gone + 1] = ARGV[t0 + i]
    end
    redis.call('HSET', mkey,
      'id', matchID, 'queue', queue, 'tickets', tickets,
      'players', players, 'regions', regions,
      'state', 'allocating', 'attempt', '0', 'createdAt', now)
    redis.call('EXPIRE', mkey, ttl)
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'match', matchID)
    results[m] = 'ok'
  end
  k = k + 1 + nt
  a = a + 5 + nt
end
for i = 1, #gone, 1000 do
  redis.call('HDEL', data, unpack(gone, i, math.min(i + 999, #gone)))
end
return results
