package partyalloc_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/internal/testutil"
	"github.com/lobbyd/lobbyd/partyalloc"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// loadingReply is what a Redis restarting with persistence answers while it
// loads its data; every command fails with it while the test says so.
const loadingReply = "LOADING Redis is loading the dataset in memory"

// outage is a worker on a Redis (miniredis) the test can make fail, with
// an allocator that answers when the test releases it.
type outage struct {
	mr     *miniredis.Miniredis
	st     *store.Store
	alloc  *countingAllocator
	notify *recordingNotifier
	reg    *prometheus.Registry
	logs   *testutil.SyncBuffer
	m      domain.Match
	stop   func() // stops the worker and waits for Run to return
}

// startOutage commits a match and runs a worker on it with the given
// deadline; the allocator has received the match's call when it returns.
func startOutage(t *testing.T, deadline time.Duration) *outage {
	t.Helper()
	o := &outage{mr: miniredis.RunT(t), alloc: &countingAllocator{block: make(chan struct{})},
		notify: &recordingNotifier{}, reg: prometheus.NewRegistry(), logs: &testutil.SyncBuffer{}}
	var err error
	o.st, err = store.Open(context.Background(), store.Config{URL: "redis://" + o.mr.Addr()})
	require.NoError(t, err)
	t.Cleanup(func() { o.st.Close() })
	o.m = commitMatch(t, o.st, time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	w := &partyalloc.Worker{Store: o.st, Allocator: o.alloc, Notifier: o.notify, Queues: []string{"q"}, NodeID: "n1",
		Registerer: o.reg, Logger: slog.New(slog.NewTextHandler(o.logs, nil)),
		Deadline: deadline, ClaimInterval: time.Hour} // no claims: this test is about one attempt
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	o.stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(o.stop)
	storetest.Eventually(t, 10*time.Second, func() bool { return o.alloc.callsFor(o.m.ID) == 1 }, "the allocator was called")
	return o
}

// answerDuringOutage makes Redis fail, then lets the allocator answer with
// the match's party, and waits until storing it has been tried again.
func (o *outage) answerDuringOutage(t *testing.T) {
	t.Helper()
	o.mr.SetError(loadingReply)
	close(o.alloc.block)
	storetest.Eventually(t, 10*time.Second, func() bool {
		return counter(t, o.reg, "lobbyd_allocation_write_retries_total") >= 1
	}, "storing the party was retried")
}

// The party PlayFab created while Redis was down is stored once Redis is
// back, within the deadline, and delivered: one allocator call, no orphan.
func TestWorkerStoresPartyAfterRedisOutage(t *testing.T) {
	o := startOutage(t, 30*time.Second)
	o.answerDuringOutage(t)
	r, _ := o.notify.counts()
	require.Zero(t, r, "nothing is delivered while Redis is down")

	o.mr.SetError("")
	storetest.Eventually(t, 10*time.Second, func() bool { r, _ := o.notify.counts(); return r == 1 }, "delivered once Redis is back")
	assert.Equal(t, 1, o.alloc.callsFor(o.m.ID), "one allocator call: the party already paid for is the one stored")
	stored, err := o.st.Match(context.Background(), "q", o.m.ID)
	require.NoError(t, err)
	assert.Equal(t, domain.MatchReady, stored.State)
	assert.Equal(t, "desc-"+o.m.ID, stored.NetworkDescriptor)
	assert.Equal(t, 1, stored.Attempt, "stored by the first attempt")
	storetest.Eventually(t, 10*time.Second, func() bool {
		n, err := o.st.PendingAllocationJobs(context.Background(), "q")
		return err == nil && n == 0
	}, "the job was acknowledged")
	assert.Zero(t, counter(t, o.reg, "lobbyd_orphan_parties_total"))
	assert.NotContains(t, o.logs.String(), "orphaned")
}

// Redis stays down past the deadline: the party is counted as an orphan and
// logged once with its PartyId; the job stays pending for a later attempt.
func TestWorkerCountsPartyOrphanedAtDeadline(t *testing.T) {
	o := startOutage(t, 2*time.Second) // the allocator answers at once, the writes get 2s
	o.answerDuringOutage(t)
	storetest.Eventually(t, 10*time.Second, func() bool {
		return counter(t, o.reg, "lobbyd_orphan_parties_total") == 1
	}, "the party was counted as orphaned")
	o.mr.SetError("")
	o.stop()

	assert.Equal(t, 1, strings.Count(o.logs.String(), "party left orphaned"), "logged once:\n%s", o.logs)
	assert.Contains(t, o.logs.String(), "level=WARN msg=\"party left orphaned: its result could not be stored before the deadline\"")
	assert.Contains(t, o.logs.String(), "party="+o.m.ID)
	stored, err := o.st.Match(context.Background(), "q", o.m.ID)
	require.NoError(t, err)
	assert.Equal(t, domain.MatchAllocating, stored.State, "nothing was stored")
	n, err := o.st.PendingAllocationJobs(context.Background(), "q")
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the job stays pending, to be claimed")
	r, f := o.notify.counts()
	assert.Zero(t, r+f, "nothing was delivered")
}

// The node stops while the party's result cannot be stored: it does not
// hold shutdown up until the deadline, and the abandoned party is counted
// and logged.
func TestWorkerCountsPartyAbandonedAtShutdown(t *testing.T) {
	o := startOutage(t, time.Minute)
	o.answerDuringOutage(t)
	o.stop()

	assert.EqualValues(t, 1, counter(t, o.reg, "lobbyd_orphan_parties_total"))
	assert.Equal(t, 1, strings.Count(o.logs.String(), "party left orphaned"), "logged once:\n%s", o.logs)
	assert.Contains(t, o.logs.String(), "party left orphaned: shutting down before its result was stored")
	assert.Contains(t, o.logs.String(), "party="+o.m.ID)
}

// counter reads a counter (or gauge) of reg, summed over its series; 0 if
// it was never set.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	v, _ := testutil.Metric(t, reg, name, nil)
	return v
}
