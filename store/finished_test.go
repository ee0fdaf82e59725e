package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// assertFinished checks that a ticket's record keeps nothing but its final
// status, for at most a minute.
func assertFinished(t *testing.T, s *store.Store, queue, ticketID string, status domain.TicketStatus) {
	t.Helper()
	rec, ttl, err := store.TicketRecord(context.Background(), s, queue, ticketID)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"status": string(status)}, rec, "only the status is kept")
	assert.Greater(t, ttl, time.Duration(0), "the status expires")
	assert.LessOrEqual(t, ttl, time.Minute, "within a minute")
}

// A cancelled or expired ticket keeps only its status, for at most a
// minute: nothing else of it stays in Redis, and ending it again changes
// nothing.
func TestFinishedTicketKeepsOnlyItsStatus(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, tc := range []struct {
			name   string
			status domain.TicketStatus
			finish func(tk domain.Ticket) error
		}{
			{"cancelled", domain.TicketCancelled, func(tk domain.Ticket) error {
				_, err := s.CancelPlayerTicket(ctx, tk.Players[0].ID)
				return err
			}},
			{"expired", domain.TicketExpired, func(tk domain.Ticket) error {
				tk.Status = domain.TicketSearching // the leader's copy
				return s.ExpireTicket(ctx, tk)
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tk := soloTicket("q-"+tc.name, "p-"+tc.name, time.Now())
				tk.Skill, tk.Regions, tk.Latencies = 1500, []string{"WestUs"}, map[string]int{"WestUs": 40}
				require.NoError(t, s.CreateTicket(ctx, tk))
				require.NoError(t, tc.finish(tk))

				assertFinished(t, s, tk.Queue, tk.ID, tc.status)
				_, err := s.Ticket(ctx, tk.Queue, tk.ID)
				assert.ErrorIs(t, err, domain.ErrNotFound, "nothing left to read")
				_, err = s.PlayerTicket(ctx, tk.Players[0].ID)
				assert.ErrorIs(t, err, domain.ErrNotFound, "the claim is released")
				set, data, err := store.SearchingIndexes(ctx, s, tk.Queue)
				require.NoError(t, err)
				assert.Empty(t, set)
				assert.Empty(t, data)

				tk.Status = domain.TicketSearching
				_ = s.ExpireTicket(ctx, tk) // a leader's stale copy, or a re-sent script
				assertFinished(t, s, tk.Queue, tk.ID, tc.status)
			})
		}
	})
}

// A ticket cancelled while its match allocates is finished like any other:
// the match goes ahead without its player, and when the allocation fails
// its partner is requeued, read back as it was created, and it is not,
// whether its status is still kept or has expired by then.
func TestTicketLeavingAnAllocatingMatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		for _, statusExpired := range []bool{false, true} {
			t.Run(fmt.Sprintf("status expired %v", statusExpired), func(t *testing.T) {
				ctx := context.Background()
				queue := fmt.Sprintf("q-%v", statusExpired)
				pa, pb := "a-"+queue, "b-"+queue
				a, b := soloTicket(queue, pa, time.Now()), soloTicket(queue, pb, time.Now())
				a.Skill, a.Regions = 1200, []string{"WestUs", "EastUs"}
				a.Players[0].PlayFabEntity = "AB12CD34EF56AB78"
				require.NoError(t, s.CreateTicket(ctx, a))
				require.NoError(t, s.CreateTicket(ctx, b))
				m := matchOf(a, b)
				res, err := s.CommitMatches(ctx, queue, []domain.Match{m})
				require.NoError(t, err)
				require.Equal(t, domain.CommitOK, res[0].Outcome)

				left, err := s.CancelPlayerTicket(ctx, pb)
				require.NoError(t, err)
				assert.Equal(t, domain.TicketCancelled, left.Status)
				assert.Equal(t, m.ID, left.MatchID, "the cancelled ticket names the match its player left")
				assertFinished(t, s, queue, b.ID, domain.TicketCancelled)
				if statusExpired {
					require.NoError(t, store.DropTicketRecord(ctx, s, queue, b.ID))
				}

				attempt, err := s.BeginAttempt(ctx, queue, m.ID, "node")
				require.NoError(t, err)
				assert.Equal(t, domain.MatchAllocating, attempt.State, "the match goes ahead")
				assert.Equal(t, []string{b.ID}, attempt.Left)
				assert.Equal(t, []string{pa}, attempt.Staying().PlayerIDs())

				failed, err := s.FailMatch(ctx, attempt, "allocation_failed", time.Now())
				require.NoError(t, err)
				assert.Equal(t, []string{a.ID}, failed.Requeued, "the leaver is not requeued")
				back, err := s.Tickets(ctx, queue, []string{a.ID, b.ID})
				require.NoError(t, err)
				require.Len(t, back, 1)
				assert.Equal(t, a.ID, back[0].ID)
				assert.Equal(t, a.Players, back[0].Players, "requeued with what it was created with")
				assert.Equal(t, a.Regions, back[0].Regions)
				assert.Equal(t, a.Skill, back[0].Skill)
				depth, err := s.QueueDepth(ctx, queue)
				require.NoError(t, err)
				assert.EqualValues(t, 1, depth)
				if !statusExpired {
					assertFinished(t, s, queue, b.ID, domain.TicketCancelled)
				}
			})
		}
	})
}

// A claim left pointing at a finished ticket (its release was lost) reads
// as no ticket, and its player queues again.
func TestClaimOnAFinishedTicket(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tk := soloTicket("q", "p", time.Now())
		require.NoError(t, s.CreateTicket(ctx, tk))
		_, err := s.CancelPlayerTicket(ctx, "p")
		require.NoError(t, err)
		require.NoError(t, store.SetTicketClaim(ctx, s, "p", "q", tk.ID))

		_, err = s.PlayerTicket(ctx, "p")
		assert.ErrorIs(t, err, domain.ErrNotFound)
		_, err = s.CancelPlayerTicket(ctx, "p")
		assert.ErrorIs(t, err, domain.ErrNotFound)
		again := soloTicket("q", "p", time.Now())
		require.NoError(t, s.CreateTicket(ctx, again))
		got, err := s.PlayerTicket(ctx, "p")
		require.NoError(t, err)
		assert.Equal(t, again.ID, got.ID)
	})
}
