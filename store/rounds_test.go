package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// round puts player p (with a partner) in a committed match of queue q and
// returns it as the allocation worker reads it back, ready to deliver.
func round(t *testing.T, s *store.Store, p string) domain.Match {
	t.Helper()
	ctx := context.Background()
	mine, partner := soloTicket("q", p, time.Now()), soloTicket("q", p+"-partner", time.Now())
	require.NoError(t, s.CreateTicket(ctx, mine))
	require.NoError(t, s.CreateTicket(ctx, partner))
	m := matchOf(mine, partner)
	res, err := s.CommitMatches(ctx, "q", []domain.Match{m})
	require.NoError(t, err)
	require.Equal(t, domain.CommitOK, res[0].Outcome)
	stored, err := s.Match(ctx, "q", m.ID)
	require.NoError(t, err)
	return stored
}

func readyPayload(m domain.Match) json.RawMessage {
	return json.RawMessage(`{"type":"match.ready","matchId":"` + m.ID + `"}`)
}

// pendingOf is what a connecting player is shown in welcome.state.match
// ("" for nothing), and what the redelivery sweep would push.
func pendingOf(t *testing.T, s *store.Store, p string) (welcome, sweep string) {
	t.Helper()
	ctx := context.Background()
	a, err := s.Attach(ctx, p, time.Now().Add(time.Minute))
	require.NoError(t, err)
	pending, err := s.PendingMatches(ctx, []string{p})
	require.NoError(t, err)
	return a.PendingMatchID, pending[p].MatchID
}

// A player whose match.ready ack was lost queues again: the copy of that
// earlier match is gone as soon as they hold the new ticket, so a later
// connection is never welcomed with it.
func TestEarlierMatchIsDroppedWhenThePlayerQueuesAgain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m1 := round(t, s, "p")
		require.NoError(t, s.DeliverMatch(ctx, m1, readyPayload(m1)))
		welcome, sweep := pendingOf(t, s, "p")
		require.Equal(t, m1.ID, welcome, "undelivered (its ack was lost): shown on reconnect")
		require.Equal(t, m1.ID, sweep)

		require.NoError(t, s.CreateTicket(ctx, soloTicket("q", "p", time.Now())))
		welcome, sweep = pendingOf(t, s, "p")
		assert.Empty(t, welcome, "an earlier round's match is never shown once the player queued again")
		assert.Empty(t, sweep, "nor pushed by the sweep")
		_, _, err := s.PendingMatch(ctx, "p")
		assert.ErrorIs(t, err, domain.ErrNotFound)

		// The partner, who did not queue again, still has it.
		welcome, _ = pendingOf(t, s, "p-partner")
		assert.Equal(t, m1.ID, welcome)
	})
}

