package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

// How a match.ready reached a player.
const (
	viaLive    = "live"
	viaWelcome = "welcome"
)

// Why a player was not idle when the run ended (playerRecord.End).
const (
	// endSearching: it held a searching ticket nobody was left to match.
	endSearching = "searching at the end"
	// endAllocating: its ticket was in a match whose party never came.
	endAllocating = "match found, never ready"
	// endTicketEnded: its last ticket ended without a match (cancelled,
	// expired or vanished) just before the play phase ended.
	endTicketEnded = "last ticket ended without a match"
)

// playerRecord is everything one player saw, in order. The checker reads
// only records, so it can be tested on fabricated ones.
type playerRecord struct {
	ID          string
	Rounds      []roundRecord
	Deliveries  []delivery
	Disconnects []disconnect
	// Ended lists tickets that ended without a match and without the
	// player asking (it never leaves a queue).
	Ended       []endedTicket
	Connections int
	End         string
	Errors      map[string]int
	TimedErrors []timedError // the first maxTimedErrors, for the fault windows
}

// roundRecord is one round: queue.join until match.ready.
type roundRecord struct {
	N        int
	TicketID string
	JoinedAt time.Time
	FoundIDs []string // matches formed for the ticket (several after failures)
	Failed   int      // match.failed with requeued
	MatchID  string   // the match.ready that ended the round
	ReadyAt  time.Time
}

// delivery is one match.ready, live or in welcome.state.match.
type delivery struct {
	MatchID, PartyID, InvitationID, Descriptor string
	Players                                    []string
	Via                                        string
	Conn                                       int // the player's connection number
	// Round is the round the match belongs to for this player: the round
	// it ended, the earlier round whose match it repeats, or 0 when it is
	// no round's match.
	Round int
	At    time.Time
}

// disconnect is one socket that ended without the player closing it.
type disconnect struct {
	At            time.Time
	Node          int // -1 when the player dropped it itself
	Code          int // close code; 1006 when it broke without one
	Reason        string
	ReconnectedAt time.Time
	Attempts      int // failed attempts before the reconnect
}

// endedTicket is a ticket that ended without a match.
type endedTicket struct {
	TicketID string
	At       time.Time
	Why      string // cancelled, expired, vanished, match.failed without requeue
	// Disconnected is, for a vanished ticket, how long the player had
	// been away: beyond the grace period the server may cancel it.
	Disconnected time.Duration
}

type timedError struct {
	At   time.Time
	Kind string
}

const maxTimedErrors = 500

func (r *playerRecord) noteError(at time.Time, kind string) {
	r.Errors[kind]++
	if len(r.TimedErrors) < maxTimedErrors {
		r.TimedErrors = append(r.TimedErrors, timedError{At: at, Kind: kind})
	}
}

func (r *playerRecord) currentRound() *roundRecord {
	if len(r.Rounds) == 0 {
		return nil
	}
	return &r.Rounds[len(r.Rounds)-1]
}

// roundOf is the round whose match is matchID, or 0.
func (r *playerRecord) roundOf(matchID string) int {
	for _, rd := range r.Rounds {
		if rd.MatchID == matchID && matchID != "" {
			return rd.N
		}
	}
	return 0
}

// evidence is everything the checker judges.
type evidence struct {
	MatchSize int
	Grace     time.Duration
	Players   []*playerRecord
	Fake      fakeplayfab.Stats
	// FakeParties is what the fake recorded for each delivered match.
	FakeParties map[string]fakeParty
	// Keys is the Redis keyspace after every player left and the grace
	// period passed.
	Keys []keyInfo
	// Kills are the times nodes were killed.
	Kills []time.Time
}

// Invariants, as the report names them.
const (
	invTwoMatches  = "player in two matches"
	invMatchSize   = "match not of the queue's size"
	invDisagree    = "members disagree on the party"
	invSecondParty = "second party for one match"
	invNoParty     = "match.ready without a party"
	invLostPlayer  = "lost player"
	invLostTicket  = "lost ticket"
	invStale       = "stale redelivery"
	invDuplicate   = "duplicate match.ready on one connection"
	invLeakedKey   = "leaked key"
)

