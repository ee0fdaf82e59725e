package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
			assert.Equal(t, tc.unavailable, store.IsUnavailable(err), "%v", err)
		})
	}
}

// A Redis nobody listens on, a connection cut mid-reply, a full pool and
// expired deadlines are unavailable; the store's own sentinels are not.
func TestIsUnavailableConnectionErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close() // nobody listens there now
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer rdb.Close()
		err = rdb.Ping(context.Background()).Err()
		require.Error(t, err)
		assert.True(t, store.IsUnavailable(fmt.Errorf("read match: %w", err)), "%v", err)
	})
	t.Run("connection closed mid-reply", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				buf := make([]byte, 512)
				c.Read(buf) // the command arrives; no reply is ever sent
				c.Close()
			}
		}()
		rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1, Protocol: 2})
		defer rdb.Close()
		err = rdb.Get(context.Background(), "k").Err()
		require.Error(t, err)
		assert.True(t, store.IsUnavailable(err), "%v", err)
	})
	for _, err := range []error{
		io.EOF, io.ErrUnexpectedEOF, redis.ErrPoolTimeout, redis.ErrClosed,
		context.DeadlineExceeded, fmt.Errorf("store party of match m: %w", context.DeadlineExceeded),
		&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")},
	} {
		assert.True(t, store.IsUnavailable(err), "%v", err)
	}
	for _, err := range []error{
		nil, redis.Nil, store.ErrNotFound, store.ErrConflict, store.ErrStaleAttempt, context.Canceled,
		errors.New("decode match m players: invalid character"),
	} {
		assert.False(t, store.IsUnavailable(err), "%v", err)
	}
}
