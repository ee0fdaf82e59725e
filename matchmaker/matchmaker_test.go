package matchmaker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store/storetest"
)

func ticketOf(id string, size int, regions ...string) domain.Ticket {
	t := domain.Ticket{ID: id, Regions: regions}
	for i := 0; i < size; i++ {
		t.Players = append(t.Players, domain.Player{ID: fmt.Sprintf("%s-%d", id, i)})
	}
	return t
}

func TestFormMatches(t *testing.T) {
	q := DefaultQueues()[0] // MaxUsers 4
	for _, tc := range []struct {
		name    string
		tickets []domain.Ticket
		want    [][]string // ticket ids per match
		regions [][]string
	}{
		{name: "empty"},
		{name: "not enough", tickets: []domain.Ticket{ticketOf("a", 1), ticketOf("b", 1), ticketOf("c", 1)}},
		{
			name:    "solos oldest first",
			tickets: []domain.Ticket{ticketOf("a", 1), ticketOf("b", 1), ticketOf("c", 1), ticketOf("d", 1), ticketOf("e", 1)},
			want:    [][]string{{"a", "b", "c", "d"}},
		},
		{
			name:    "groups never split",
			tickets: []domain.Ticket{ticketOf("a", 3), ticketOf("b", 2), ticketOf("c", 1), ticketOf("d", 2), ticketOf("e", 2)},
			want:    [][]string{{"a", "c"}, {"b", "d"}},
		},
		{
			name:    "too large ticket skipped",
			tickets: []domain.Ticket{ticketOf("big", 5), ticketOf("a", 4)},
			want:    [][]string{{"a"}},
		},
		{
			name: "regions must intersect",
			tickets: []domain.Ticket{
				ticketOf("a", 1, "WestUs"), ticketOf("b", 1, "WestEurope"), ticketOf("c", 1, "WestUs", "EastUs"),
				ticketOf("d", 1, "EastUs", "WestUs"), ticketOf("e", 1), ticketOf("f", 1, "NorthEurope"),
			},
			want:    [][]string{{"a", "c", "d", "e"}},
			regions: [][]string{{"WestUs"}},
		},
		{
			name:    "unknown regions never match",
			tickets: []domain.Ticket{ticketOf("a", 1, "Mars"), ticketOf("b", 1), ticketOf("c", 1), ticketOf("d", 1)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := formMatches(q, tc.tickets, time.Now())
			require.Len(t, got, len(tc.want))
			for i, m := range got {
				assert.Equal(t, tc.want[i], m.TicketIDs)
				assert.Len(t, m.Players, q.MaxUsers, "every match holds exactly MaxUsers")
				if tc.regions != nil {
					assert.Equal(t, tc.regions[i], m.Regions)
				}
			}
		})
	}
}

func TestQueueValidate(t *testing.T) {
	ok := DefaultQueues()[0]
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		mutate func(*Queue)
		want   string
	}{
		{func(q *Queue) { q.Name = "bad name" }, "name"},
		{func(q *Queue) { q.MaxUsers = 1 }, "maxUsers"},
		{func(q *Queue) { q.MaxUsers = 1025 }, "maxUsers"},
		{func(q *Queue) { q.Regions = nil }, "regions"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			q := ok
			tc.mutate(&q)
			err := q.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.ErrorContains(t, ValidateQueues([]Queue{ok, ok}), "defined twice")
	assert.ErrorContains(t, ValidateQueues(nil), "no queues")
}

type recordingNotifier struct {
	mu      sync.Mutex
	matches []domain.Match
	expired []domain.Ticket
}

func (r *recordingNotifier) MatchesFound(_ context.Context, ms []domain.Match) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.matches = append(r.matches, ms...)
	return nil
}

func (r *recordingNotifier) TicketExpired(_ context.Context, t domain.Ticket) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expired = append(r.expired, t)
	return nil
}

func (r *recordingNotifier) found() []domain.Match {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]domain.Match(nil), r.matches...)
}

