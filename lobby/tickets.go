package lobby

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/internal/wait"
)

// Lost tickets. Redis replicates asynchronously, and a Redis that restarts
// keeps only what it had persisted: a queue.join whose reply a player got
// may leave no ticket behind after a failover or a restart, and nothing
// would ever tell the player, who would wait for good. So each connection
// watches the ticket its player was told is searching (the queue.join
// reply, welcome.state.ticket, a queue.state searching pushed to a lobby's
// members) until it is told the ticket ended (a queue.state cancelled or
// expired, a match.ready, its own queue.leave), and the gateway reads the
// watched tickets' status every TicketAudit: a record that is gone is
// marked cancelled (once across nodes: mark_ticket_lost.lua) and its
// players get queue.state cancelled with reason "lost", a lobby's ticket
// reopening its lobby, so they can queue again. A connection whose welcome
// finds its claim naming a ticket with no record watches that ticket too:
// a lobby member back after the loss, or a player whose claim outlived it.
// Cost: nothing per idle player; one pipelined HGET per searching player
// per TicketAudit.

// watchLimit is how long after its creation a ticket is watched. A ticket
// searches at most its queue's ticketTimeout (at most an hour, requeues
// included) and its record lives two hours (ticketTTL in store), so a
// record missing within this time was lost, not expired; an older watch (a
// match that failed without a requeue, say) is dropped.
const watchLimit = 90 * time.Minute

// MaxTicketAudit bounds Gateway.TicketAudit: a ticket that ended keeps its
// status for a minute (a finished ticket's record, store's
// finishedTicketTTL), and a connection that missed the event saying so
// must see that status at an audit before it goes, or the ticket would
// look lost.
const MaxTicketAudit = 20 * time.Second

// ticketAuditStore is what the ticket audit needs from Redis.
type ticketAuditStore interface {
	// WatchedTickets reads, for each watched ticket, its status and the
	// ticket its player's claim names, with that one's status.
	WatchedTickets(ctx context.Context, watched []domain.Ticket) ([]domain.TicketCheck, error)
	// MarkTicketLost records a ticket whose record is gone as cancelled;
	// true when this call did (its players are to be told).
	MarkTicketLost(ctx context.Context, queue, ticketID string) (bool, error)
}

// watch is a ticket a connection watches for its player.
type watch struct {
	// ticket's Players[0] is the connection's player; its Queue is the
	// shard's name when exact (a queue.join reply, a welcome), the queue's
	// as clients know it otherwise (a lobby member's queue.state).
	ticket domain.Ticket
	exact  bool
	// told is false while this connection marked the ticket lost and has
	// not yet told its players: the next audit tries again.
	told bool
}

// watchTicket has the connection watch t, the ticket its player was just
// told is searching, t.Queue being its shard.
func (s *session) watchTicket(t domain.Ticket) {
	s.mu.Lock()
	s.watchLocked(t, true)
	s.mu.Unlock()
}

func (s *session) watchLocked(t domain.Ticket, exact bool) {
	if s.watch == nil || s.watch.ticket.ID != t.ID {
		t.Players = []domain.Player{{ID: s.id.PlayerID, Name: s.id.Name}}
		s.watch = &watch{ticket: t, exact: exact, told: true}
	}
}

// unwatchTicket stops watching the ticket named id.
func (s *session) unwatchTicket(id string) {
	s.mu.Lock()
	if s.watch != nil && s.watch.ticket.ID == id {
		s.watch = nil
	}
	s.mu.Unlock()
}

// rewatch replaces the watch on id by one on t (exact): the ticket the
// player's claim names now.
func (s *session) rewatch(id string, t domain.Ticket) {
	s.mu.Lock()
	if s.watch != nil && s.watch.ticket.ID == id {
		s.watch = nil
		s.watchLocked(t, true)
	}
	s.mu.Unlock()
}

// watched returns the ticket the connection watches, if any.
func (s *session) watched() (watch, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watch == nil {
		return watch{}, false
	}
	return *s.watch, true
}

// setTold records whether the players of the watched ticket id were told
// it was lost.
func (s *session) setTold(id string, told bool) {
	s.mu.Lock()
	if s.watch != nil && s.watch.ticket.ID == id {
		s.watch.told = told
	}
	s.mu.Unlock()
}

// queueStatePrefix starts every queue.state frame (queueStateEvent encodes
// its type first; a test holds it to that).
var queueStatePrefix = []byte(`{"type":"queue.state",`)

// followTicket updates the watch from a frame pushed to the player (s.mu
// held): a queue.state searching starts watching its ticket (a lobby's
// members learn of its ticket so), one cancelled or expired ends the
// watch on it.
func (s *session) followTicket(frame []byte) {
	if !bytes.HasPrefix(frame, queueStatePrefix) {
		return
	}
	var ev struct {
		Ticket struct {
			TicketID  string    `json:"ticketId"`
			Queue     string    `json:"queue"`
			Status    string    `json:"status"`
			CreatedAt time.Time `json:"createdAt"`
		} `json:"ticket"`
	}
	if json.Unmarshal(frame, &ev) != nil || ev.Ticket.TicketID == "" {
		return
	}
	switch domain.TicketStatus(ev.Ticket.Status) {
	case domain.TicketSearching:
		if s.watch == nil && !ev.Ticket.CreatedAt.IsZero() {
			s.watchLocked(domain.Ticket{ID: ev.Ticket.TicketID, Queue: ev.Ticket.Queue, CreatedAt: ev.Ticket.CreatedAt}, false)
		}
	case domain.TicketCancelled, domain.TicketExpired:
		if s.watch != nil && s.watch.ticket.ID == ev.Ticket.TicketID {
			s.watch = nil
		}
	}
}

