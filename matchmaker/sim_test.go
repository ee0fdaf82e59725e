package matchmaker

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// clock is a virtual clock for simulations.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func simQueue() Queue {
	q := Queue{
		Name: "sim", MaxUsers: 4,
		Regions:       []string{"EastUs", "WestUs", "NorthEurope", "WestEurope"},
		TicketTimeout: Duration(10 * time.Minute), MaxWait: Duration(60 * time.Second),
		Skill:        SkillRule{InitialWindow: 100, WidenPerSecond: 20, MaxWindow: 600},
		MaxLatencyMs: 150,
	}
	return q
}

// TestSimulation runs 10,000 tickets of random sizes, skills, regions and
// arrival times (seeded: every run gets the same tickets, while how many
// match varies a little with where the leader's passes fall) through the
// real formation and commit on a redis-server (its CPU outside the race
// detector), and checks every match against the rules: no ticket twice,
// exactly MaxUsers players, a region every member accepts leading
// PreferredRegions, and a skill spread within the window allowed at its
// oldest member's wait (or that member waited MaxWait).
func TestSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 tickets")
	}
	t.Parallel()
	const tickets = 10000
	rng := rand.New(rand.NewPCG(2026, 11))
	q := simQueue()
	vc := &clock{now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	notifier := &recordingNotifier{}
	s := &Service{Store: storetest.Real(t), Queues: []Queue{q}, NodeID: "sim", Notifier: notifier, Now: vc.Now}
	lead(t, s)

	byID := simulate(t, s, q, vc, rng, tickets, 700, func(i int) domain.Ticket { return randomTicket(rng, q, i) })

	matched := map[string]string{}
	for _, m := range notifier.found() {
		require.Len(t, m.Players, q.MaxUsers, "match %s", m.ID)
		require.NotEmpty(t, m.Regions)
		lo, hi := math.Inf(1), math.Inf(-1)
		oldest := m.CreatedAt
		for _, id := range m.TicketIDs {
			prev, twice := matched[id]
			require.False(t, twice, "ticket %s in matches %s and %s", id, prev, m.ID)
			matched[id] = m.ID
			tk := byID[id]
			for _, r := range m.Regions {
				assert.True(t, slices.ContainsFunc(acceptable(q, tk), func(x region) bool { return x.name == r }),
					"region %s of match %s is acceptable to ticket %s", r, m.ID, id)
			}
			lo, hi = math.Min(lo, tk.Skill), math.Max(hi, tk.Skill)
			if tk.CreatedAt.Before(oldest) {
				oldest = tk.CreatedAt
			}
		}
		wait := m.CreatedAt.Sub(oldest)
		if wait < q.MaxWait.D() {
			assert.LessOrEqual(t, hi-lo, q.Skill.Window(wait)+1e-9,
				"match %s: spread %.0f at oldest wait %v (window %.0f)", m.ID, hi-lo, wait, q.Skill.Window(wait))
		}
	}
	expired := len(notifier.expired)
	t.Logf("%d tickets: %d matched in %d matches, %d expired, %d still searching",
		len(byID), len(matched), len(notifier.found()), expired, len(byID)-len(matched)-expired)
	assert.Greater(t, len(matched), tickets*9/10, "most tickets find a match")
}

// simulate joins n tickets made by next to s's queue q, 0 to 28 (14 on
// average) each virtual second, and runs the formation passes of each
// second, for at least the given seconds; it returns the tickets joined,
// by id.
func simulate(t *testing.T, s *Service, q Queue, vc *clock, rng *rand.Rand, n, seconds int, next func(i int) domain.Ticket) map[string]domain.Ticket {
	t.Helper()
	ctx := context.Background()
	byID := map[string]domain.Ticket{}
	created := 0
	for step := 0; created < n || step < seconds; step++ {
		for k := rng.IntN(29); k > 0 && created < n; k-- {
			joined, err := s.Join(ctx, next(created))
			require.NoError(t, err)
			byID[joined.ID] = joined
			created++
		}
		for _, name := range q.ShardNames() { // a split queue's shards, each its own pool
			shard, ok := s.shard(name)
			require.True(t, ok, name)
			for {
				full, err := s.formOnce(ctx, shard)
				require.NoError(t, err)
				if !full {
					break
				}
			}
		}
		vc.Advance(time.Second)
	}
	return byID
}

// randomTicket makes ticket number i: mostly solos, some lobbies; skill
// around 1500; a third with explicit regions, a third with latencies, a
// third with neither.
func randomTicket(rng *rand.Rand, q Queue, i int) domain.Ticket {
	size := 1
	switch r := rng.IntN(100); {
	case r >= 95:
		size = 4
	case r >= 85:
		size = 3
	case r >= 70:
		size = 2
	}
	tk := domain.Ticket{Queue: q.Name, Skill: math.Round(1500 + rng.NormFloat64()*300)}
	for p := 0; p < size; p++ {
		tk.Players = append(tk.Players, domain.Player{ID: fmt.Sprintf("p%05d-%d", i, p)})
	}
	switch rng.IntN(3) {
	case 0:
		perm := rng.Perm(len(q.Regions))
		for _, k := range perm[:1+rng.IntN(2)] {
			tk.Regions = append(tk.Regions, q.Regions[k])
		}
	case 1:
		tk.Latencies = map[string]int{}
		for _, r := range q.Regions {
			tk.Latencies[r] = 20 + rng.IntN(200)
		}
		tk.Latencies[q.Regions[rng.IntN(len(q.Regions))]] = 20 + rng.IntN(100) // at least one usable
	}
	return tk
}

