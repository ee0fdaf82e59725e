package main

import (
	"fmt"
	"sort"
	"sync"
)

// frame is a server frame, decoded with the fields the generator looks at;
// the protocol lets servers add fields, so the rest is ignored.
type frame struct {
	Type  string  `json:"type"`
	ID    *string `json:"id"`
	OK    bool    `json:"ok"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Data *struct {
		Lobby *lobbyObject `json:"lobby"`
	} `json:"data"`

	PlayerID string        `json:"playerId"`
	Lobby    *lobbyObject  `json:"lobby"`
	Ticket   *ticketObject `json:"ticket"`
	State    *welcomeState `json:"state"`

	MatchID           string `json:"matchId"`
	PartyID           string `json:"partyId"`
	InvitationID      string `json:"invitationId"`
	NetworkDescriptor string `json:"networkDescriptor"`
	Players           []struct {
		PlayerID string `json:"playerId"`
	} `json:"players"`
	Reason   string `json:"reason"`
	Requeued bool   `json:"requeued"`
}

// welcomeState is what welcome says the player still has from before.
type welcomeState struct {
	Match  *frame        `json:"match"`
	Ticket *ticketObject `json:"ticket"`
	Lobby  *lobbyObject  `json:"lobby"`
}

type ticketObject struct {
	Status  string `json:"status"`
	MatchID string `json:"matchId"`
}

type lobbyObject struct {
	LobbyID string `json:"lobbyId"`
	Code    string `json:"code"`
	Status  string `json:"status"`
	Version int64  `json:"version"`
	Members []struct {
		PlayerID string `json:"playerId"`
		Ready    bool   `json:"ready"`
	} `json:"members"`
}

// errorCode is a failed reply's code ("" for success).
func (f *frame) errorCode() string {
	if f.OK {
		return ""
	}
	if f.Error == nil {
		return "no_error_code"
	}
	return f.Error.Code
}

// Violation kinds: each is a breach of docs/protocol.md by the server.
const (
	violationDuplicate   = "duplicate match.ready"
	violationDisagree    = "match.ready disagreement"
	violationMatchFields = "match.ready incomplete"
	violationReplyOrder  = "reply out of order or unsolicited"
	violationReplyMiss   = "reply missing"
	violationNotInMatch  = "match.ready without the player"
)

// maxViolationDetails bounds how many violation messages are kept; all are
// counted.
const maxViolationDetails = 50

// checker collects what no single player can judge alone (whether the
// players of one match agree) and the run's errors and violations.
type checker struct {
	mu         sync.Mutex
	matches    map[string]matchView // matchId -> what its first receiver saw
	violations map[string]int
	details    []string
	errors     map[string]int
}

// matchView is what the first player to get a match's match.ready was
// told; a worker of -procs sends its views to the parent, which checks
// them against the other workers'.
type matchView struct {
	PartyID           string `json:"partyId"`
	InvitationID      string `json:"invitationId"`
	NetworkDescriptor string `json:"networkDescriptor"`
	FirstPlayer       string `json:"firstPlayer"`
}

func newChecker() *checker {
	return &checker{matches: map[string]matchView{}, violations: map[string]int{}, errors: map[string]int{}}
}

// violation records a protocol breach.
func (c *checker) violation(kind, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.violations[kind]++
	if len(c.details) < maxViolationDetails {
		c.details = append(c.details, kind+": "+fmt.Sprintf(format, args...))
	}
}

// error counts something that went wrong without breaking the protocol
// (an error reply, an unexpected close, a timeout), by kind.
func (c *checker) error(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errors[kind]++
}

// matchReady checks one delivery of match.ready to player against the other
// deliveries of the same match.
func (c *checker) matchReady(player string, f *frame) {
	if f.MatchID == "" || f.PartyID == "" || f.InvitationID == "" || f.NetworkDescriptor == "" {
		c.violation(violationMatchFields, "player %s: matchId %q partyId %q invitationId %q networkDescriptor set %v",
			player, f.MatchID, f.PartyID, f.InvitationID, f.NetworkDescriptor != "")
	}
	listed := false
	for _, p := range f.Players {
		listed = listed || p.PlayerID == player
	}
	if !listed {
		c.violation(violationNotInMatch, "player %s got match %s whose players do not include them", player, f.MatchID)
	}
	c.seeMatch(f.MatchID, matchView{PartyID: f.PartyID, InvitationID: f.InvitationID, NetworkDescriptor: f.NetworkDescriptor, FirstPlayer: player})
}

// seeMatch records what one player was told of a match, and checks it
// against the first player's.
func (c *checker) seeMatch(matchID string, got matchView) {
	c.mu.Lock()
	first, seen := c.matches[matchID]
	if !seen {
		c.matches[matchID] = got
	}
	c.mu.Unlock()
	if seen && (first.PartyID != got.PartyID || first.InvitationID != got.InvitationID || first.NetworkDescriptor != got.NetworkDescriptor) {
		c.violation(violationDisagree, "match %s: player %s got partyId %q invitationId %q, player %s got partyId %q invitationId %q (or the network descriptors differ)",
			matchID, first.FirstPlayer, first.PartyID, first.InvitationID, got.FirstPlayer, got.PartyID, got.InvitationID)
	}
}

// views returns a copy of what the first receiver of each match was told.
func (c *checker) views() map[string]matchView {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]matchView, len(c.matches))
	for k, v := range c.matches {
		out[k] = v
	}
	return out
}

// add counts another process's errors and violations (a worker's of
// -procs) with this checker's.
func (c *checker) add(errors, violations map[string]int, details []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range errors {
		c.errors[k] += v
	}
	for k, v := range violations {
		c.violations[k] += v
	}
	for _, d := range details {
		if len(c.details) < maxViolationDetails {
			c.details = append(c.details, d)
		}
	}
}

// snapshot returns the counts and details gathered so far.
func (c *checker) snapshot() (matches int, violations, errors map[string]int, details []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	violations, errors = map[string]int{}, map[string]int{}
	for k, v := range c.violations {
		violations[k] = v
	}
	for k, v := range c.errors {
		errors[k] = v
	}
	details = append([]string(nil), c.details...)
	sort.Strings(details)
	return len(c.matches), violations, errors, details
}
