package store

// Every Redis key lobbyd uses is built here. Keys that one atomic operation
// touches share a hash tag, so the same scripts run on Redis Cluster:
//
//   - queue keys:  {q:<queue>}:...   (searching set, tickets, matches, stream, lease)
//   - player keys: {p:<player>}:...  (presence, ticket claim, undelivered match)
//
// Queue names are validated (see ValidName) so they cannot break a tag.

func queueTag(queue string) string { return "{q:" + queue + "}" }

func playerTag(playerID string) string { return "{p:" + playerID + "}" }

// searchingKey is the sorted set of a queue's searching tickets, scored by
// creation time in milliseconds so the oldest come first.
func searchingKey(queue string) string { return queueTag(queue) + ":searching" }

// searchingDataKey is a hash holding, for each searching ticket, what the
// queue's leader needs to form matches (see searchingEntry). A ticket has an
// entry exactly while it is in the searching set (every script that moves
// one moves the other), so the leader reads thousands of tickets with one
// HMGET instead of one command per ticket hash.
func searchingDataKey(queue string) string { return queueTag(queue) + ":searching:data" }

// ticketKey is the hash holding one ticket.
func ticketKey(queue, ticketID string) string { return queueTag(queue) + ":t:" + ticketID }

// incomingKey lists the ids of tickets that became searching (new or
// requeued), oldest first, for the queue's leader to pick up without
// rescanning the queue. Capped at incomingMax; the leader's periodic
// reconciliation finds anything trimmed.
func incomingKey(queue string) string { return queueTag(queue) + ":incoming" }

const incomingMax = 100000

// matchKey is the hash holding one match and its allocation state.
func matchKey(queue, matchID string) string { return queueTag(queue) + ":m:" + matchID }

// allocStreamKey is the queue's stream of allocation jobs.
func allocStreamKey(queue string) string { return queueTag(queue) + ":alloc" }

// queueStatsKey holds figures about a queue, such as its estimated wait.
func queueStatsKey(queue string) string { return queueTag(queue) + ":stats" }

// leaseKey names the node that runs the queue's formation loop.
func leaseKey(queue string) string { return queueTag(queue) + ":lease" }

// presenceKey maps a player to the node and connection holding their socket.
func presenceKey(playerID string) string { return playerTag(playerID) + ":node" }

// playerTicketKey is the player's claim on their current ticket
// ("<queue>:<ticketId>"); it makes "one ticket per player" atomic.
func playerTicketKey(playerID string) string { return playerTag(playerID) + ":ticket" }

// pendingMatchKey holds a match.ready payload not yet delivered to the player.
func pendingMatchKey(playerID string) string { return playerTag(playerID) + ":match" }

// CodeGuessBudget counts the player's join codes that matched no lobby, so
// codes cannot be found by guessing (see Spend).
func CodeGuessBudget(playerID string) Budget {
	return Budget{key: playerTag(playerID) + ":codeguesses"}
}

// lobbyKey holds one lobby, as JSON (see scripts/lobby_mutate.lua).
func lobbyKey(lobbyID string) string { return "{l:" + lobbyID + "}" }

// lobbyCodeKey maps a live lobby's join code to its id.
func lobbyCodeKey(code string) string { return "lobbycode:" + code }

// playerLobbyKey is the player's claim on their lobby: one lobby per player.
func playerLobbyKey(playerID string) string { return playerTag(playerID) + ":lobby" }

// publicLobbiesKey indexes a queue's public lobbies by creation time, for
// lobby.list. It may lag behind the lobbies; readers check each one.
func publicLobbiesKey(queue string) string { return "lobbies:public:" + queue }

// gracesKey holds, per player, the time after which a player who is not
// connected loses their lobby place and solo ticket.
const gracesKey = "lobbyd:graces"

// nodeChannel is the pub/sub channel a node listens on for deliveries.
func nodeChannel(nodeID string) string { return "lobbyd:node:" + nodeID }

// allocGroup is the consumer group of allocation workers on every queue stream.
const allocGroup = "allocators"

// playerLimitsKey holds what a player's rate budgets still owe when their
// connection ended, for a reconnect on another node to resume them.
func playerLimitsKey(playerID string) string { return playerTag(playerID) + ":limits" }
