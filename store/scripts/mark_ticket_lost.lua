-- Marks a ticket Redis lost as cancelled: a node that told a player its
-- ticket was searching finds the ticket's record gone (a failover lost an
-- acknowledged write, or Redis restarted without it), and leaves in its
-- place the status-only record a cancelled ticket keeps, so that the
-- players are told once (the first node to mark it tells them) and a
-- re-sent script, or another node watching the same ticket, finds it
-- finished. Anything left of the ticket in the queue goes too.
--
-- KEYS[1]  ticket key
-- KEYS[2]  searching sorted set
-- KEYS[3]  searching data hash
-- ARGV[1]  ticket id
-- ARGV[2]  lifetime of the cancelled ticket's status (seconds)
--
-- Returns 1 when it marked the ticket, 0 when the ticket has a record.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'cancelled')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