// A ticket that waited past MaxWait is placed before newer tickets it is
// compatible with; before that, the skill rule keeps it apart.
func TestOldTicketIsNotOvertaken(t *testing.T) {
	q := simQueue()
	vc := &clock{now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	notifier := &recordingNotifier{}
	s := &Service{Store: storetest.Embedded(t), Queues: []Queue{q}, NodeID: "n", Notifier: notifier, Now: vc.Now}
	lead(t, s)
	ctx := context.Background()
	join := func(name string, skill float64) string {
		tk, err := s.Join(ctx, domain.Ticket{Queue: q.Name, Skill: skill, Players: []domain.Player{{ID: name}}})
		require.NoError(t, err)
		vc.Advance(time.Millisecond)
		return tk.ID
	}
	form := func() {
		_, err := s.formOnce(ctx, q)
		require.NoError(t, err)
	}
	veteran := join("veteran", 3000) // far above everyone else
	for i := 0; i < 3; i++ {
		join(fmt.Sprint("early", i), 1000)
	}
	form()
	assert.Empty(t, notifier.found(), "a 2000-point spread does not fit the window yet")

	vc.Advance(q.MaxWait.D())
	for i := 0; i < 4; i++ {
		join(fmt.Sprint("late", i), 1000) // enough to form a match without the veteran
	}
	form()
	found := notifier.found()
	require.NotEmpty(t, found)
	assert.Contains(t, found[0].TicketIDs, veteran, "past MaxWait the oldest ticket is placed first")
}

func TestTicketsExpire(t *testing.T) {
	q := simQueue()
	q.TicketTimeout = Duration(time.Minute)
	vc := &clock{now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	notifier := &recordingNotifier{}
	st := storetest.Embedded(t)
	s := &Service{Store: st, Queues: []Queue{q}, NodeID: "n", Notifier: notifier, Now: vc.Now}
	lead(t, s)
	ctx := context.Background()
	old, err := s.Join(ctx, domain.Ticket{Queue: q.Name, Players: []domain.Player{{ID: "old"}}})
	require.NoError(t, err)
	vc.Advance(50 * time.Second)
	young, err := s.Join(ctx, domain.Ticket{Queue: q.Name, Players: []domain.Player{{ID: "young"}}})
	require.NoError(t, err)
	vc.Advance(11 * time.Second)
	_, err = s.formOnce(ctx, q)
	require.NoError(t, err)

	require.Len(t, notifier.expired, 1)
	assert.Equal(t, old.ID, notifier.expired[0].ID)
	assert.Equal(t, domain.TicketExpired, notifier.expired[0].Status)
	_, err = st.Ticket(ctx, q.Name, old.ID)
	assert.ErrorIs(t, err, domain.ErrNotFound, "a finished ticket keeps nothing to read")
	depth, err := st.QueueDepth(ctx, q.Name)
	require.NoError(t, err)
	assert.EqualValues(t, 1, depth, "the expired ticket left the queue")
	_, err = st.PlayerTicket(ctx, "old")
	assert.ErrorIs(t, err, domain.ErrNotFound, "the player may queue again")
	still, err := st.Ticket(ctx, q.Name, young.ID)
	require.NoError(t, err)
	assert.Equal(t, domain.TicketSearching, still.Status)
}

func TestRegionRules(t *testing.T) {
	q := simQueue() // MaxLatencyMs 150
	for _, tc := range []struct {
		name    string
		tickets []domain.Ticket
		want    []string // PreferredRegions of the one match, nil for none
	}{
		{
			name: "worst latency orders the common regions",
			tickets: []domain.Ticket{
				{Latencies: map[string]int{"EastUs": 40, "WestUs": 90, "NorthEurope": 140}},
				{Latencies: map[string]int{"EastUs": 120, "WestUs": 60, "NorthEurope": 30}},
				{Regions: []string{"NorthEurope", "WestUs", "EastUs"}},
				{},
			},
			want: []string{"WestUs", "EastUs", "NorthEurope"}, // worst 90, 120, 140
		},
		{
			name: "latency over the queue's limit is not acceptable",
			tickets: []domain.Ticket{
				{Latencies: map[string]int{"EastUs": 200, "WestUs": 40}},
				{Regions: []string{"EastUs"}}, {}, {},
			},
		},
		{
			name: "orderings decide among unmeasured regions",
			tickets: []domain.Ticket{
				{Regions: []string{"WestEurope", "NorthEurope"}},
				{Regions: []string{"NorthEurope", "WestEurope"}},
				{Regions: []string{"NorthEurope", "WestEurope"}},
				{},
			},
			want: []string{"NorthEurope", "WestEurope"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			for i := range tc.tickets {
				tc.tickets[i].ID = fmt.Sprint("t", i)
				tc.tickets[i].CreatedAt = now
				tc.tickets[i].Players = []domain.Player{{ID: fmt.Sprint("p", i)}}
			}
			got := formMatches(q, tc.tickets, now)
			if tc.want == nil {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			assert.Equal(t, tc.want, got[0].Regions)
		})
	}
}
