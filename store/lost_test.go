package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// store.TicketStatuses reads tickets' statuses in one pipeline, "" for a record
// that is gone; MarkTicketLost marks such a ticket cancelled once (the
// first caller wins, as the first node to find it tells its players) and
// takes whatever was left of it out of the queue, and never touches a
// ticket that has a record.
func TestLostTicketIsMarkedOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		kept, lost := soloTicket("q", "kept", time.Now()), soloTicket("q", "lost", time.Now())
		require.NoError(t, s.CreateTicket(ctx, kept))
		require.NoError(t, s.CreateTicket(ctx, lost))
		require.NoError(t, store.DropTicketRecord(ctx, s, "q", lost.ID))

		statuses, err := store.TicketStatuses(ctx, s, []domain.Ticket{kept, lost, {Queue: "other", ID: "never"}})
		require.NoError(t, err)
		assert.Equal(t, []domain.TicketStatus{domain.TicketSearching, "", ""}, statuses)

		marked, err := s.MarkTicketLost(ctx, "q", lost.ID)
		require.NoError(t, err)
		assert.True(t, marked, "the first caller marks it")
		marked, err = s.MarkTicketLost(ctx, "q", lost.ID)
		require.NoError(t, err)
		assert.False(t, marked, "once")
		marked, err = s.MarkTicketLost(ctx, "q", kept.ID)
		require.NoError(t, err)
		assert.False(t, marked, "a ticket with a record is left alone")

		record, ttl, err := store.TicketRecord(ctx, s, "q", lost.ID)
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"status": "cancelled"}, record, "the record a cancelled ticket keeps")
		assert.Greater(t, ttl, time.Duration(0))
		assert.LessOrEqual(t, ttl, time.Minute)
		set, data, err := store.SearchingIndexes(ctx, s, "q")
		require.NoError(t, err)
		assert.Equal(t, []string{kept.ID}, set, "nothing of it is left in the queue")
		assert.Equal(t, []string{kept.ID}, data)
		statuses, err = store.TicketStatuses(ctx, s, []domain.Ticket{kept, lost})
		require.NoError(t, err)
		assert.Equal(t, []domain.TicketStatus{domain.TicketSearching, domain.TicketCancelled}, statuses)
	})
}

// WatchedTickets reads each watched ticket's status and what its player's
// claim names, with that ticket's status: a claim naming a ticket whose
// record is gone is how a lost ticket shows.
func TestWatchedTickets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		live, lost := soloTicket("q", "live", time.Now()), soloTicket("q2", "lost", time.Now())
		require.NoError(t, s.CreateTicket(ctx, live))
		require.NoError(t, s.CreateTicket(ctx, lost))
		require.NoError(t, store.DropTicketRecord(ctx, s, "q2", lost.ID))
		left := soloTicket("q", "left", time.Now())
		require.NoError(t, s.CreateTicket(ctx, left))
		_, err := s.CancelPlayerTicket(ctx, "left")
		require.NoError(t, err)
		// A watch that names the queue but not the ticket's shard, as a
		// lobby member's queue.state does.
		elsewhere := domain.Ticket{ID: live.ID, Queue: "not-its-shard", Players: live.Players}

		checks, err := s.WatchedTickets(ctx, []domain.Ticket{live, lost, left, elsewhere})
		require.NoError(t, err)
		assert.Equal(t, domain.TicketCheck{Status: domain.TicketSearching, Claimed: domain.Ticket{Queue: "q", ID: live.ID}, ClaimedStatus: domain.TicketSearching}, checks[0])
		assert.Equal(t, domain.TicketCheck{Claimed: domain.Ticket{Queue: "q2", ID: lost.ID}}, checks[1], "claimed, record gone: lost")
		assert.Equal(t, domain.TicketCheck{Status: domain.TicketCancelled}, checks[2], "ended: its claim released")
		assert.Equal(t, domain.TicketCheck{Claimed: domain.Ticket{Queue: "q", ID: live.ID}, ClaimedStatus: domain.TicketSearching}, checks[3],
			"the claim names the shard")
	})
}
