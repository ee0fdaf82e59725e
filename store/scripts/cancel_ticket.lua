-- Cancels a searching ticket.
--
-- KEYS[1]  ticket key
-- KEYS[2]  searching sorted set
-- ARGV[1]  ticket id
-- ARGV[2]  new status ("cancelled" or "expired")
--
-- Returns "ok", "missing", or the ticket's current status when it is no
-- longer searching.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return 'missing'
end
if status ~= 'searching' then
  return status
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'status', ARGV[2])
return 'ok'
