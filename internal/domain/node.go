package domain

import (
	"context"
	"encoding/json"
	"time"
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
	// TicketQueue (the shard's name) and TicketID name the ticket the
	// player's ticket claim names ("" for none).
	TicketQueue, TicketID string
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
	// Disconnect asks the node to close a player's connection (an
	// operator's action). A node of an earlier version ignores it.
	Disconnect *Disconnect `json:"disconnect,omitempty"`
	// Drain asks the node to drain (an operator's action).
	Drain *Drain `json:"drain,omitempty"`
	// Resubscribed is never sent: a Subscription sets it when it came back
	// after a lost connection, during which messages published to this
	// node were lost.
	Resubscribed bool `json:"-"`
}

// EventsOnly reports whether m carries events and nothing else: the
// message every delivery sends (see store's encoder, which writes it by
// hand). A field added to NodeMessage must be added here.
func (m NodeMessage) EventsOnly() bool {
	return len(m.Events) > 0 && m.Replace == nil && m.Disconnect == nil && m.Drain == nil && !m.Resubscribed
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

// Disconnect names a player whose connection an operator closes.
type Disconnect struct {
	PlayerID string `json:"playerId"`
}

// Drain asks a node to drain over Period (0: the node's own setting).
type Drain struct {
	PeriodMs int64 `json:"periodMs"`
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

// NodeInfo is what a node says about itself in its heartbeat, for the
// operator console.
type NodeInfo struct {
	ID          string    `json:"id"`
	Version     string    `json:"version"`
	StartedAt   time.Time `json:"startedAt"`
	Connections int       `json:"connections"`
	QueuesLed   []string  `json:"queuesLed"`
	Draining    bool      `json:"draining"`
	// Stopped is set by the last heartbeat of a node that shut down.
	Stopped bool `json:"stopped,omitempty"`
	// LastSeen is when the heartbeat was written.
	LastSeen time.Time `json:"lastSeen"`
	// PlayFab is the node's PlayFab client's state.
	PlayFab *PlayFabStats `json:"playfab,omitempty"`
}

// PlayFabStats is a node's PlayFab calls since it started, by API and
// outcome ("ok" or the PlayFab error name), its calls in flight and its
// entity token's age and time left (0 without one).
type PlayFabStats struct {
	Calls                 map[string]map[string]int64 `json:"calls"`
	InFlight              int                         `json:"inFlight"`
	TokenAgeSeconds       float64                     `json:"tokenAgeSeconds"`
	TokenExpiresInSeconds float64                     `json:"tokenExpiresInSeconds"`
}
