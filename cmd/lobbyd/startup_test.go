package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/store/storetest"
)

// lobbyd started before Redis waits for it: until lobbyd has logged that
// Redis is not reachable yet, a listener on Redis's port hangs up on every
// connection (as a starting container might); then redis-server comes up
// there and lobbyd serves.
func TestStartsBeforeRedis(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	r.Stop()
	ln, err := net.Listen("tcp", r.Addr)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() }) // ends the acceptor if run fails early
	env := map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_REDIS_URL": r.URL}
	var stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	exited := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, pw, &stderr)
		pw.CloseWithError(io.EOF)
		exited <- err
	}()
	started := make(chan error, 1)
	go func() {
		for !strings.Contains(stderr.String(), "redis is not reachable yet") {
			c, err := ln.Accept()
			if err != nil {
				started <- err
				return
			}
			c.Close()
		}
		ln.Close()
		started <- r.Start()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "stderr:\n%s", stderr.String())
	go io.Copy(io.Discard, pr)
	require.NoError(t, <-started)
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "lobbyd listening on ")
	require.True(t, ok, line)
	s := &server{URL: base}
	tok, _ := s.devToken(t, "early", "")
	c, _ := s.connect(t, tok)
	assert.True(t, c.Request("queue.join", map[string]any{"queue": "default"}).OK(), "it serves")
	assert.Contains(t, stderr.String(), "connected to redis")
	cancel()
	require.NoError(t, <-exited)
}

// With no Redis at all, lobbyd gives up after LOBBYD_REDIS_START_TIMEOUT
// and says so.
func TestGivesUpOnRedisAtStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	env := map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_REDIS_URL": "redis://:hunter2hunter2@" + addr,
		"LOBBYD_REDIS_START_TIMEOUT": "4s"}
	var stderr syncBuffer
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gave up after")
	assert.Contains(t, stderr.String(), "redis is not reachable yet")
	assert.NotContains(t, err.Error()+stderr.String(), "hunter2", "the Redis password is never shown")
}
