-- Applies one change to a lobby, atomically. The lobby is a JSON object at
-- KEYS[1]: {id, code, queue, visibility, ownerId, maxMembers, props, status,
-- ticketId, createdAt, members: [{playerId, name, pfEntity, ready, joinedAt}]}
-- with members in joining order, and a version that every change increments
-- (clients order lobby.state snapshots by it).
--
-- ARGV[1] is the operation, ARGV[2] the acting player, then its arguments:
--   join        member (JSON)                 -> ok | member | full | busy
--   leave                                     -> ok | deleted | notmember
--   update      patch (JSON: props?, visibility?, maxMembers?), new code?
--                                             -> ok | forbidden | toosmall
--               A public lobby turning private takes the new code (the old
--               one, known to whoever saw it listed, must stop working) and
--               the answer's third element is the old code.
--   kick        target player                 -> ok | forbidden | notmember | invalid
--   promote     target player                 -> ok | forbidden | notmember
--   ready       "1" or "0", skill?            -> ok | notmember | busy
--   set_ticket  ticket id, member ids (JSON)  -> ok | forbidden | notready | busy | changed
--   ticket_done ticket id, new status         -> ok | stale
-- Every answer is {outcome, lobby JSON after the change (before it, for
-- "deleted")}; a missing lobby answers {"missing"}. Running an operation
-- twice (a re-sent script) gives the same lobby (an update re-sent after
-- changing the code does not change it again, and answers no old code).
local raw = redis.call('GET', KEYS[1])
if not raw then
  return {'missing'}
end
local lobby = cjson.decode(raw)
local op, actor = ARGV[1], ARGV[2]
if type(lobby.members) ~= 'table' then lobby.members = {} end
if type(lobby.props) ~= 'table' or next(lobby.props) == nil then lobby.props = cjson.decode('{}') end

local function find(player)
  for i, m in ipairs(lobby.members) do
    if m.playerId == player then return i end
  end
  return nil
end

local function save(outcome)
  lobby.version = (tonumber(lobby.version) or 0) + 1
  local encoded = cjson.encode(lobby)
  redis.call('SET', KEYS[1], encoded, 'KEEPTTL')
  return {outcome, encoded}
end

local function answer(outcome)
  return {outcome, raw}
end

-- remove takes a member out; the earliest joiner left becomes owner. Returns
-- the deleted lobby's answer when nobody is left.
local function remove(i)
  table.remove(lobby.members, i)
  if #lobby.members == 0 then
    redis.call('DEL', KEYS[1])
    return {'deleted', raw}
  end
  if not find(lobby.ownerId) then
    lobby.ownerId = lobby.members[1].playerId
  end
  return nil
end

if op == 'join' then
  local member = cjson.decode(ARGV[3])
  if find(member.playerId) then return answer('member') end
  if lobby.status == 'queued' then return answer('busy') end
  if #lobby.members >= tonumber(lobby.maxMembers) then return answer('full') end
  lobby.members[#lobby.members + 1] = member
  return save('ok')

elseif op == 'leave' then
  local i = find(actor)
  if not i then return answer('notmember') end
  return remove(i) or save('ok')

elseif op == 'update' then
  if lobby.ownerId ~= actor then return answer('forbidden') end
  local patch = cjson.decode(ARGV[3])
  if patch.maxMembers ~= nil then
    if tonumber(patch.maxMembers) < #lobby.members then return answer('toosmall') end
    lobby.maxMembers = tonumber(patch.maxMembers)
  end
  local oldCode = nil
  if patch.visibility == 'private' and lobby.visibility ~= 'private' and ARGV[4] then
    oldCode = lobby.code
    lobby.code = ARGV[4]
  end
  if patch.visibility ~= nil then lobby.visibility = patch.visibility end
  if patch.props ~= nil then lobby.props = patch.props end
  local answered = save('ok')
  if oldCode then answered[3] = oldCode end
  return answered

elseif op == 'kick' or op == 'promote' then
  if lobby.ownerId ~= actor then return answer('forbidden') end
  local target = ARGV[3]
  local i = find(target)
  if not i then return answer('notmember') end
  if op == 'promote' then
    lobby.ownerId = target
    return save('ok')
  end
  if target == actor then return answer('invalid') end
  return remove(i) or save('ok')

elseif op == 'ready' then
  local i = find(actor)
  if not i then return answer('notmember') end
  if lobby.status == 'queued' then return answer('busy') end
  lobby.members[i].ready = (ARGV[3] == '1')
  if ARGV[4] then lobby.members[i].skill = tonumber(ARGV[4]) end
  return save('ok')

elseif op == 'set_ticket' then
  if lobby.ownerId ~= actor then return answer('forbidden') end
  if lobby.status == 'queued' then
    if lobby.ticketId == ARGV[3] then return answer('ok') end
    return answer('busy')
  end
  local expected = cjson.decode(ARGV[4])
  if #expected ~= #lobby.members then return answer('changed') end
  for i, m in ipairs(lobby.members) do
    if m.playerId ~= expected[i] then return answer('changed') end
    if not m.ready then return answer('notready') end
  end
  lobby.status = 'queued'
  lobby.ticketId = ARGV[3]
  return save('ok')

elseif op == 'ticket_done' then
  if lobby.ticketId ~= ARGV[3] then return answer('stale') end
  lobby.status = ARGV[4]
  if ARGV[4] == 'open' then lobby.ticketId = '' end
  if ARGV[4] == 'matched' then
    for _, m in ipairs(lobby.members) do m.ready = false end
  end
  return save('ok')
end
return redis.error_reply('lobby_mutate: unknown operation ' .. tostring(op))