// Counted outcomes that break nothing.
const (
	noteRetryAfterDrop  = "matches with a second party after a dropped reply (allowed)"
	noteRetryAfterKill  = "matches with a second party after a node was killed while they were allocating (allowed)"
	noteRepeatOnNewConn = "match.ready repeated on a later connection (allowed: once per connection)"
	noteRepeatAfterMove = "match.ready of a finished round repeated after the next queue.join"
	noteRemainder       = "players left searching at the end (fewer than a match)"
	noteGraceCancelled  = "tickets ended after a disconnect longer than the grace period"
	noteTicketEnded     = "players whose last ticket ended without a match as the play phase ended"
	noteOrphan          = "parties created for matches never delivered (failed allocations)"
	noteMatchFailed     = "match.failed (requeued) seen by players"
)

// finding is one broken invariant.
type finding struct {
	Invariant, Detail string
}

// verdict is the checker's answer.
type verdict struct {
	Violations []finding
	Notes      map[string]int
	Matches    map[string]*matchView
}

// matchView is one match as its members saw it.
type matchView struct {
	ID                                string
	Players                           []string // from the first delivery
	PartyID, InvitationID, Descriptor string
	Receivers                         map[string]bool
	// LastJoin is the latest queue.join of its members (match.found came
	// after it); FirstReady the earliest match.ready.
	LastJoin, FirstReady time.Time
	firstReceiver        string
	invitationKeys       []string
	maxUsersRequested    int
	// What the fake counted for its PartyId.
	fakeSuccesses, fakeDropped, fakeErrors, fakeThrottled int
}

// check judges the evidence. It is pure: the same records give the same
// verdict.
func check(ev evidence) verdict {
	v := verdict{Notes: map[string]int{}, Matches: map[string]*matchView{}}
	fail := func(inv, format string, args ...any) {
		v.Violations = append(v.Violations, finding{inv, fmt.Sprintf(format, args...)})
	}
	v.checkDeliveries(ev, fail)
	v.checkPlayers(ev, fail)
	v.checkParties(ev, fail)
	checkKeys(ev.Keys, fail)
	sort.SliceStable(v.Violations, func(i, j int) bool { return v.Violations[i].Invariant < v.Violations[j].Invariant })
	return v
}

type failFunc func(inv, format string, args ...any)

// checkDeliveries builds each match from its deliveries and checks that its
// members agree, that it has the queue's size, and that every member got it.
func (v *verdict) checkDeliveries(ev evidence, fail failFunc) {
	for _, p := range ev.Players {
		for _, rd := range p.Rounds {
			for _, id := range rd.FoundIDs {
				v.match(id) // formed; delivered or not
			}
		}
		for _, d := range p.Deliveries {
			m := v.match(d.MatchID)
			if m.Receivers == nil {
				m.Receivers = map[string]bool{}
			}
			if m.firstReceiver == "" {
				m.Players, m.PartyID, m.InvitationID, m.Descriptor = d.Players, d.PartyID, d.InvitationID, d.Descriptor
				m.firstReceiver = p.ID
			} else if m.PartyID != d.PartyID || m.InvitationID != d.InvitationID || m.Descriptor != d.Descriptor || !sameSet(m.Players, d.Players) {
				fail(invDisagree, "match %s: %s got party %s invitation %s, %s got party %s invitation %s (or the descriptors or players differ)",
					d.MatchID, m.firstReceiver, m.PartyID, m.InvitationID, p.ID, d.PartyID, d.InvitationID)
			}
			m.Receivers[p.ID] = true
			if m.FirstReady.IsZero() || d.At.Before(m.FirstReady) {
				m.FirstReady = d.At
			}
			if !slices.Contains(d.Players, p.ID) {
				fail(invTwoMatches, "player %s got match %s, which does not list them", p.ID, d.MatchID)
			}
		}
	}
	// The players do not time match.found; the latest queue.join of the
	// members bounds it from below.
	joined := map[string]time.Time{}
	for _, p := range ev.Players {
		for _, rd := range p.Rounds {
			if rd.MatchID != "" && rd.JoinedAt.After(joined[rd.MatchID]) {
				joined[rd.MatchID] = rd.JoinedAt
			}
		}
	}
	ids := make([]string, 0, len(v.Matches))
	for id := range v.Matches {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := v.Matches[id]
		m.LastJoin = joined[id]
		if m.firstReceiver == "" {
			continue // formed, never delivered: failed or still out
		}
		if len(m.Players) != ev.MatchSize {
			fail(invMatchSize, "match %s has %d players, the queue's size is %d", id, len(m.Players), ev.MatchSize)
		}
		for _, pl := range m.Players {
			if !m.Receivers[pl] {
				fail(invLostPlayer, "player %s is in match %s but never got its match.ready", pl, id)
			}
		}
	}
}

