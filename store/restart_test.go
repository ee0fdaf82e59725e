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

// A Redis that restarts empty (no persistence) loses the consumer group,
// presence and loaded scripts; the store must carry on regardless.
func TestStoreRecoversFromAnEmptyRestart(t *testing.T) {
	r := storetest.StartRedis(t)
	s, err := store.Open(context.Background(), store.Config{URL: r.URL})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	require.NoError(t, s.EnsureAllocationGroup(ctx, "q"))
	me := domain.Presence{NodeID: "n1", ConnID: "c1"}
	_, _, err = s.SetPresence(ctx, "alice", me, time.Minute)
	require.NoError(t, err)

	r.Stop()
	require.NoError(t, r.Start())
	storetest.Eventually(t, 10*time.Second, func() bool { return s.Ping(ctx) == nil }, "reconnected")

	tk := soloTicket("q", "bob", time.Now())
	require.NoError(t, s.CreateTicket(ctx, tk))
	_, err = s.CommitMatches(ctx, "q", []domain.Match{matchOf(tk)})
	require.NoError(t, err)
	jobs, err := s.ReadAllocationJobs(ctx, "q", "n1", 10, 0)
	require.NoError(t, err, "the lost consumer group is recreated")
	assert.Len(t, jobs, 1)
	_, err = s.ClaimStaleAllocationJobs(ctx, "q", "n1", time.Hour, 10)
	require.NoError(t, err)

	restored, err := s.RefreshPresence(ctx, map[string]domain.Presence{"alice": me}, time.Minute)
	require.NoError(t, err, "pipelined scripts are reloaded after NOSCRIPT")
	assert.Equal(t, map[string]domain.Presence{"alice": me}, restored, "the lost presence is reported restored")
	prev, found, err := s.SetPresence(ctx, "alice", domain.Presence{NodeID: "n2", ConnID: "c2"}, time.Minute)
	require.NoError(t, err)
	assert.True(t, found, "refresh restored the lost presence")
	assert.Equal(t, me, prev)
}
