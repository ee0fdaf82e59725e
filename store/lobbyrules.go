package store

import (
	"errors"
	"fmt"
	"slices"
)

// The lobby rules: each is a function that applies one change to a lobby
// value, or refuses it with the error the player gets. They are the whole
// of what a change may do, in Go and testable without Redis; Redis only
// makes each one atomic (applyLobbyRule reads the lobby, applies the rule
// and writes the result back with a compare-and-set, again on a conflict).
// The version is not theirs to touch: every applied change increments it.
// (They sit here, beside the Lobby type, until the domain types leave
// store; see issue 12.)
//
// A rule returns errUnchanged when the change is already in effect (a
// join by a member, a lobby already queued with this ticket): the lobby is
// answered as it is and nothing is written, so a request sent twice has
// the effect of one.
type rule func(l *Lobby) error

// errUnchanged: the change is already made; nothing to write.
var errUnchanged = errors.New("lobby unchanged")

// errStaleTicket: the lobby's ticket is no longer the one that ended.
var errStaleTicket = errors.New("not the lobby's ticket")

// Errors the rules refuse with, as players see them.
var (
	errNotMember   = fmt.Errorf("not a member of this lobby: %w", ErrNotFound)
	errKickSelf    = fmt.Errorf("not allowed on this lobby: %w", ErrInvalid)
	errTooSmall    = fmt.Errorf("maxMembers is below the number of members: %w", ErrInvalid)
	errQueued      = fmt.Errorf("the lobby is queued: leave the queue first: %w", ErrConflict)
	errNotReady    = fmt.Errorf("every member must be ready: %w", ErrConflict)
	errMembersMove = fmt.Errorf("the lobby's members changed meanwhile: %w", ErrConflict)
)

func memberIndex(l *Lobby, player string) int {
	return slices.IndexFunc(l.Members, func(m LobbyMember) bool { return m.PlayerID == player })
}

// joinRule adds m, unless the lobby is queued or full. Joining a lobby one
// is in changes nothing.
func joinRule(m LobbyMember) rule {
	return func(l *Lobby) error {
		switch {
		case memberIndex(l, m.PlayerID) >= 0:
			return errUnchanged
		case l.Status == LobbyQueued:
			return fmt.Errorf("lobby is %s: %w", l.Status, ErrConflict)
		case len(l.Members) >= l.MaxMembers:
			return ErrFull
		}
		l.Members = append(l.Members, m)
		return nil
	}
}

// leaveRule takes the player out; see removeMember.
func leaveRule(player string) rule {
	return func(l *Lobby) error {
		i := memberIndex(l, player)
		if i < 0 {
			return errNotMember
		}
		removeMember(l, i)
		return nil
	}
}

// kickRule lets the owner take another member out.
func kickRule(by, target string) rule {
	return func(l *Lobby) error {
		if l.OwnerID != by {
			return ErrForbidden
		}
		i := memberIndex(l, target)
		switch {
		case i < 0:
			return errNotMember
		case target == by:
			return errKickSelf
		}
		removeMember(l, i)
		return nil
	}
}

// removeMember takes member i out. When the owner leaves, the earliest
// joiner left owns the lobby. A lobby left with no member is deleted (by
// whoever applies the rule).
func removeMember(l *Lobby, i int) {
	l.Members = slices.Delete(l.Members, i, i+1)
	if len(l.Members) > 0 && memberIndex(l, l.OwnerID) < 0 {
		l.OwnerID = l.Members[0].PlayerID
	}
}

// promoteRule lets the owner hand the lobby to another member.
func promoteRule(by, target string) rule {
	return func(l *Lobby) error {
		if l.OwnerID != by {
			return ErrForbidden
		}
		if memberIndex(l, target) < 0 {
			return errNotMember
		}
		l.OwnerID = target
		return nil
	}
}

// lobbyPatch is an owner's change of settings; nil and zero fields are left
// alone.
type lobbyPatch struct {
	Props      map[string]string
	Visibility string
	MaxMembers int
	// NewCode is the code the lobby takes if it turns from public to
	// private: whoever saw it listed may know the old one.
	NewCode string
}

// updateRule applies the owner's patch. maxMembers may not drop below the
// members there are.
func updateRule(by string, p lobbyPatch) rule {
	return func(l *Lobby) error {
		if l.OwnerID != by {
			return ErrForbidden
		}
		if p.MaxMembers > 0 {
			if p.MaxMembers < len(l.Members) {
				return errTooSmall
			}
			l.MaxMembers = p.MaxMembers
		}
		if p.Visibility == "private" && l.Visibility != "private" && p.NewCode != "" {
			l.Code = p.NewCode
		}
		if p.Visibility != "" {
			l.Visibility = p.Visibility
		}
		if p.Props != nil {
			l.Props = p.Props
		}
		return nil
	}
}

// readyRule sets a member's readiness (and skill, when given), not while
// the lobby queues.
func readyRule(player string, ready bool, skill *float64) rule {
	return func(l *Lobby) error {
		i := memberIndex(l, player)
		switch {
		case i < 0:
			return errNotMember
		case l.Status == LobbyQueued:
			return errQueued
		}
		l.Members[i].Ready = ready
		if skill != nil {
			s := *skill
			l.Members[i].Skill = &s
		}
		return nil
	}
}

// queueRule marks the lobby queued with ticketID: only the owner, only
// with every member ready, and only if the members are still exactly
// memberIDs (the ticket's players, in joining order). Queueing again with
// the same ticket changes nothing.
func queueRule(by, ticketID string, memberIDs []string) rule {
	return func(l *Lobby) error {
		if l.OwnerID != by {
			return ErrForbidden
		}
		if l.Status == LobbyQueued {
			if l.TicketID == ticketID {
				return errUnchanged
			}
			return errQueued
		}
		if !slices.Equal(l.MemberIDs(), memberIDs) {
			return errMembersMove
		}
		for _, m := range l.Members {
			if !m.Ready {
				return errNotReady
			}
		}
		l.Status, l.TicketID = LobbyQueued, ticketID
		return nil
	}
}

// ticketDoneRule moves a lobby whose ticket ended to status: open (the
// ticket was cancelled or expired; the lobby may queue again) or matched
// (its match is ready; every member must ready up again for the next
// one). A ticket that is no longer the lobby's changes nothing.
func ticketDoneRule(ticketID, status string) rule {
	return func(l *Lobby) error {
		if l.TicketID != ticketID {
			return errStaleTicket
		}
		l.Status = status
		switch status {
		case LobbyOpen:
			l.TicketID = ""
		case LobbyMatched:
			for i := range l.Members {
				l.Members[i].Ready = false
			}
		}
		return nil
	}
}