func (v *verdict) match(id string) *matchView {
	m := v.Matches[id]
	if m == nil {
		m = &matchView{ID: id}
		v.Matches[id] = m
	}
	return m
}

// checkPlayers checks each player's own story: one match per ticket, no
// stale or duplicate delivery, every ticket accounted for.
func (v *verdict) checkPlayers(ev evidence, fail failFunc) {
	remainder := 0
	for _, p := range ev.Players {
		seenOnConn := map[string]bool{}
		latestRound := 0 // the latest round whose match the player got
		for _, d := range p.Deliveries {
			key := fmt.Sprint(d.Conn, "/", d.MatchID)
			if seenOnConn[key] {
				fail(invDuplicate, "player %s got match %s twice on connection %d", p.ID, d.MatchID, d.Conn)
				continue
			}
			seenOnConn[key] = true
			switch {
			case d.Round == 0:
				fail(invTwoMatches, "player %s got match %s (%s) for no ticket of theirs: its rounds ended with %v",
					p.ID, d.MatchID, d.Via, roundMatches(p))
			case d.Round < latestRound:
				fail(invStale, "player %s got match %s of round %d (%s, at %s) after the match of round %d",
					p.ID, d.MatchID, d.Round, d.Via, d.At.Format("15:04:05.000"), latestRound)
			case d.Round == latestRound && d.Round != 0 && roundEnded(p, d):
				v.Notes[noteRepeatOnNewConn]++
				if movedOn(p, d) {
					v.Notes[noteRepeatAfterMove]++
				}
			}
			latestRound = max(latestRound, d.Round)
		}
		for _, rd := range p.Rounds {
			v.Notes[noteMatchFailed] += rd.Failed
		}
		for _, e := range p.Ended {
			switch {
			case e.Why == "vanished" && e.Disconnected < ev.Grace:
				fail(invLostTicket, "player %s: ticket %s was gone when they reconnected after %v (grace %v)",
					p.ID, e.TicketID, e.Disconnected.Round(time.Millisecond), ev.Grace)
			case e.Why == "match.failed without requeue":
				fail(invLostTicket, "player %s: a match failed without requeueing them, though they never left", p.ID)
			default:
				v.Notes[noteGraceCancelled]++
			}
		}
		switch p.End {
		case "":
		case endSearching:
			remainder++
		case endTicketEnded:
			v.Notes[noteTicketEnded]++
		default:
			fail(invLostPlayer, "player %s: %s (rounds %d, last found %v)", p.ID, p.End, len(p.Rounds), lastFound(p))
		}
	}
	v.Notes[noteRemainder] = remainder
	if remainder >= ev.MatchSize {
		fail(invLostPlayer, "%d players were still searching at the end: enough for a match of %d", remainder, ev.MatchSize)
	}
}

// roundEnded reports whether d repeats a match that already ended its round
// (an earlier delivery).
func roundEnded(p *playerRecord, d delivery) bool {
	for _, rd := range p.Rounds {
		if rd.N == d.Round {
			return rd.ReadyAt.Before(d.At)
		}
	}
	return false
}

// movedOn reports whether the player had queued its next round when d
// arrived.
func movedOn(p *playerRecord, d delivery) bool {
	for _, rd := range p.Rounds {
		if rd.N == d.Round+1 {
			return rd.JoinedAt.Before(d.At)
		}
	}
	return false
}

