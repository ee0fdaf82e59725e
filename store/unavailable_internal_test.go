package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
)

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
		assert.True(t, isUnavailable(fmt.Errorf("read match: %w", err)), "%v", err)
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
		assert.True(t, isUnavailable(err), "%v", err)
	})
	for _, err := range []error{
		io.EOF, io.ErrUnexpectedEOF, redis.ErrPoolTimeout, redis.ErrClosed,
		context.DeadlineExceeded, fmt.Errorf("store party of match m: %w", context.DeadlineExceeded),
		&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")},
	} {
		assert.True(t, isUnavailable(err), "%v", err)
	}
	for _, err := range []error{
		nil, redis.Nil, domain.ErrNotFound, domain.ErrConflict, domain.ErrStaleAttempt, context.Canceled,
		errors.New("decode match m players: invalid character"),
	} {
		assert.False(t, isUnavailable(err), "%v", err)
	}
}

// A marked error keeps its message and its chain, and is marked once.
func TestMarkUnavailable(t *testing.T) {
	err, marked := markUnavailable(io.EOF)
	require.True(t, marked)
	assert.ErrorIs(t, err, domain.ErrUnavailable)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, io.EOF.Error(), err.Error())
	again, marked := markUnavailable(fmt.Errorf("read: %w", err))
	assert.False(t, marked, "already marked")
	assert.ErrorIs(t, again, domain.ErrUnavailable)
	notFound, marked := markUnavailable(domain.ErrNotFound)
	assert.False(t, marked)
	assert.Same(t, domain.ErrNotFound, notFound)
}
