package partyalloc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/partyalloc"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// countingAllocator records calls and answers with a party or an error.
type countingAllocator struct {
	mu    sync.Mutex
	calls map[string]int
	fail  error
	block chan struct{} // if set, Allocate waits on it (or ctx)
}

func (a *countingAllocator) Allocate(ctx context.Context, m domain.Match) (partyalloc.Party, error) {
	a.mu.Lock()
	if a.calls == nil {
		a.calls = map[string]int{}
	}
	a.calls[m.ID]++
	fail, block := a.fail, a.block
	a.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return partyalloc.Party{}, ctx.Err()
		}
	}
	if fail != nil {
		return partyalloc.Party{}, fail
	}
	return partyalloc.Party{PartyID: m.ID, SerializedNetworkDescriptor: "desc-" + m.ID, InvitationID: "inv-" + m.ID}, nil
}

func (a *countingAllocator) callsFor(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[id]
}

type recordingNotifier struct {
	mu     sync.Mutex
	ready  []domain.Match
	failed []domain.Match
}

func (n *recordingNotifier) MatchReady(_ context.Context, m domain.Match) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ready = append(n.ready, m)
	return nil
}

func (n *recordingNotifier) MatchFailed(_ context.Context, m domain.Match) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.failed = append(n.failed, m)
	return nil
}

func (n *recordingNotifier) counts() (ready, failed int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.ready), len(n.failed)
}

// commitMatch puts two solo tickets in a committed match and returns it.
func commitMatch(t *testing.T, st *store.Store, created time.Time) domain.Match {
	t.Helper()
	ctx := context.Background()
	m := domain.Match{ID: uuid.NewString(), Regions: []string{"WestUs"}}
	for i := 0; i < 2; i++ {
		tk := domain.Ticket{ID: uuid.NewString(), Queue: "q", CreatedAt: created,
			Players: []domain.Player{{ID: fmt.Sprintf("%s-p%d", m.ID[:8], i)}}}
		require.NoError(t, st.CreateTicket(ctx, tk))
		m.TicketIDs = append(m.TicketIDs, tk.ID)
		m.Players = append(m.Players, domain.Player{ID: tk.Players[0].ID, TicketID: tk.ID})
	}
	res, err := st.CommitMatches(ctx, "q", []domain.Match{m})
	require.NoError(t, err)
	require.Equal(t, domain.CommitOK, res[0].Outcome)
	return m
}