func roundMatches(p *playerRecord) []string {
	var out []string
	for _, rd := range p.Rounds {
		out = append(out, rd.MatchID)
	}
	return out
}

func lastFound(p *playerRecord) []string {
	if r := p.currentRound(); r != nil {
		return r.FoundIDs
	}
	return nil
}

// checkParties checks the fake's counts: one party per match (a second one
// only after a dropped reply), a party behind every match.ready, the
// match's size and players in the request.
func (v *verdict) checkParties(ev evidence, fail failFunc) {
	ids := make([]string, 0, len(ev.Fake.Successes))
	for id := range ev.Fake.Successes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ok, dropped := ev.Fake.Successes[id], ev.Fake.DroppedByParty[id]
		// A dropped reply's party is counted as a success the client never
		// saw: each one may be followed by one more success. So may a party
		// PlayFab created for a node killed before it stored the answer:
		// the job is claimed by another node, which asks again (lobbyd
		// cannot know; the kill lost the reply as surely as a dropped one).
		killed := 0
		if m := v.Matches[id]; m != nil && allocatingAtKill(m, ev.Kills) {
			killed = 1
		}
		switch extra := ok - 1 - dropped; {
		case extra > killed:
			fail(invSecondParty, "match %s: %d successful RequestPartyService calls (%d replies dropped, %d node kill(s) while allocating): %d party(ies) too many",
				id, ok, dropped, killed, extra-killed)
		case extra > 0:
			v.Notes[noteRetryAfterKill]++
		case ok > 1:
			v.Notes[noteRetryAfterDrop]++
		}
		if m := v.Matches[id]; m == nil || m.firstReceiver == "" {
			v.Notes[noteOrphan]++
		}
	}
	for id, m := range v.Matches {
		if m.firstReceiver == "" {
			continue
		}
		m.fakeSuccesses, m.fakeDropped = ev.Fake.Successes[id], ev.Fake.DroppedByParty[id]
		m.fakeErrors, m.fakeThrottled = ev.Fake.ErrorsByParty[id], ev.Fake.ThrottledByParty[id]
		if m.fakeSuccesses == 0 {
			fail(invNoParty, "match %s was delivered but PlayFab created no party for it", id)
			continue
		}
		fp, ok := ev.FakeParties[id]
		if !ok {
			continue
		}
		m.maxUsersRequested = fp.Request.NetworkConfiguration.MaxUsers
		if m.maxUsersRequested != ev.MatchSize {
			fail(invMatchSize, "match %s: RequestPartyService asked MaxUsers %d, the queue's size is %d", id, m.maxUsersRequested, ev.MatchSize)
		}
		if inv := fp.Request.NetworkConfiguration.PartyInvitationConfiguration; inv != nil {
			for _, k := range inv.EntityKeys {
				m.invitationKeys = append(m.invitationKeys, k.ID)
			}
			if !sameSet(m.invitationKeys, m.Players) {
				fail(invTwoMatches, "match %s: the party invites %v, the match.ready lists %v", id, m.invitationKeys, m.Players)
			}
		}
		if fp.Party != nil && m.fakeSuccesses == 1 && fp.Party.SerializedNetworkDescriptor != m.Descriptor {
			fail(invDisagree, "match %s: players got a network descriptor PlayFab did not create", id)
		}
	}
}

// sameSet reports whether a and b hold the same strings.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// summary is the violations grouped by invariant, for the report.
func (v verdict) summary() string {
	count := map[string]int{}
	for _, f := range v.Violations {
		count[f.Invariant]++
	}
	var parts []string
	for k, n := range count {
		parts = append(parts, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// allocatingAtKill reports whether a node was killed while m was being
// allocated: after its last member queued and before the first
// match.ready.
func allocatingAtKill(m *matchView, kills []time.Time) bool {
	for _, k := range kills {
		if m.LastJoin.Before(k) && m.FirstReady.After(k) {
			return true
		}
	}
	return false
}
