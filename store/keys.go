package store

import (
	"fmt"
	"hash/fnv"
	"regexp"
)

// Every Redis key and pub/sub channel lobbyd uses is built here. Keys that
// one atomic operation touches share a hash tag, so the same scripts run on
// Redis Cluster:
//
//   - queue keys:  {q:<queue>}:...   (searching set, tickets, matches, stream, lease)
//   - player keys: {p:<player>}:...  (presence, ticket claim, undelivered match)
//
// Queue names are validated (see ValidName) so they cannot break a tag.
// Every name starts with the store's key prefix (Config.KeyPrefix), which
// goes in front of the hash tag ("eu1:{q:default}:searching") so it never
// changes which keys share a slot. No Lua script builds a key: scripts get
// every key they touch in KEYS.

// keyspace builds the store's key names under its prefix.
type keyspace struct{ prefix string }

// maxKeyPrefix bounds the prefix: it is repeated in every key.
const maxKeyPrefix = 64

var validKeyPrefix = regexp.MustCompile(`^[A-Za-z0-9_.:-]*$`)

// ValidateKeyPrefix returns an error saying what is wrong with prefix as a
// Config.KeyPrefix: at most 64 letters, digits, '_', '.', ':' or '-'. Braces
// in particular are refused, since they would make a hash tag of the prefix
// (putting every key of a cluster in one slot) or break the tags after it.
func ValidateKeyPrefix(prefix string) error {
	if len(prefix) > maxKeyPrefix {
		return fmt.Errorf("key prefix: %d bytes, at most %d", len(prefix), maxKeyPrefix)
	}
	if !validKeyPrefix.MatchString(prefix) {
		return fmt.Errorf("key prefix %q: only letters, digits, '_', '.', ':' and '-' are allowed (no braces or spaces)", prefix)
	}
	return nil
}

func queueTag(queue string) string { return "{q:" + queue + "}" }

func playerTag(playerID string) string { return "{p:" + playerID + "}" }

// searchingKey is the sorted set of a queue's searching tickets, scored by
// creation time in milliseconds so the oldest come first.
func (k keyspace) searchingKey(queue string) string { return k.prefix + queueTag(queue) + ":searching" }

// searchingDataKey is a hash holding, for each searching ticket, what the
// queue's leader needs to form matches (see searchingEntry). A ticket has an
// entry exactly while it is in the searching set (every script that moves
// one moves the other), so the leader reads thousands of tickets with one
// HMGET instead of one command per ticket hash.
func (k keyspace) searchingDataKey(queue string) string {
	return k.prefix + queueTag(queue) + ":searching:data"
}

// ticketKey is the hash holding one ticket.
func (k keyspace) ticketKey(queue, ticketID string) string {
	return k.prefix + queueTag(queue) + ":t:" + ticketID
}

// incomingKey lists the ids of tickets that became searching (new or
// requeued), oldest first, for the queue's leader to pick up without
// rescanning the queue. Capped at incomingMax; the leader's periodic
// reconciliation finds anything trimmed.
func (k keyspace) incomingKey(queue string) string { return k.prefix + queueTag(queue) + ":incoming" }

const incomingMax = 100000

// matchKey is the hash holding one match and its allocation state.
func (k keyspace) matchKey(queue, matchID string) string {
	return k.prefix + queueTag(queue) + ":m:" + matchID
}

// allocStreamKey is the queue's stream of allocation jobs.
func (k keyspace) allocStreamKey(queue string) string { return k.prefix + queueTag(queue) + ":alloc" }

// queueStatsKey holds figures about a queue, such as its estimated wait.
func (k keyspace) queueStatsKey(queue string) string { return k.prefix + queueTag(queue) + ":stats" }

// queueSummaryKey holds the queue leader's summary of its last formation
// pass (see SetQueueSummary), for any node to answer queue.why from.
func (k keyspace) queueSummaryKey(queue string) string {
	return k.prefix + queueTag(queue) + ":summary"
}

// queueFiguresKey holds the queue leader's figures for the operator
// console (see SetQueueFigures).
func (k keyspace) queueFiguresKey(queue string) string {
	return k.prefix + queueTag(queue) + ":figures"
}

// nodesKey is the hash of every node's last heartbeat (see Heartbeat): one
// small key, written by each node every few seconds.
func (k keyspace) nodesKey() string { return k.prefix + "lobbyd:nodes" }

