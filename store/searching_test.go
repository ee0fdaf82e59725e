package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// The queue's searching data hash, which the leader reads, holds an entry
// for exactly the tickets in the searching set, through every way a ticket
// enters or leaves it; what the leader reads from it is the ticket as
// created (or as requeued, with its hold).
func TestSearchingDataFollowsTheSearchingSet(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		tks := map[string]domain.Ticket{}
		for i, p := range []string{"a", "b", "c", "d", "e"} {
			tk := soloTicket("q", p, base.Add(time.Duration(i)*time.Millisecond))
			tk.Skill, tk.Regions = float64(10*i), []string{"WestUs"}
			require.NoError(t, s.CreateTicket(ctx, tk))
			tks[p] = tk
		}
		same := func(want ...string) {
			t.Helper()
			set, data, err := store.SearchingIndexes(ctx, s, "q")
			require.NoError(t, err)
			var ids []string
			for _, p := range want {
				ids = append(ids, tks[p].ID)
			}
			slices.Sort(ids)
			assert.Equal(t, ids, set, "searching set")
			assert.Equal(t, ids, data, "searching data")
		}
		same("a", "b", "c", "d", "e")

		read, err := s.Tickets(ctx, "q", []string{tks["c"].ID, tks["a"].ID})
		require.NoError(t, err)
		require.Len(t, read, 2)
		assert.Equal(t, tks["c"].ID, read[0].ID, "in the order asked")
		assert.Equal(t, domain.TicketSearching, read[0].Status)
		assert.True(t, tks["c"].CreatedAt.Equal(read[0].CreatedAt))
		assert.Equal(t, 20.0, read[0].Skill)
		assert.Equal(t, []string{"WestUs"}, read[0].Regions)
		assert.Equal(t, tks["c"].Players, read[0].Players)

		_, err = s.CancelPlayerTicket(ctx, "b")
		require.NoError(t, err)
		same("a", "c", "d", "e")

		expired := tks["e"]
		expired.Status = domain.TicketSearching // the leader's copy
		require.NoError(t, s.ExpireTicket(ctx, expired))
		same("a", "c", "d")

		m := matchOf(tks["a"], tks["c"])
		m.Queue = "q"
		res, err := s.CommitMatches(ctx, "q", []domain.Match{m})
		require.NoError(t, err)
		require.Equal(t, domain.CommitOK, res[0].Outcome)
		same("d")
		gone, err := s.Tickets(ctx, "q", []string{tks["a"].ID})
		require.NoError(t, err)
		assert.Empty(t, gone, "a matched ticket is not read as searching")

		begun, err := s.BeginAttempt(ctx, "q", m.ID, "node")
		require.NoError(t, err)
		hold := time.Now().Add(time.Minute).Truncate(time.Millisecond)
		_, err = s.FailMatch(ctx, begun, "playfab said no", hold)
		require.NoError(t, err)
		same("a", "c", "d")
		back, err := s.Tickets(ctx, "q", []string{tks["a"].ID})
		require.NoError(t, err)
		require.Len(t, back, 1)
		assert.True(t, hold.Equal(back[0].HoldUntil), "requeued with its hold")
		assert.True(t, tks["a"].CreatedAt.Equal(back[0].CreatedAt), "and its place")

		// A ticket queued by a lobbyd that kept no searching data is read
		// from its hash.
		require.NoError(t, store.DropSearchingEntry(ctx, s, "q", tks["d"].ID))
		old, err := s.Tickets(ctx, "q", []string{tks["a"].ID, tks["d"].ID, tks["c"].ID})
		require.NoError(t, err)
		require.Len(t, old, 3)
		assert.Equal(t, []string{tks["a"].ID, tks["d"].ID, tks["c"].ID}, []string{old[0].ID, old[1].ID, old[2].ID})

		// A ticket whose record expired leaves the queue when read.
		require.NoError(t, store.DropTicketRecord(ctx, s, "q", tks["a"].ID))
		require.NoError(t, store.DropSearchingEntry(ctx, s, "q", tks["a"].ID))
		left, err := s.Tickets(ctx, "q", []string{tks["a"].ID, tks["c"].ID})
		require.NoError(t, err)
		require.Len(t, left, 1)
		set, data, err := store.SearchingIndexes(ctx, s, "q")
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{tks["c"].ID, tks["d"].ID}, set)
		assert.Equal(t, []string{tks["c"].ID}, data, "d has no entry, as dropped above")
	})
}

