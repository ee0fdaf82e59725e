package lobby

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// followTicket recognises queue.state frames by their first bytes: every
// queue.state lobbyd encodes starts so.
func TestQueueStateFramesStartWithTheirType(t *testing.T) {
	for _, ev := range []queueStateEvent{
		{Type: "queue.state", Ticket: ticketObject(domain.Ticket{ID: "t", Queue: "q", Status: domain.TicketSearching, CreatedAt: time.Now()})},
		{Type: "queue.state", Ticket: ticketObject(domain.Ticket{ID: "t", Status: domain.TicketCancelled}), Reason: "lost"},
	} {
		frame := mustJSON(ev)
		assert.True(t, bytes.HasPrefix(frame, queueStatePrefix), "%s", frame)
	}
}

// followTicket watches the ticket of a queue.state searching, and stops
// watching it on one that ends it; other frames and other tickets change
// nothing.
func TestFollowTicket(t *testing.T) {
	s := &session{id: Identity{PlayerID: "p"}}
	frame := func(id string, status domain.TicketStatus) []byte {
		return mustJSON(queueStateEvent{Type: "queue.state", Ticket: ticketObject(domain.Ticket{ID: id, Queue: "q", Status: status, CreatedAt: time.Now()})})
	}
	s.followTicket([]byte(`{"type":"lobby.state","ticket":{"ticketId":"x","status":"searching"}}`))
	assert.Nil(t, s.watch)
	s.followTicket(frame("a", domain.TicketSearching))
	if assert.NotNil(t, s.watch) {
		assert.Equal(t, "a", s.watch.ticket.ID)
		assert.False(t, s.watch.exact, "a queue.state names the queue, not its shard")
		assert.Equal(t, "p", s.watch.ticket.Players[0].ID)
	}
	s.followTicket(frame("b", domain.TicketExpired))
	assert.NotNil(t, s.watch, "another ticket's end")
	s.followTicket(frame("a", domain.TicketMatched))
	assert.NotNil(t, s.watch, "matched is not an end")
	s.followTicket(frame("a", domain.TicketCancelled))
	assert.Nil(t, s.watch)
}
