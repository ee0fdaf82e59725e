package store_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/store"
)

// Replies that mean "Redis cannot serve this now" are unavailable; replies
// about the command itself are not. Each reply comes from a real round trip
// (miniredis answering every command with it), through a store operation,
// so the wrapping the callers see is the one classified.
func TestIsUnavailableRedisReplies(t *testing.T) {
	for _, tc := range []struct {
		reply       string
		unavailable bool
	}{
		{"LOADING Redis is loading the dataset in memory", true},
		{"READONLY You can't write against a read only replica.", true},
		{"CLUSTERDOWN The cluster is down", true},
		{"TRYAGAIN Multiple keys request during rehashing of slot", true},
		{"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", true},
		{"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.", true},
		{"NOREPLICAS Not enough good replicas to write.", true},
		{"ERR syntax error", false},
		{"WRONGTYPE Operation against a key holding the wrong kind of value", false},
		{"BUSYGROUP Consumer Group name already exists", false},
		{"NOSCRIPT No matching script. Please use EVAL.", false},
		{"OOM command not allowed when used memory > 'maxmemory'.", false},
	} {
		t.Run(tc.reply[:min(len(tc.reply), 12)], func(t *testing.T) {
			mr := miniredis.RunT(t)
			s, err := store.Open(context.Background(), store.Config{URL: "redis://" + mr.Addr()})
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			mr.SetError(tc.reply)
			// Bounded: go-redis retries some of these replies itself.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = s.Match(ctx, "q", "m1")
			require.Error(t, err)
			assert.False(t, errors.Is(err, context.DeadlineExceeded), "answered before the test's deadline: %v", err)
			assert.Equal(t, tc.unavailable, errors.Is(err, domain.ErrUnavailable), "%v", err)
		})
	}
}

// What a store operation returns while Redis is unreachable is marked
// unavailable: here Redis went away after the store connected, and the
// pool's connections are refused or cut.
func TestStoreMarksAnUnreachableRedisUnavailable(t *testing.T) {
	mr := miniredis.RunT(t)
	s, err := store.Open(context.Background(), store.Config{URL: "redis://" + mr.Addr()})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	mr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = s.Match(ctx, "q", "m1")
	require.Error(t, err)
	assert.True(t, errors.Is(err, domain.ErrUnavailable), "%v", err)
	_, err = s.Subscribe(ctx, "node-1")
	require.Error(t, err)
	assert.True(t, errors.Is(err, domain.ErrUnavailable), "a subscription too: %v", err)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "the cause stays in the chain")
}
