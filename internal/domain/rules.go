package domain

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// A LobbyRule applies one change to a lobby value, or refuses it with the
// error the player gets. The rules below are the whole of what a change
// may do, in Go and testable without Redis; the store only makes each one
// atomic (it reads the lobby, applies the rule and writes the result back
// with a compare-and-set, again on a conflict). The version is not theirs
// to touch: the store increments it with every applied change, and
// deletes a lobby a rule left with no member.
//
// A rule returns ErrUnchanged when the change is already in effect (a
// join by a member, a lobby already queued with this ticket): the lobby is
// answered as it is and nothing is written, so a request sent twice has
// the effect of one.
type LobbyRule func(l *Lobby) error

// ErrUnchanged means the change a rule makes is already made: there is
// nothing to write.
var ErrUnchanged = errors.New("lobby unchanged")

// ErrStaleTicket means the lobby's ticket is no longer the one that ended
// (TicketDoneRule).
var ErrStaleTicket = errors.New("not the lobby's ticket")

// ErrNotMember means the player is not a member of the lobby. It is a kind
// of ErrNotFound.
var ErrNotMember = fmt.Errorf("not a member of this lobby: %w", ErrNotFound)

// Errors the rules refuse with, as players see them.
var (
	errKickSelf    = fmt.Errorf("use lobby.leave to leave your own lobby: %w", ErrInvalid)
	errTooSmall    = fmt.Errorf("maxMembers is below the number of members: %w", ErrInvalid)
	errQueued      = fmt.Errorf("the lobby is queued: leave the queue first: %w", ErrConflict)
	errNotReady    = fmt.Errorf("every member must be ready: %w", ErrConflict)
	errMembersMove = fmt.Errorf("the lobby's members changed meanwhile: %w", ErrConflict)
)

// Check reports what r would answer on l, leaving l as it is: what a
// request checks before its side effects (cancelling a ticket, creating
// one), with the words of the rule that Redis applies after them.
func (l Lobby) Check(r LobbyRule) error {
	l.Members = slices.Clone(l.Members)
	l.Props = maps.Clone(l.Props)
	return r(&l)
}

func (l Lobby) memberIndex(player string) int {
	return slices.IndexFunc(l.Members, func(m LobbyMember) bool { return m.PlayerID == player })
}

// JoinRule adds m, unless the lobby is queued or full. Joining a lobby one
// is in changes nothing.
func JoinRule(m LobbyMember) LobbyRule {
	return func(l *Lobby) error {
		switch {
		case l.memberIndex(m.PlayerID) >= 0:
			return ErrUnchanged
		case l.Status == LobbyQueued:
			return fmt.Errorf("lobby is %s: %w", l.Status, ErrConflict)
		case len(l.Members) >= l.MaxMembers:
			return ErrFull
		}
		l.Members = append(l.Members, m)
		return nil
	}
}

// LeaveRule takes the player out; see removeMember.
func LeaveRule(player string) LobbyRule {
	return func(l *Lobby) error {
		i := l.memberIndex(player)
		if i < 0 {
			return ErrNotMember
		}
		removeMember(l, i)
		return nil
	}
}

// KickRule lets the owner take another member out.
func KickRule(by, target string) LobbyRule {
	return func(l *Lobby) error {
		if target == by {
			return errKickSelf
		}
		if l.OwnerID != by {
			return ErrForbidden
		}
		i := l.memberIndex(target)
		if i < 0 {
			return ErrNotMember
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
	if len(l.Members) > 0 && l.memberIndex(l.OwnerID) < 0 {
		l.OwnerID = l.Members[0].PlayerID
	}
}

// PromoteRule lets the owner hand the lobby to another member.
func PromoteRule(by, target string) LobbyRule {
	return func(l *Lobby) error {
		if l.OwnerID != by {
			return ErrForbidden
		}
		if l.memberIndex(target) < 0 {
			return ErrNotMember
		}
		l.OwnerID = target
		return nil
	}
}

// LobbyPatch is an owner's change of settings; nil and zero fields are left
// alone.
type LobbyPatch struct {
	Props      map[string]string
	Visibility string
	MaxMembers int
	// NewCode is the code the lobby takes if it turns from public to
	// private: whoever saw it listed may know the old one.
	NewCode string
}

// UpdateRule applies the owner's patch. maxMembers may not drop below the
// members there are.
func UpdateRule(by string, p LobbyPatch) LobbyRule {
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

// ReadyRule sets a member's readiness (and skill, when given), not while
// the lobby queues.
func ReadyRule(player string, ready bool, skill *float64) LobbyRule {
	return func(l *Lobby) error {
		i := l.memberIndex(player)
		switch {
		case i < 0:
			return ErrNotMember
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

// QueueRule marks the lobby queued with ticketID: only the owner, only
// with every member ready, and only if the members are still exactly
// memberIDs (the ticket's players, in joining order). Queueing again with
// the same ticket changes nothing.
func QueueRule(by, ticketID string, memberIDs []string) LobbyRule {
	return func(l *Lobby) error {
		if l.OwnerID != by {
			return ErrForbidden
		}
		if l.Status == LobbyQueued {
			if l.TicketID == ticketID {
				return ErrUnchanged
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

// TicketDoneRule moves a lobby whose ticket ended to status: open (the
// ticket was cancelled or expired; the lobby may queue again) or matched
// (its match is ready; every member must ready up again for the next
// one). A ticket that is no longer the lobby's changes nothing.
func TicketDoneRule(ticketID string, status LobbyStatus) LobbyRule {
	return func(l *Lobby) error {
		if l.TicketID != ticketID {
			return ErrStaleTicket
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