// A delivery re-sent late (its job was claimed again after its ack was
// lost) stores and pushes nothing for a player who has queued again since,
// whether that ticket is still searching, was cancelled, or was matched
// and delivered in turn; a player who got it already is not pushed it again.
func TestLateRedeliveryOfAnEarlierRoundChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sub, err := s.Subscribe(ctx, "node-1")
		require.NoError(t, err)
		defer sub.Close()
		_, _, err = s.SetPresence(ctx, "p", domain.Presence{NodeID: "node-1", ConnID: "c1"}, time.Minute)
		require.NoError(t, err)
		// pushes lists the match.ready pushes to p that arrive before a
		// marker event sent after them: messages arrive in order.
		pushes := func() []string {
			t.Helper()
			marker := json.RawMessage(`{"type":"marker"}`)
			require.NoError(t, s.SendToPlayers(ctx, []domain.Addressed{{To: []string{"p"}, Event: marker}}))
			var ids []string
			for {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				msg, ok, err := sub.Next(rctx)
				cancel()
				require.NoError(t, err)
				require.True(t, ok, "the marker arrives")
				for _, e := range msg.Events {
					if string(e.Event) == string(marker) {
						return ids
					}
					if e.MatchID != "" {
						ids = append(ids, e.MatchID)
					}
				}
			}
		}

		m1 := round(t, s, "p")
		require.NoError(t, s.DeliverMatch(ctx, m1, readyPayload(m1)))
		assert.Equal(t, []string{m1.ID}, pushes())
		require.NoError(t, s.AckPendingMatch(ctx, "p", m1.ID))

		require.NoError(t, s.DeliverMatch(ctx, m1, readyPayload(m1)), "re-sent after it was written to p's socket")
		assert.Empty(t, pushes(), "a match written to the player's socket is not pushed again")
		welcome, _ := pendingOf(t, s, "p")
		assert.Empty(t, welcome)

		// Queued again, still searching.
		t2 := soloTicket("q", "p", time.Now())
		require.NoError(t, s.CreateTicket(ctx, t2))
		require.NoError(t, s.DeliverMatch(ctx, m1, readyPayload(m1)))
		assert.Empty(t, pushes(), "searching for a new match")
		welcome, _ = pendingOf(t, s, "p")
		assert.Empty(t, welcome)

		// That ticket cancelled: the claim is gone, the round stays.
		_, err = s.CancelPlayerTicket(ctx, "p")
		require.NoError(t, err)
		require.NoError(t, s.DeliverMatch(ctx, m1, readyPayload(m1)))
		assert.Empty(t, pushes(), "the player queued after this match")
		welcome, _ = pendingOf(t, s, "p")
		assert.Empty(t, welcome)

		// A later match delivered and acknowledged, then the earlier one again.
		m2 := round(t, s, "p")
		require.NoError(t, s.DeliverMatch(ctx, m2, readyPayload(m2)))
		assert.Equal(t, []string{m2.ID}, pushes())
		require.NoError(t, s.DeliverMatch(ctx, m1, readyPayload(m1)))
		assert.Empty(t, pushes())
		welcome, _ = pendingOf(t, s, "p")
		assert.Equal(t, m2.ID, welcome, "the latest match, not an earlier one")
		require.NoError(t, s.AckPendingMatch(ctx, "p", m2.ID))
		require.NoError(t, s.DeliverMatch(ctx, m1, readyPayload(m1)))
		assert.Empty(t, pushes())
		welcome, _ = pendingOf(t, s, "p")
		assert.Empty(t, welcome)
	})
}

// A delivery re-sent before the player got it (its publish or its ack was
// lost) is stored and pushed again: each connection deduplicates it.
func TestRedeliveryOfAnUndeliveredMatchIsPushedAgain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m1 := round(t, s, "p")
		require.NoError(t, s.DeliverMatch(ctx, m1, readyPayload(m1)))
		require.NoError(t, s.DeliverMatch(ctx, m1, readyPayload(m1)))
		welcome, _ := pendingOf(t, s, "p")
		assert.Equal(t, m1.ID, welcome)
		require.NoError(t, s.CreateTicket(ctx, soloTicket("q", "p", time.Now())), "the claim was released")
	})
}

// A match whose copy would outlive a PlayFab relay nobody joined is not
// delivered: the party is gone.
func TestTooOldMatchIsNotDelivered(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := round(t, s, "p")
		m.CreatedAt = time.Now().Add(-11 * time.Minute)
		require.NoError(t, s.DeliverMatch(ctx, m, readyPayload(m)))
		welcome, sweep := pendingOf(t, s, "p")
		assert.Empty(t, welcome)
		assert.Empty(t, sweep)
	})
}

// Rolling upgrade: a copy stored by an older node (no round) is shown and
// acknowledged as before, and dropped when its player queues again.
func TestPendingMatchOfAnOlderNode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, ack := range []bool{true, false} {
			p := fmt.Sprint("old-", ack)
			m := round(t, s, p)
			require.NoError(t, store.WritePendingMatchAsBefore(ctx, s, p, "q", m.Players[0].TicketID, m.ID, readyPayload(m)))
			welcome, sweep := pendingOf(t, s, p)
			require.Equal(t, m.ID, welcome)
			require.Equal(t, m.ID, sweep)
			if ack {
				require.NoError(t, s.AckPendingMatch(ctx, p, m.ID))
				exists, err := store.PendingMatchExists(ctx, s, p)
				require.NoError(t, err)
				assert.False(t, exists, "nothing is kept after an older node's copy")
				continue
			}
			require.NoError(t, s.CreateTicket(ctx, soloTicket("q", p, time.Now())))
			welcome, _ = pendingOf(t, s, p)
			assert.Empty(t, welcome, "dropped once the player queued again")
		}
	})
}
