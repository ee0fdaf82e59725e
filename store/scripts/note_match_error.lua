-- Notes the error of a failed allocation attempt on its match, for the
-- operator console, unless the match's record is gone (so no record without
-- a lifetime is made).
--
-- KEYS[1]  match key
-- ARGV[1]  the error's name (a PlayFab error name, or a transport error)
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'lastError', ARGV[1])
end
return 1
