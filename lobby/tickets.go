package lobby

import (
	"context"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/internal/wait"
)

// Lost tickets. Redis replicates asynchronously, and a Redis that restarts
// keeps only what it had persisted: a queue.join whose reply a player got
// may leave no ticket behind after a failover or a restart, and nothing
// would ever tell the player, who would wait for good. So each connection
// remembers the ticket it was told is searching (its watch), and the
// gateway checks those tickets' records every TicketAudit: a record that
// is gone is marked cancelled (once, across nodes: mark_ticket_lost.lua)
// and its players get queue.state cancelled with reason "lost", a lobby's
// ticket reopening its lobby, so they can queue again. Cost: nothing per
// idle player; one pipelined HGET per searching player per TicketAudit.

// watchLimit is how long after its creation a ticket is watched. A ticket
// searches at most its queue's ticketTimeout (at most an hour, requeues
// included) and its record lives two hours (ticketTTL in store), so a
// record missing within this time was lost, not expired; an older watch (a
// match that failed without a requeue, say) is dropped.
const watchLimit = 90 * time.Minute

// ticketAuditStore is what the ticket audit needs from Redis.
type ticketAuditStore interface {
	// TicketStatuses reads each ticket's status, "" for one whose record
	// is gone.
	TicketStatuses(ctx context.Context, tickets []domain.Ticket) ([]domain.TicketStatus, error)
	// MarkTicketLost records a ticket whose record is gone as cancelled;
	// true when this call did (its players are to be told).
	MarkTicketLost(ctx context.Context, queue, ticketID string) (bool, error)
}

// watchTicket has the connection watch t, the ticket its player was just
// told is searching (a queue.join reply, welcome.state.ticket).
func (s *session) watchTicket(t domain.Ticket) {
	s.mu.Lock()
	s.watch = &t
	s.mu.Unlock()
}

// unwatchTicket stops watching the ticket named id; with "" whichever.
func (s *session) unwatchTicket(id string) {
	s.mu.Lock()
	if s.watch != nil && (id == "" || s.watch.ID == id) {
		s.watch = nil
	}
	s.mu.Unlock()
}

// watched returns the ticket the connection watches, if any.
func (s *session) watched() (domain.Ticket, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watch == nil {
		return domain.Ticket{}, false
	}
	return *s.watch, true
}

// auditTickets checks the watched tickets every TicketAudit until ctx is
// done.
func (g *Gateway) auditTickets(ctx context.Context) {
	wait.Every(ctx, g.TicketAudit, func(time.Time) {
		actx, cancel := context.WithTimeout(ctx, g.RequestTimeout)
		defer cancel()
		g.auditOnce(actx)
	})
}

// auditOnce reads the status of every watched ticket in one pipeline; a
// ticket that ended is no longer watched, one whose record is gone is
// marked lost and its players told.
func (g *Gateway) auditOnce(ctx context.Context) {
	var sessions []*session
	var tickets []domain.Ticket
	for _, s := range g.hub.all(ctx) {
		t, ok := s.watched()
		switch {
		case !ok:
		case time.Since(t.CreatedAt) > watchLimit:
			s.unwatchTicket(t.ID) // ended long ago, whatever the player missed
		default:
			sessions = append(sessions, s)
			tickets = append(tickets, t)
		}
	}
	if len(tickets) == 0 {
		return
	}
	statuses, err := g.Store.TicketStatuses(ctx, tickets)
	if err != nil {
		g.Logger.Warn("check watched tickets", "tickets", len(tickets), "err", err)
		return
	}
	for i, status := range statuses {
		t, s := tickets[i], sessions[i]
		switch status {
		case domain.TicketSearching, domain.TicketMatched:
			continue
		case "":
			marked, err := g.Store.MarkTicketLost(ctx, t.Queue, t.ID)
			if err != nil {
				g.Logger.Warn("mark a lost ticket", "ticket", t.ID, "err", err)
				continue
			}
			s.unwatchTicket(t.ID)
			if !marked {
				continue // another node told them, or the ticket is back
			}
			g.metrics.ticketsLost.Inc()
			g.Logger.Warn("ticket lost by Redis: its players are told it is cancelled (reason lost) and may queue again",
				"ticket", t.ID, "queue", domain.BaseQueue(t.Queue), "lobby", t.LobbyID, "players", len(t.Players))
			t.Status = domain.TicketCancelled
			state := mustJSON(queueStateEvent{Type: "queue.state", Ticket: ticketObject(t), Reason: "lost"})
			if err := g.ticketLeft(ctx, t, state); err != nil {
				g.Logger.Warn("tell the players of a lost ticket", "ticket", t.ID, "err", err)
			}
		default: // cancelled or expired: its players were told
			s.unwatchTicket(t.ID)
		}
	}
}
