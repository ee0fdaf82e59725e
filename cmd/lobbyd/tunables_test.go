package main

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tunables keep their defaults and reach the component that uses them.
func TestTunablesReachTheirComponents(t *testing.T) {
	c, err := loadConfig(nil, envOf(map[string]string{"LOBBYD_DEV_AUTH": "true"}), io.Discard)
	require.NoError(t, err)
	gw, mm, w := newGateway(c, nil, nil, nil, nil, nil), newMatchmaker(c, nil, nil, nil, nil, nil), newWorker(c, nil, nil, nil, nil, nil, nil)
	assert.Equal(t, 25*time.Second, gw.PingInterval)
	assert.Equal(t, 64, gw.SendQueue)
	assert.Equal(t, 5*time.Second, mm.LeaseTTL)
	assert.Equal(t, 256, w.Concurrency)

	c, err = loadConfig([]string{"-allocation-concurrency", "3"}, envOf(map[string]string{"LOBBYD_DEV_AUTH": "true",
		"LOBBYD_PING_INTERVAL": "2s", "LOBBYD_SEND_QUEUE": "16", "LOBBYD_QUEUE_LEASE_TTL": "1m"}), io.Discard)
	require.NoError(t, err)
	gw, mm, w = newGateway(c, nil, nil, nil, nil, nil), newMatchmaker(c, nil, nil, nil, nil, nil), newWorker(c, nil, nil, nil, nil, nil, nil)
	assert.Equal(t, 2*time.Second, gw.PingInterval)
	assert.Equal(t, 16, gw.SendQueue)
	assert.Equal(t, time.Minute, mm.LeaseTTL)
	assert.Equal(t, 3, w.Concurrency)

	for env, value := range map[string]string{
		"LOBBYD_PING_INTERVAL": "60s", "LOBBYD_SEND_QUEUE": "4", "LOBBYD_QUEUE_LEASE_TTL": "100ms", "LOBBYD_ALLOCATION_CONCURRENCY": "0",
	} {
		_, err := loadConfig(nil, envOf(map[string]string{"LOBBYD_DEV_AUTH": "true", env: value}), io.Discard)
		require.Error(t, err, "%s=%s", env, value)
		assert.Contains(t, err.Error(), env)
	}
}

// LOBBYD_PING_INTERVAL paces the pings a connected client gets.
func TestPingIntervalSetting(t *testing.T) {
	srv := startServer(t, map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_PING_INTERVAL": "1s"})
	token, _ := srv.devToken(t, "pinged", "")
	conn, _, err := websocket.DefaultDialer.Dial(srv.wsURL(), http.Header{"Authorization": {"Bearer " + token}})
	require.NoError(t, err)
	defer conn.Close()
	pinged := make(chan struct{}, 8)
	conn.SetPingHandler(func(string) error {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return nil
	})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	// The default interval is 25s: two pings within 10s come from the setting.
	deadline := time.After(10 * time.Second)
	for range 2 {
		select {
		case <-pinged:
		case <-deadline:
			t.Fatal("fewer than two pings within 10s with LOBBYD_PING_INTERVAL=1s")
		}
	}
	conn.Close()
	<-readDone
}

// LOBBYD_QUEUE_LEASE_TTL is the life of the queue lease written to Redis.
func TestQueueLeaseTTLSetting(t *testing.T) {
	m := miniredis.RunT(t)
	startServer(t, map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_REDIS_URL": "redis://" + m.Addr(), "LOBBYD_QUEUE_LEASE_TTL": "40s"})
	const lease = "{q:default}:lease"
	require.Eventually(t, func() bool { return m.Exists(lease) }, 10*time.Second, 10*time.Millisecond, "the default queue's lease is taken")
	ttl := m.TTL(lease)
	assert.Greater(t, ttl, 5*time.Second, "longer than the 5s default")
	assert.LessOrEqual(t, ttl, 40*time.Second)
}
