package domain

import (
	"slices"
	"time"
)

// MatchState is where a match's allocation stands.
type MatchState string

// Match allocation states.
const (
	MatchAllocating MatchState = "allocating"
	MatchReady      MatchState = "ready"
	MatchFailed     MatchState = "failed"
)

// Match is a set of tickets committed together, and its allocation.
type Match struct {
	ID        string     `json:"matchId"`
	Queue     string     `json:"queue"`
	TicketIDs []string   `json:"tickets"`
	Players   []Player   `json:"players"`
	Regions   []string   `json:"regions"`
	State     MatchState `json:"state"`
	Attempt   int        `json:"attempt"`
	CreatedAt time.Time  `json:"createdAt"`
	// Set once the match is ready.
	PartyID           string `json:"partyId,omitempty"`
	NetworkDescriptor string `json:"networkDescriptor,omitempty"`
	InvitationID      string `json:"invitationId,omitempty"`
	// FailReason is set once the match has failed, and Requeued lists the
	// tickets then put back in the queue (not those whose players left).
	FailReason string   `json:"failReason,omitempty"`
	Requeued   []string `json:"requeued,omitempty"`
	// Left lists the tickets cancelled while the match was allocating: their
	// players left and get no more events of this match.
	Left []string `json:"left,omitempty"`
	// Teams, for a queue with teams, lists each team's player ids; a
	// ticket's players are always on one team.
	Teams [][]string `json:"teams,omitempty"`
	// Attributes holds the match's value of each of its queue's attributes
	// (see MatchAttr).
	Attributes map[string]MatchAttr `json:"attributes,omitempty"`
	// Quality says how good the match is and which rules were relaxed for
	// it. Matches formed by an earlier version have none.
	Quality *Quality `json:"quality,omitempty"`
	// ReadyAt is when the party was stored (zero before, and for matches
	// made ready by an earlier version); LastError is the PlayFab error
	// name of the last failed allocation attempt, if any. Both are for the
	// operator console.
	ReadyAt   time.Time `json:"readyAt,omitzero"`
	LastError string    `json:"lastError,omitempty"`
}

// PlayerIDs lists the ids of the match's players.
func (m Match) PlayerIDs() []string { return playerIDs(m.Players) }

// Staying returns the match without the players who left it (see Left).
func (m Match) Staying() Match {
	if len(m.Left) == 0 {
		return m
	}
	out := m
	out.Players = nil
	for _, p := range m.Players {
		if !slices.Contains(m.Left, p.TicketID) {
			out.Players = append(out.Players, p)
		}
	}
	return out
}

// CommitOutcome is what became of one match a queue's leader committed.
type CommitOutcome string

// Commit outcomes.
const (
	// CommitOK means the match was recorded and its allocation enqueued.
	CommitOK CommitOutcome = "ok"
	// CommitExists means the match was already recorded (a re-sent commit).
	CommitExists CommitOutcome = "exists"
	// CommitStale means a ticket was no longer searching; nothing changed.
	CommitStale CommitOutcome = "stale"
)

// CommitResult is the outcome of committing one match.
type CommitResult struct {
	MatchID string
	Outcome CommitOutcome
	// StaleTicket is the ticket that made a CommitStale match fail.
	StaleTicket string
}

// AllocationJob is an entry of a queue's allocation stream: a match to
// allocate a party for.
type AllocationJob struct {
	// StreamID identifies the entry for its acknowledgement.
	StreamID string
	Queue    string
	MatchID  string
	// Received is when this node read or claimed the job, by its clock:
	// from about then the stream counts the job idle, and another node may
	// claim it once it has been idle for the claim time.
	Received time.Time
}
