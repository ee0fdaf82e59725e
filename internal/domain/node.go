package domain

import (
	"context"
	"encoding/json"
)

// Presence says which node and connection hold a player's socket. It expires
// unless the node refreshes it, so a dead node's players are not counted as
// connected for long.
type Presence struct {
	NodeID string
	ConnID string
}

// Attachment is what a connecting player still holds.
type Attachment struct {
	// TicketClaim is the player's ticket claim ("" for none), which names
	// the ticket it holds.
	TicketClaim string
	// PendingMatchID and PendingMatch are the undelivered match.ready, if
	// any (PendingMatchID "" for none).
	PendingMatchID string
	PendingMatch   json.RawMessage
	// LobbyID is the lobby the player claims a place in ("" for none).
	LobbyID string
}

// MatchAck says a player's match.ready was written to their socket.
type MatchAck struct{ PlayerID, MatchID string }

// ExpiredGrace is a player whose grace period ended (they stayed away),
// leased to one caller until it reports the grace handled.
type ExpiredGrace struct {
	PlayerID string
	// Set and Lease say where the store leased it from; the store reads
	// them back when the grace is handled.
	Set   string
	Lease int64
}

// NodeMessage is what travels on a node's channel.
type NodeMessage struct {
	// Events are protocol frames for players connected to the receiving node.
	Events []Addressed `json:"events,omitempty"`
	// Replace asks the node to close a connection replaced by a newer one.
	Replace *Replace `json:"replace,omitempty"`
	// Resubscribed is never sent: a Subscription sets it when it came back
	// after a lost connection, during which messages published to this
	// node were lost.
	Resubscribed bool `json:"-"`
}

// Addressed is one protocol frame and the players it is for.
type Addressed struct {
	To    []string        `json:"to"`
	Event json.RawMessage `json:"event"`
	// MatchID is set when Event is a match.ready, so the receiver pushes it
	// once per connection and clears the player's undelivered copy.
	MatchID string `json:"matchId,omitempty"`
}

// Replace names a connection superseded by a newer one elsewhere.
type Replace struct {
	PlayerID string `json:"playerId"`
	ConnID   string `json:"connId"`
}

// Subscription delivers the messages sent to one node.
type Subscription interface {
	// Next blocks until the next message arrives, the subscription is
	// closed (ok false), or ctx is done. A message with Resubscribed set
	// reports that the subscription came back after a lost connection.
	// A malformed message is returned as an error.
	Next(ctx context.Context) (msg NodeMessage, ok bool, err error)
	// Close ends the subscription.
	Close() error
}