// Entries left behind in the searching data (by an older lobbyd during a
// rolling upgrade) are dropped by the leader's next snapshot, and only they.
func TestSnapshotPrunesEntriesLeftBehind(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var ids []string
		for i := range 2500 { // more than one HSCAN page
			tk := soloTicket("q", fmt.Sprintf("p%d", i), time.Now())
			require.NoError(t, s.CreateTicket(ctx, tk))
			ids = append(ids, tk.ID)
		}
		for _, id := range ids[:1200] {
			require.NoError(t, store.LeaveSearchingEntryBehind(ctx, s, "q", id))
		}
		snap, err := s.SnapshotSearching(ctx, "q", false)
		require.NoError(t, err)
		assert.Len(t, snap, 1300)
		set, data, err := store.SearchingIndexes(ctx, s, "q")
		require.NoError(t, err)
		assert.Equal(t, set, data, "the entries left behind are gone, the others kept")
		assert.Len(t, data, 1300)
	})
}

// An unreadable searching entry does not stop the queue: the ticket is read
// from its own hash.
func TestUnreadableSearchingEntryFallsBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tk := soloTicket("q", "a", time.Now())
		require.NoError(t, s.CreateTicket(ctx, tk))
		require.NoError(t, store.SetSearchingEntry(ctx, s, "q", tk.ID, "garbage"))
		got, err := s.Tickets(ctx, "q", []string{tk.ID})
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, tk.Players, got[0].Players)
	})
}

// A ticket whose record vanished (Redis lost it: records outlive the
// longest ticket timeout) still commits with its match, read from the
// searching data, and the record the commit writes for it expires.
func TestCommitWithALostRecord(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := soloTicket("q", "a", time.Now()), soloTicket("q", "b", time.Now())
		require.NoError(t, s.CreateTicket(ctx, a))
		require.NoError(t, s.CreateTicket(ctx, b))
		require.NoError(t, store.DropTicketRecord(ctx, s, "q", b.ID))
		m := matchOf(a, b)
		res, err := s.CommitMatches(ctx, "q", []domain.Match{m})
		require.NoError(t, err)
		assert.Equal(t, domain.CommitOK, res[0].Outcome)
		ttl, err := store.TicketTTL(ctx, s, "q", b.ID)
		require.NoError(t, err)
		assert.Greater(t, ttl, time.Duration(0), "the record written has a lifetime")
		got, err := s.Ticket(ctx, "q", a.ID)
		require.NoError(t, err)
		assert.Equal(t, m.ID, got.MatchID)
		set, data, err := store.SearchingIndexes(ctx, s, "q")
		require.NoError(t, err)
		assert.Empty(t, set)
		assert.Empty(t, data)
	})
}

// A match holding a ticket cancelled behind the leader's back is stale: its
// partner goes back in the queue, in its place, and the cancelled ticket
// stays out of both the searching set and the searching data.
func TestStaleCommitPutsPartnersBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := soloTicket("q", "a", time.Now()), soloTicket("q", "b", time.Now())
		require.NoError(t, s.CreateTicket(ctx, a))
		require.NoError(t, s.CreateTicket(ctx, b))
		_, err := s.CancelPlayerTicket(ctx, "b")
		require.NoError(t, err)
		res, err := s.CommitMatches(ctx, "q", []domain.Match{matchOf(a, b)})
		require.NoError(t, err)
		assert.Equal(t, domain.CommitStale, res[0].Outcome)
		assert.Equal(t, b.ID, res[0].StaleTicket)
		set, data, err := store.SearchingIndexes(ctx, s, "q")
		require.NoError(t, err)
		assert.Equal(t, []string{a.ID}, set)
		assert.Equal(t, []string{a.ID}, data)
		got, err := s.Ticket(ctx, "q", a.ID)
		require.NoError(t, err)
		assert.Equal(t, domain.TicketSearching, got.Status)
	})
}