// auditTickets checks the watched tickets every TicketAudit until ctx is
// done.
func (g *Gateway) auditTickets(ctx context.Context) {
	wait.Every(ctx, g.TicketAudit, func(time.Time) { g.auditOnce(ctx) })
}

// auditOnce reads the watched tickets and their players' claims in two
// pipelined round trips, and acts on what it finds (see decide).
func (g *Gateway) auditOnce(ctx context.Context) {
	var sessions []*session
	var watches []watch
	var tickets []domain.Ticket
	for _, s := range g.hub.all(ctx) {
		w, ok := s.watched()
		switch {
		case !ok:
		case time.Since(w.ticket.CreatedAt) > watchLimit:
			s.unwatchTicket(w.ticket.ID) // ended long ago, whatever the player missed
		default:
			sessions, watches = append(sessions, s), append(watches, w)
			tickets = append(tickets, w.ticket)
		}
	}
	g.metrics.ticketsWatched.Set(float64(len(tickets)))
	if len(tickets) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, g.RequestTimeout)
	checks, err := g.Store.WatchedTickets(rctx, tickets)
	cancel()
	if err != nil {
		g.Logger.Warn("check watched tickets", "tickets", len(tickets), "err", err)
		return
	}
	for i, c := range checks {
		g.decide(ctx, sessions[i], watches[i], c)
	}
}

// ended reports whether a ticket status is final.
func ended(st domain.TicketStatus) bool {
	return st == domain.TicketCancelled || st == domain.TicketExpired
}

// decide acts on one watched ticket as Redis holds it. The player's claim
// is the sure sign: a ticket that ends releases its players' claims, so a
// claim naming a ticket whose record is gone names a lost ticket. Without
// a claim, an exact watch whose record is gone is lost too (a Redis that
// lost the claim with it); one that ended shows its final status for a
// minute, which an audit sees (TicketAudit is at most MaxTicketAudit),
// and the event saying so ends the watch before that.
func (g *Gateway) decide(ctx context.Context, s *session, w watch, c domain.TicketCheck) {
	id := w.ticket.ID
	switch {
	case !w.told:
		g.lostTicket(ctx, s, w, false) // marked at an earlier audit: tell them
	case c.Claimed.ID != "" && c.ClaimedStatus != "":
		switch {
		case ended(c.ClaimedStatus):
			s.unwatchTicket(id)
		case c.Claimed.ID != id || !w.exact:
			// Another ticket of the player's (a lobby queued again), or
			// the shard of one a queue.state named.
			s.rewatch(id, domain.Ticket{ID: c.Claimed.ID, Queue: c.Claimed.Queue, CreatedAt: w.ticket.CreatedAt})
		}
	case c.Claimed.ID != "":
		w.ticket.ID, w.ticket.Queue = c.Claimed.ID, c.Claimed.Queue
		s.rewatch(id, w.ticket)
		g.lostTicket(ctx, s, w, true)
	case !w.exact || ended(c.Status) || c.Status == domain.TicketMatched:
		// No claim: the ticket ended, or its match was delivered (which
		// releases the claims), or (not exact) its shard is unknown.
		s.unwatchTicket(id)
	case c.Status == "":
		g.lostTicket(ctx, s, w, true)
	}
}

// lostTicket marks the watched ticket lost (gone: its record is) and, if
// this connection marked it, tells its players; the watch ends once they
// were told. A failure leaves the watch for the next audit. Each ticket
// has a deadline of its own: telling one must not take another's time.
func (g *Gateway) lostTicket(ctx context.Context, s *session, w watch, gone bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.RequestTimeout)
	defer cancel()
	t := w.ticket
	if gone {
		marked, err := g.Store.MarkTicketLost(ctx, t.Queue, t.ID)
		if err != nil {
			g.Logger.Warn("mark a lost ticket", "ticket", t.ID, "err", err)
			return
		}
		if !marked {
			s.unwatchTicket(t.ID) // another node told them, or the ticket is back
			return
		}
		g.metrics.ticketsLost.Inc()
		g.Logger.Warn("ticket lost by Redis: its players are told it is cancelled (reason lost) and may queue again",
			"ticket", t.ID, "queue", domain.BaseQueue(t.Queue), "player", s.id.PlayerID)
		s.setTold(t.ID, false)
	}
	// A lobby's ticket: its lobby names it, and all its members are told.
	l, err := g.Store.PlayerLobby(ctx, s.id.PlayerID)
	switch {
	case err == nil && l.TicketID == t.ID:
		t.LobbyID = l.ID
		t.Players = make([]domain.Player, 0, len(l.Members)) // not the watch's slice
		for _, m := range l.Members {
			t.Players = append(t.Players, domain.Player{ID: m.PlayerID, Name: m.Name})
		}
	case err != nil && !errors.Is(err, domain.ErrNotFound):
		g.Logger.Warn("look up the lobby of a lost ticket", "ticket", t.ID, "err", err)
		return
	}
	t.Status = domain.TicketCancelled
	state := mustJSON(queueStateEvent{Type: "queue.state", Ticket: ticketObject(t), Reason: "lost"})
	if err := g.ticketLeft(ctx, t, state); err != nil {
		g.Logger.Warn("tell the players of a lost ticket", "ticket", t.ID, "err", err)
		return
	}
	s.unwatchTicket(t.ID)
}