// startWorker runs a worker until the test ends.
func startWorker(t *testing.T, w *partyalloc.Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func TestWorkerAllocatesOncePerMatch(t *testing.T) {
	st := storetest.Embedded(t)
	alloc, notify := &countingAllocator{}, &recordingNotifier{}
	startWorker(t, &partyalloc.Worker{Store: st, Allocator: alloc, Notifier: notify, Queues: []string{"q"}, NodeID: "n1"})
	var matches []domain.Match
	for i := 0; i < 20; i++ {
		matches = append(matches, commitMatch(t, st, time.Now()))
	}
	storetest.Eventually(t, 10*time.Second, func() bool { r, _ := notify.counts(); return r == 20 }, "20 matches ready")
	for _, m := range matches {
		assert.Equal(t, 1, alloc.callsFor(m.ID))
		stored, err := st.Match(context.Background(), "q", m.ID)
		require.NoError(t, err)
		assert.Equal(t, domain.MatchReady, stored.State)
		assert.Equal(t, "desc-"+m.ID, stored.NetworkDescriptor, "the stored result is the allocator's")
	}
	// Acks are batched after the announcement: wait for them.
	storetest.Eventually(t, 10*time.Second, func() bool {
		pending, err := st.PendingAllocationJobs(context.Background(), "q")
		return err == nil && pending == 0
	}, "every job was acknowledged")
}

func TestWorkerFailureRequeuesTickets(t *testing.T) {
	st := storetest.Embedded(t)
	alloc := &countingAllocator{fail: errors.New("playfab: InvalidParams")}
	notify := &recordingNotifier{}
	startWorker(t, &partyalloc.Worker{Store: st, Allocator: alloc, Notifier: notify, Queues: []string{"q"}, NodeID: "n1"})
	created := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	m := commitMatch(t, st, created)
	storetest.Eventually(t, 10*time.Second, func() bool { _, f := notify.counts(); return f == 1 }, "match failed")

	stored, err := st.Match(context.Background(), "q", m.ID)
	require.NoError(t, err)
	assert.Equal(t, domain.MatchFailed, stored.State)
	assert.Equal(t, partyalloc.FailReason, stored.FailReason)
	searching, err := st.SearchingTickets(context.Background(), "q", 10)
	require.NoError(t, err)
	require.Len(t, searching, 2, "both tickets are back in the queue")
	for _, tk := range searching {
		assert.True(t, created.Equal(tk.CreatedAt), "with their original wait")
	}
}

func TestWorkerDeliversAnAlreadyReadyMatchWithoutCallingAgain(t *testing.T) {
	st := storetest.Embedded(t)
	ctx := context.Background()
	m := commitMatch(t, st, time.Now())
	require.NoError(t, st.EnsureAllocationGroup(ctx, "q"))
	// A node stored the party, then died before acknowledging its job.
	jobs, err := st.ReadAllocationJobs(ctx, "q", "dead", 10, 0)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	owned, err := st.BeginAttempt(ctx, "q", m.ID, "dead")
	require.NoError(t, err)
	_, err = st.StoreParty(ctx, "q", m.ID, owned.Attempt, m.ID, "stored-desc", "stored-inv")
	require.NoError(t, err)

	alloc, notify := &countingAllocator{}, &recordingNotifier{}
	startWorker(t, &partyalloc.Worker{Store: st, Allocator: alloc, Notifier: notify, Queues: []string{"q"}, NodeID: "n2",
		Deadline: 10 * time.Millisecond, ClaimIdle: 25 * time.Millisecond, ClaimInterval: 10 * time.Millisecond})
	storetest.Eventually(t, 10*time.Second, func() bool { r, _ := notify.counts(); return r == 1 }, "delivered")
	assert.Zero(t, alloc.callsFor(m.ID), "no second RequestPartyService for a ready match")
	notify.mu.Lock()
	assert.Equal(t, "stored-desc", notify.ready[0].NetworkDescriptor, "the stored result is what is delivered")
	notify.mu.Unlock()
}

// A node takes a job and dies mid-allocation; another claims the job after
// ClaimIdle and finishes it. Exactly one result is stored and delivered.
func TestWorkerClaimsJobOfDeadNode(t *testing.T) {
	st := storetest.Embedded(t)
	m := commitMatch(t, st, time.Now())

	stuck := &countingAllocator{block: make(chan struct{})}
	deadCtx, kill := context.WithCancel(context.Background())
	deadDone := make(chan error, 1)
	dead := &partyalloc.Worker{Store: st, Allocator: stuck, Notifier: &recordingNotifier{}, Queues: []string{"q"}, NodeID: "dead",
		Deadline: 50 * time.Millisecond, ClaimIdle: 200 * time.Millisecond, ClaimInterval: time.Hour}
	go func() { deadDone <- dead.Run(deadCtx) }()
	storetest.Eventually(t, 10*time.Second, func() bool { return stuck.callsFor(m.ID) == 1 }, "the first node took the job")
	kill() // dies mid-call, before storing or acknowledging
	require.NoError(t, <-deadDone)

	alloc, notify := &countingAllocator{}, &recordingNotifier{}
	startWorker(t, &partyalloc.Worker{Store: st, Allocator: alloc, Notifier: notify, Queues: []string{"q"}, NodeID: "live",
		Deadline: 50 * time.Millisecond, ClaimIdle: 200 * time.Millisecond, ClaimInterval: 20 * time.Millisecond})
	storetest.Eventually(t, 10*time.Second, func() bool { r, _ := notify.counts(); return r == 1 }, "the live node finished the job")
	assert.Equal(t, 1, alloc.callsFor(m.ID))
	stored, err := st.Match(context.Background(), "q", m.ID)
	require.NoError(t, err)
	assert.Equal(t, domain.MatchReady, stored.State)
	assert.Equal(t, 2, stored.Attempt, "the second attempt stored the party")
}

// A live worker may hold a job for twice the deadline (allocating, then
// storing the result): a claim idle time within that would let another node
// start a second attempt while the first is still storing its party.
func TestWorkerRejectsClaimIdleWithinTwiceTheDeadline(t *testing.T) {
	for _, idle := range []time.Duration{time.Second, time.Minute, 2 * time.Minute} {
		w := &partyalloc.Worker{Store: storetest.Embedded(t), Queues: []string{"q"}, NodeID: "n",
			Deadline: time.Minute, ClaimIdle: idle}
		assert.ErrorContains(t, w.Run(context.Background()), "must exceed twice the deadline", "claim idle %v", idle)
	}
}

// The crash run, against the fake PlayFab through the real client: an
// allocator takes a job and dies while PlayFab is answering; another node
// claims the job and finishes it. PlayFab saw exactly one successful call
// for the match's PartyId, and the match holds that party.
func TestCrashedAllocatorAgainstPlayFab(t *testing.T) {
	fake := fakeplayfab.New(fakeplayfab.Config{TitleID: "T", SecretKey: "k", Logger: slog.New(slog.DiscardHandler),
		Faults: fakeplayfab.Faults{Latency: 300 * time.Millisecond}})
	pf := httptest.NewServer(fake)
	defer pf.Close()
	allocator := func() partyalloc.Allocator {
		return &partyalloc.PlayFabAllocator{
			Client: &partyalloc.PlayFabClient{BaseURL: pf.URL, TitleID: "T", SecretKey: "k", Logger: slog.New(slog.DiscardHandler)},
			Networks: map[string]partyalloc.NetworkConfiguration{"q": {
				MaxDevices: 2, MaxUsersPerDevice: 1, MaxDevicesPerUser: 1, MaxEndpointsPerDevice: 1}},
		}
	}
	st := storetest.Embedded(t)
	m := commitMatch(t, st, time.Now())
	timing := func(w *partyalloc.Worker) *partyalloc.Worker {
		w.Deadline, w.ClaimIdle, w.ClaimInterval = time.Second, 2200*time.Millisecond, 50*time.Millisecond
		return w
	}

	deadCtx, kill := context.WithCancel(context.Background())
	deadDone := make(chan error, 1)
	dead := timing(&partyalloc.Worker{Store: st, Allocator: allocator(), Notifier: &recordingNotifier{}, Queues: []string{"q"}, NodeID: "dead"})
	go func() { deadDone <- dead.Run(deadCtx) }()
	storetest.Eventually(t, 10*time.Second, func() bool { return fake.Stats().Parties[m.ID] == 1 },
		"PlayFab received the first allocator's call")
	kill() // dies mid-call: PlayFab has not answered yet
	require.NoError(t, <-deadDone)

	notify := &recordingNotifier{}
	startWorker(t, timing(&partyalloc.Worker{Store: st, Allocator: allocator(), Notifier: notify, Queues: []string{"q"}, NodeID: "live"}))
	storetest.Eventually(t, 10*time.Second, func() bool { r, _ := notify.counts(); return r == 1 }, "the job was finished")

	stats := fake.Stats()
	assert.Equal(t, 2, stats.Parties[m.ID], "two calls reached PlayFab")
	assert.Equal(t, 1, stats.Successes[m.ID], "exactly one succeeded")
	stored, err := st.Match(context.Background(), "q", m.ID)
	require.NoError(t, err)
	desc, _ := fake.Descriptor(m.ID)
	assert.Equal(t, desc, stored.NetworkDescriptor, "the match holds PlayFab's party")
}

// stuckAllocator never answers for one match (until its deadline) and
// answers every other at once.
type stuckAllocator struct {
	countingAllocator
	stuck string
}

func (a *stuckAllocator) Allocate(ctx context.Context, m domain.Match) (partyalloc.Party, error) {
	if m.ID == a.stuck {
		a.mu.Lock()
		if a.calls == nil {
			a.calls = map[string]int{}
		}
		a.calls[m.ID]++
		a.mu.Unlock()
		<-ctx.Done()
		return partyalloc.Party{}, ctx.Err()
	}
	return a.countingAllocator.Allocate(ctx, m)
}

// A job that waits for a free slot longer than a quarter of the deadline
// gets its clock restarted in the stream when it starts, so it still gets
// a whole deadline (and no other node claims it meanwhile).
func TestWorkerJobThatWaitedForASlotGetsAWholeDeadline(t *testing.T) {
	st := storetest.Embedded(t)
	first := commitMatch(t, st, time.Now())
	second := commitMatch(t, st, time.Now())
	alloc, notify := &stuckAllocator{stuck: first.ID}, &recordingNotifier{}
	startWorker(t, &partyalloc.Worker{Store: st, Allocator: alloc, Notifier: notify, Queues: []string{"q"}, NodeID: "n1",
		Concurrency: 1, Deadline: 300 * time.Millisecond, ClaimIdle: time.Hour, ClaimInterval: time.Hour})
	// The first job holds the only slot for its whole deadline, then fails.
	storetest.Eventually(t, 10*time.Second, func() bool { r, f := notify.counts(); return r == 1 && f == 1 },
		"the second match was allocated after waiting a whole deadline for its slot")
	assert.Equal(t, 1, alloc.callsFor(second.ID))
	stored, err := st.Match(context.Background(), "q", second.ID)
	require.NoError(t, err)
	assert.Equal(t, domain.MatchReady, stored.State)
}

// A worker stopped while it is still starting (creating its consumer
// groups) returns no error: a node shut down right after start-up is a
// clean shutdown.
func TestWorkerStoppedWhileStartingReturnsNil(t *testing.T) {
	st := storetest.Embedded(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := &partyalloc.Worker{Store: st, Allocator: &countingAllocator{}, Notifier: &recordingNotifier{},
		Queues: []string{"q"}, NodeID: "n1"}
	assert.NoError(t, w.Run(ctx))
}