// queueConfigKey holds the queue configuration in force for every node
// (see StoreQueueConfig): one small hash per deployment.
func (k keyspace) queueConfigKey() string { return k.prefix + "lobbyd:queueconfig" }

// leaseKey names the node that runs the queue's formation loop.
func (k keyspace) leaseKey(queue string) string { return k.prefix + queueTag(queue) + ":lease" }

// presenceKey maps a player to the node and connection holding their socket.
func (k keyspace) presenceKey(playerID string) string {
	return k.prefix + playerTag(playerID) + ":node"
}

// playerTicketKey is the player's claim on their current ticket
// ("<queue>:<ticketId>"); it makes "one ticket per player" atomic.
func (k keyspace) playerTicketKey(playerID string) string {
	return k.prefix + playerTag(playerID) + ":ticket"
}

// pendingMatchKey holds a match.ready payload not yet delivered to the player.
func (k keyspace) pendingMatchKey(playerID string) string {
	return k.prefix + playerTag(playerID) + ":match"
}

// codeGuessBudget counts the player's join codes that matched no lobby, so
// codes cannot be found by guessing (see SpendCodeGuess).
func codeGuessBudget(playerID string) budget {
	return budget{key: playerTag(playerID) + ":codeguesses"}
}

// budgetKey is the key of b under the prefix (a budget names its key without
// it, since it is built before a store is at hand).
func (k keyspace) budgetKey(b budget) string { return k.prefix + b.key }

// lobbyKey holds one lobby, as JSON (changed by the rules of internal/domain/rules.go
// through scripts/lobby_cas.lua).
func (k keyspace) lobbyKey(lobbyID string) string { return k.prefix + "{l:" + lobbyID + "}" }

// lobbyCodeKey maps a live lobby's join code to its id.
func (k keyspace) lobbyCodeKey(code string) string { return k.prefix + "lobbycode:" + code }

// playerLobbyKey is the player's claim on their lobby: one lobby per player.
func (k keyspace) playerLobbyKey(playerID string) string {
	return k.prefix + playerTag(playerID) + ":lobby"
}

// publicLobbiesKey indexes a queue's public lobbies by creation time, for
// lobby.list. It may lag behind the lobbies; readers check each one.
func (k keyspace) publicLobbiesKey(queue string) string { return k.prefix + "lobbies:public:" + queue }

// graceBuckets is how many sorted sets hold the grace deadlines. Every node
// re-adds each of its connected players every PresenceTTL/3, so one set
// would be one hot key in one slot of a cluster; spread over 16 hash tags,
// the writes land on 16 slots (and so on every primary of a cluster of up to
// 16), while a sweep stays one pipeline of 16 small scripts a second per
// node. The number is fixed: changing it moves players to other buckets,
// which would need the same drain as the legacy key below.
const graceBuckets = 16

// graceBucketKey holds, per player whose id hashes to bucket, the time
// after which a player who is not connected loses their lobby place and
// solo ticket: "lobbyd:graces:{g:07}" (the tag is the bucket, so the key
// has its own slot).
func (k keyspace) graceBucketKey(bucket int) string {
	return fmt.Sprintf("%slobbyd:graces:{g:%02d}", k.prefix, bucket)
}

// graceKeyOf is the grace bucket of a player.
func (k keyspace) graceKeyOf(playerID string) string {
	h := fnv.New32a()
	h.Write([]byte(playerID))
	return k.graceBucketKey(int(h.Sum32() % graceBuckets))
}

// legacyGracesKey is the one grace set of lobbyd before the buckets. Nothing
// writes it any more but a node of the earlier version during a rolling
// upgrade; it is still swept, so those entries run out as before.
func (k keyspace) legacyGracesKey() string { return k.prefix + "lobbyd:graces" }

// nodeChannel is the pub/sub channel a node listens on for deliveries.
func (k keyspace) nodeChannel(nodeID string) string { return k.prefix + "lobbyd:node:" + nodeID }

// allocGroup is the consumer group of allocation workers on every queue stream.
const allocGroup = "allocators"

// playerLimitsKey holds what a player's rate budgets still owe when their
// connection ended, for a reconnect on another node to resume them.
func (k keyspace) playerLimitsKey(playerID string) string {
	return k.prefix + playerTag(playerID) + ":limits"
}