func TestJoinAndLeave(t *testing.T) {
	st := storetest.Embedded(t)
	s := &Service{Store: st, Queues: DefaultQueues(), NodeID: "n1"}
	ctx := context.Background()
	alice := []domain.Player{{ID: "alice", Name: "Alice"}}

	_, err := s.Join(ctx, domain.Ticket{Queue: "nope", Players: alice})
	assert.ErrorIs(t, err, ErrUnknownQueue)
	_, err = s.Join(ctx, domain.Ticket{Queue: "default", Players: alice, Regions: []string{"Mars"}})
	assert.ErrorIs(t, err, ErrBadRegion)

	tk, err := s.Join(ctx, domain.Ticket{Queue: "default", Players: alice, Skill: 1500, Regions: []string{"WestUs"}})
	require.NoError(t, err)
	assert.Equal(t, domain.TicketSearching, tk.Status)
	_, err = s.Join(ctx, domain.Ticket{Queue: "default", Players: alice})
	assert.ErrorIs(t, err, domain.ErrConflict)

	got, err := st.PlayerTicket(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, tk.ID, got.ID)
	assert.Equal(t, []string{"WestUs"}, got.Regions)

	left, err := s.Leave(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, domain.TicketCancelled, left.Status)
	_, err = s.Leave(ctx, "alice")
	assert.ErrorIs(t, err, domain.ErrNotFound)
}

// lead makes s the leader of its queues for the test, as runQueue would:
// formOnce works only under the lease.
func lead(t testing.TB, s *Service) {
	t.Helper()
	for _, q := range s.Queues {
		for _, name := range q.ShardNames() {
			held, err := s.Store.AcquireLease(context.Background(), name, s.NodeID, time.Hour)
			if err != nil || !held {
				t.Fatalf("lease of %s: held %v, %v", name, held, err)
			}
		}
	}
}

// Two nodes run formation on one Redis: the lease lets one lead, the atomic
// commit keeps every ticket in at most one match either way.
func TestTwoNodesFormEachTicketOnce(t *testing.T) {
	st := storetest.Embedded(t)
	notifier := &recordingNotifier{}
	nodes := []*Service{
		{Store: st, Queues: DefaultQueues(), NodeID: "n1", Notifier: notifier, FormInterval: time.Millisecond},
		{Store: st, Queues: DefaultQueues(), NodeID: "n2", Notifier: notifier, FormInterval: time.Millisecond},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.Run(ctx) }()
	}
	const players = 200
	for i := 0; i < players; i++ {
		_, err := nodes[i%2].Join(ctx, domain.Ticket{Queue: "default", Players: []domain.Player{{ID: fmt.Sprintf("p%03d", i)}}})
		require.NoError(t, err)
	}
	storetest.Eventually(t, 10*time.Second, func() bool { return len(notifier.found()) == players/4 },
		"expected %d matches, have %d", players/4, len(notifier.found()))
	cancel()
	wg.Wait()

	seen := map[string]string{}
	for _, m := range notifier.found() {
		assert.Len(t, m.Players, 4)
		for _, p := range m.Players {
			prev, dup := seen[p.ID]
			assert.False(t, dup, "player %s in matches %s and %s", p.ID, prev, m.ID)
			seen[p.ID] = m.ID
		}
	}
	assert.Len(t, seen, players)
	depth, err := st.QueueDepth(context.Background(), "default")
	require.NoError(t, err)
	assert.Zero(t, depth)
	ok, err := st.AcquireLease(context.Background(), "default", "n3", time.Second)
	require.NoError(t, err)
	assert.True(t, ok, "the leader released its lease on shutdown")
}

// A commit whose reply was lost is re-sent, finds its match already
// recorded, and the match is still announced (nobody announced it before).
func TestLostCommitReplyIsStillAnnounced(t *testing.T) {
	l := storetest.StartLossyRedis(t)
	notifier := &recordingNotifier{}
	s := &Service{Store: l.Store, Queues: DefaultQueues(), NodeID: "n", Notifier: notifier}
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		_, err := s.Join(ctx, domain.Ticket{Queue: "default", Players: []domain.Player{{ID: fmt.Sprint("p", i)}}})
		require.NoError(t, err)
	}
	lead(t, s)
	l.LoseReplyTo(`"ticketId":"`)
	_, err := s.formOnce(ctx, s.Queues[0])
	require.NoError(t, err)
	require.Equal(t, 1, l.Lost())
	require.Len(t, notifier.found(), 1, "the match was announced")
	assert.Len(t, notifier.found()[0].Players, 4)
}
