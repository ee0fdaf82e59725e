-- Cancels a ticket: a searching one leaves the queue; a matched one whose
-- match is still allocating is listed in the match's "left" field, so its
-- players get no more events of that match and a failed allocation does
-- not requeue it. Either way the ticket is finished: its record shrinks to
-- its status alone, which expires after ARGV[3] seconds. Nothing reads a
-- finished ticket's data (its players' claims are released with it, and a
-- match's allocation reads the match record), and the status is kept only
-- so that a re-sent script knows it already ran. A ticket created by an
-- older lobbyd (with a 2-hour lifetime) is shrunk the same way.
--
-- KEYS[1]  ticket key
-- KEYS[2]  searching sorted set
-- KEYS[3]  the key of the ticket's match, if it has one (else any key of the
--          queue's slot, unused)
-- KEYS[4]  searching data hash
-- ARGV[1]  ticket id
-- ARGV[2]  new status ("cancelled" or "expired")
-- ARGV[3]  lifetime of the finished ticket's status (seconds)
--
-- Returns "ok" (also when the ticket already has the new status: a re-sent
-- script), "missing" (its record expired: it leaves the queue too), or the
-- ticket's current status when it can no longer be cancelled.
local function finish()
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'status', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 'ok'
end

local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
  return 'missing'
end
if status == ARGV[2] then
  return 'ok' -- already done: a re-sent script
end
if status == 'matched' then
  if redis.call('HGET', KEYS[3], 'id') == redis.call('HGET', KEYS[1], 'matchId')
      and redis.call('HGET', KEYS[3], 'state') == 'allocating' then
    local left = cjson.decode(redis.call('HGET', KEYS[3], 'left') or '[]')
    left[#left + 1] = ARGV[1]
    redis.call('HSET', KEYS[3], 'left', cjson.encode(left))
    return finish()
  end
  return status
end
if status ~= 'searching' then
  return status
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return finish()
