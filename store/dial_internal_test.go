package store

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// go-redis's health check may touch a connection's socket only when the
// connection has been idle: recently used, it gets a stand-in that reports
// the socket healthy without a system call.
func TestPeekOnlyIdleConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			c.Read(make([]byte, 1)) // hold it open until the client closes
		}
	}()
	c, err := dialPeekIdle(context.Background(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	pc := c.(*peekIdleConn)

	raw, err := pc.SyscallConn()
	require.NoError(t, err)
	assert.IsType(t, recentlyUsed{}, raw, "just dialled: not peeked")

	pc.lastUsed.Store(time.Now().Add(-2 * peekIdleAfter).UnixNano())
	raw, err = pc.SyscallConn()
	require.NoError(t, err)
	assert.NotEqual(t, recentlyUsed{}, raw, "idle: the real socket, for the peek")
	peeked := false
	require.NoError(t, raw.Read(func(fd uintptr) bool { peeked = true; return true }))
	assert.True(t, peeked)

	_, err = pc.Write([]byte("x"))
	require.NoError(t, err)
	raw, err = pc.SyscallConn()
	require.NoError(t, err)
	assert.IsType(t, recentlyUsed{}, raw, "used again: not peeked")
}
