package lobby

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// Notifier turns match events into protocol frames and sends them to the
// match's players on whichever nodes hold their sockets. The matchmaker and
// the allocation workers call it; it is the only place those frames are built.
type Notifier struct {
	Store NotifyStore
}

// NotifyStore is what the Notifier needs from Redis.
type NotifyStore interface {
	lobbyStateSender
	// DeliverMatch stores each player's copy of the match.ready payload
	// and publishes it to the nodes holding them.
	DeliverMatch(ctx context.Context, m domain.Match, payload json.RawMessage) error
	LobbyTicketDone(ctx context.Context, lobbyID, ticketID string, status domain.LobbyStatus) (domain.Lobby, bool, error)
}

// MatchesFound sends queue.state (status matched) for each ticket and
// match.found to every player of just-committed matches: one presence
// lookup for all their players, then one message per node.
func (n *Notifier) MatchesFound(ctx context.Context, ms []domain.Match) error {
	var events []domain.Addressed
	for _, m := range ms {
		events = append(events, ticketStates(m, domain.TicketMatched)...)
		events = append(events, domain.Addressed{To: m.PlayerIDs(), Event: mustJSON(matchFoundEvent{
			Type: "match.found", MatchID: m.ID, Queue: domain.BaseQueue(m.Queue), Players: playerObjects(m.Players), matchRules: matchRulesOf(m),
		})})
	}
	return n.Store.SendToPlayers(ctx, events)
}

// TicketExpired tells a ticket's players it expired (queue.state expired)
// and, for a lobby's ticket, reopens the lobby.
func (n *Notifier) TicketExpired(ctx context.Context, t domain.Ticket) error {
	state := mustJSON(queueStateEvent{Type: "queue.state", Ticket: ticketObject(t), Reason: t.EndReason})
	return ticketEnded(ctx, n.Store, t, state, func(ctx context.Context, l domain.Lobby, extra ...domain.Addressed) error {
		return sendLobbyState(ctx, n.Store, l, extra...)
	})
}

// ticketEndStore is what ticketEnded needs from Redis.
type ticketEndStore interface {
	SendToPlayers(ctx context.Context, events []domain.Addressed) error
	LobbyTicketDone(ctx context.Context, lobbyID, ticketID string, status domain.LobbyStatus) (domain.Lobby, bool, error)
}

// ticketEnded tells the players of a ticket that ended (state is their
// queue.state) and, for a lobby's ticket, reopens the lobby and has
// sendLobby send its lobby.state with it. A lobby that is gone is no
// error: the players are told all the same.
func ticketEnded(ctx context.Context, st ticketEndStore, t domain.Ticket, state []byte,
	sendLobby func(ctx context.Context, l domain.Lobby, extra ...domain.Addressed) error) error {
	events := []domain.Addressed{{To: t.PlayerIDs(), Event: state}}
	if t.LobbyID == "" {
		return st.SendToPlayers(ctx, events)
	}
	l, _, err := st.LobbyTicketDone(ctx, t.LobbyID, t.ID, domain.LobbyOpen)
	if errors.Is(err, domain.ErrNotFound) {
		return st.SendToPlayers(ctx, events)
	}
	if err != nil {
		return fmt.Errorf("reopen lobby %s: %w", t.LobbyID, err)
	}
	return sendLobby(ctx, l, events...)
}

// MatchReady stores the match.ready of a match on each player (so one who is
// offline now gets it on reconnect) and then pushes it to those connected,
// except players who left while it was allocating. Calling it again for the
// same match is harmless: each connection shows a match.ready once.
func (n *Notifier) MatchReady(ctx context.Context, m domain.Match) error {
	// The party keeps every slot; those who left are just not told.
	players := playerObjects(m.Players)
	m = m.Staying()
	payload := json.RawMessage(mustJSON(matchReadyEvent{
		Type: "match.ready", MatchID: m.ID, Queue: domain.BaseQueue(m.Queue), PartyID: m.PartyID,
		NetworkDescriptor: m.NetworkDescriptor, InvitationID: m.InvitationID,
		Regions: m.Regions, Players: players, matchRules: matchRulesOf(m),
	}))
	if err := n.Store.DeliverMatch(ctx, m, payload); err != nil {
		return fmt.Errorf("deliver match %s: %w", m.ID, err)
	}
	return n.lobbiesMatched(ctx, m)
}

// lobbiesMatched moves the lobbies whose tickets are in a ready match to
// status matched and tells their members.
func (n *Notifier) lobbiesMatched(ctx context.Context, m domain.Match) error {
	done := map[string]bool{}
	var errs []error
	for _, p := range m.Players {
		if p.LobbyID == "" || done[p.LobbyID] {
			continue
		}
		done[p.LobbyID] = true
		l, changed, err := n.Store.LobbyTicketDone(ctx, p.LobbyID, p.TicketID, domain.LobbyMatched)
		if errors.Is(err, domain.ErrNotFound) {
			continue // the lobby emptied meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if changed {
			errs = append(errs, sendLobbyState(ctx, n.Store, l))
		}
	}
	return errors.Join(errs...)
}

// MatchFailed sends match.failed (requeued) and queue.state (searching) to
// the players of a match whose allocation failed. Players who left while it
// was allocating hear nothing more of it.
func (n *Notifier) MatchFailed(ctx context.Context, m domain.Match) error {
	m = m.Staying()
	events := ticketStates(m, domain.TicketSearching)
	events = append(events, domain.Addressed{To: m.PlayerIDs(), Event: mustJSON(matchFailedEvent{
		Type: "match.failed", MatchID: m.ID, Reason: m.FailReason, Requeued: true,
	})})
	return n.Store.SendToPlayers(ctx, events)
}

// ticketStates builds one queue.state per ticket of the match.
func ticketStates(m domain.Match, status domain.TicketStatus) []domain.Addressed {
	byTicket := make(map[string][]domain.Player)
	var order []string
	for _, p := range m.Players {
		if _, ok := byTicket[p.TicketID]; !ok {
			order = append(order, p.TicketID)
		}
		byTicket[p.TicketID] = append(byTicket[p.TicketID], p)
	}
	events := make([]domain.Addressed, 0, len(order))
	for _, id := range order {
		players := byTicket[id]
		t := domain.Ticket{ID: id, Queue: m.Queue, Players: players, Status: status}
		if status == domain.TicketMatched {
			t.MatchID = m.ID
		}
		obj := ticketObject(t)
		obj.CreatedAt = "" // not known here (omitted); clients key on ticketId
		ids := make([]string, len(players))
		for i, p := range players {
			ids[i] = p.ID
		}
		events = append(events, domain.Addressed{To: ids, Event: mustJSON(queueStateEvent{Type: "queue.state", Ticket: obj})})
	}
	return events
}
