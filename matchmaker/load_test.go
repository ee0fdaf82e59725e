package matchmaker

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// A new leader's first pass reads the queue in several chunks and groups
// and commits as it reads: every ticket lands in at most one match of
// exactly MaxUsers, expired tickets are ended and announced, held ones wait
// in the pool, and the pool ends up holding just what is left.
func TestNewLeaderFormsWhileReading(t *testing.T) {
	st := storetest.Real(t)
	ctx := context.Background()
	q := DefaultQueues()[0]
	now := time.Now().UTC().Truncate(time.Millisecond)
	create := func(player string, created time.Time) domain.Ticket {
		t.Helper()
		tk := domain.Ticket{ID: "t-" + player, Queue: q.Name, CreatedAt: created,
			Players: []domain.Player{{ID: player, Name: player}}}
		require.NoError(t, st.CreateTicket(ctx, tk))
		return tk
	}
	// Four tickets requeued by a failed allocation, held for a minute.
	var heldMatch domain.Match
	heldMatch.ID, heldMatch.Queue = "held-match", q.Name
	for i := range 4 {
		tk := create(fmt.Sprintf("held%d", i), now.Add(-time.Minute))
		heldMatch.TicketIDs = append(heldMatch.TicketIDs, tk.ID)
		heldMatch.Players = append(heldMatch.Players, domain.Player{ID: tk.Players[0].ID, TicketID: tk.ID})
	}
	_, err := st.CommitMatches(ctx, q.Name, []domain.Match{heldMatch})
	require.NoError(t, err)
	begun, err := st.BeginAttempt(ctx, q.Name, heldMatch.ID, "node")
	require.NoError(t, err)
	_, err = st.FailMatch(ctx, begun, "test", now.Add(time.Minute))
	require.NoError(t, err)

	const expired, fresh = 10, 2*readChunk + 100 // three chunks
	for i := range expired {
		create(fmt.Sprintf("old%d", i), now.Add(-q.TicketTimeout.D()-time.Duration(i+1)*time.Second))
	}
	for i := range fresh {
		create(fmt.Sprintf("p%05d", i), now.Add(-30*time.Second+time.Duration(i)*time.Millisecond))
	}

	notifier := &recordingNotifier{}
	s := &Service{Store: st, Queues: []Queue{q}, NodeID: "leader", Notifier: notifier, Now: func() time.Time { return now }}
	lead(t, s)
	s.init()
	more, err := s.formOnce(ctx, q)
	require.NoError(t, err)
	assert.False(t, more)

	matches := notifier.found()
	require.Len(t, matches, fresh/q.MaxUsers, "every fresh ticket matched")
	seen := map[string]bool{}
	for i, m := range matches {
		require.Len(t, m.Players, q.MaxUsers)
		for _, p := range m.Players {
			assert.False(t, seen[p.ID], "player %s in two matches", p.ID)
			seen[p.ID] = true
			assert.Regexp(t, `^p\d{5}$`, p.ID, "only fresh tickets are matched")
		}
		if i > 0 {
			assert.Less(t, matches[i-1].Players[0].ID, m.Players[0].ID, "announced oldest first")
		}
	}
	notifier.mu.Lock()
	assert.Len(t, notifier.expired, expired, "expired tickets are announced")
	notifier.mu.Unlock()

	depth, err := st.QueueDepth(ctx, q.Name)
	require.NoError(t, err)
	assert.EqualValues(t, 4, depth, "only the held tickets still search")
	p := s.poolOf(q.Name)
	assert.ElementsMatch(t, heldMatch.TicketIDs, poolIDs(p), "the pool holds what is left")
	assert.True(t, p.lastSync.Equal(now), "the view is in sync")
}

// inOrder hands results over in input order whatever order the work ends
// in, and never runs more than parallel calls at once.
func TestInOrder(t *testing.T) {
	const n, parallel = 40, 3
	// Each even input waits until the next one has started, so the odd
	// one always finishes first.
	started := make([]chan struct{}, n+1)
	for i := range started {
		started[i] = make(chan struct{})
	}
	var running, most atomic.Int32
	var got []int
	inOrder(slices.Values(func() []int {
		in := make([]int, n)
		for i := range in {
			in[i] = i
		}
		return in
	}()), parallel,
		func(i int) (int, error) {
			r := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); r > m && !most.CompareAndSwap(m, r); m = most.Load() {
			}
			close(started[i])
			if i%2 == 0 && i+1 < n {
				<-started[i+1]
			}
			return i * i, nil
		},
		func(i, out int, err error) {
			require.NoError(t, err)
			assert.Equal(t, i*i, out)
			got = append(got, i)
		})
	require.Len(t, got, n)
	assert.True(t, slices.IsSorted(got), "handed over in input order: %v", got)
	assert.LessOrEqual(t, most.Load(), int32(parallel))
	assert.GreaterOrEqual(t, most.Load(), int32(2), "calls overlapped")
}
