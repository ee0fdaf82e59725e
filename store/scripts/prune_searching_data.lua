-- Drops searching data entries whose ticket is no longer in the searching
-- set. Every current script moves both together; entries are left behind
-- only by a lobbyd older than the searching data hash (cancelling, say, a
-- ticket a newer node created) during a rolling upgrade.
--
-- KEYS[1]  searching sorted set
-- KEYS[2]  searching data hash
-- ARGV     ticket ids that have an entry
--
-- Returns the number of entries dropped.
local dropped = 0
for _, id in ipairs(ARGV) do
  if not redis.call('ZSCORE', KEYS[1], id) then
    dropped = dropped + redis.call('HDEL', KEYS[2], id)
  end
end
return dropped
