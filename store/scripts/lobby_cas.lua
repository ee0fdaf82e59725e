-- Writes a lobby changed in Go (the rules are in internal/domain/rules.go), if
-- nobody changed it since it was read: a compare-and-set on the whole
-- value.
--
-- KEYS[1] the lobby; ARGV[1] the JSON read; ARGV[2] the JSON to write (its
-- time to live is kept), or "" to delete the lobby (its last member left).
-- Answers "ok", "conflict" (it changed since: read it again and re-apply
-- the rule) or "missing".
--
-- Safe to run twice: a re-sent write finds its own value (or, for a
-- delete, no lobby) and answers "ok" again.
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  if ARGV[2] == '' then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  end
  return 'ok'
end
if not cur then
  if ARGV[2] == '' then return 'ok' end
  return 'missing'
end
if ARGV[2] ~= '' and cur == ARGV[2] then return 'ok' end
return 'conflict'
