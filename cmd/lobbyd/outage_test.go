package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/store/storetest"
)

func (s *server) readyStatus(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(s.URL + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// Redis dies and comes back empty: lobbyd answers unavailable meanwhile,
// never crashes, keeps its sockets, and matches players again afterwards
// (subscription, consumer group and scripts restored).
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	srv, fake := startWithFake(t, r.URL)
	token, _ := srv.devToken(t, "survivor", "")
	lateToken, _ := srv.devToken(t, "latecomer", "")
	survivor, _ := srv.connect(t, token)
	require.True(t, survivor.Request("queue.join", map[string]any{"queue": "default"}).OK())

	r.Stop()
	storetest.Eventually(t, 10*time.Second, func() bool { return srv.readyStatus(t) == http.StatusServiceUnavailable },
		"/readyz reports the outage")
	reply := survivor.Request("queue.leave", nil)
	assert.False(t, reply.OK())
	assert.Equal(t, "unavailable", reply.ErrorCode(), "an outage is retryable, not internal: %v", reply)
	assert.True(t, survivor.Request("ping", nil).OK(), "the socket survives the outage")
	latecomer, _, err := lobbytest.Dial(t, srv.wsURL(), http.Header{"Authorization": {"Bearer " + lateToken}})
	require.NoError(t, err, "the handshake needs no Redis")
	assert.Equal(t, 1011, latecomer.CloseCode(), "no state to welcome with: close 1011, reconnect later")

	require.NoError(t, r.Start())
	storetest.Eventually(t, 15*time.Second, func() bool { return srv.readyStatus(t) == http.StatusOK }, "ready again")

	// Redis came back empty: four new players go through the whole flow.
	var players []*lobbytest.Client
	for i := 0; i < 4; i++ {
		tok, _ := srv.devToken(t, fmt.Sprint("after-", i), "")
		c, _ := srv.connect(t, tok)
		players = append(players, c)
	}
	for _, c := range players {
		// The first joins may race the leader re-taking its lease; retry
		// only the unavailable answer.
		storetest.Eventually(t, 10*time.Second, func() bool {
			r := c.Request("queue.join", map[string]any{"queue": "default"})
			return r.OK() || r.ErrorCode() != "unavailable"
		}, "queue.join after the outage")
	}
	var matchID string
	for _, c := range players {
		ready := c.Next("match.ready")
		if matchID == "" {
			matchID = ready.Str("matchId")
		}
		assert.Equal(t, matchID, ready.Str("matchId"))
	}
	assert.Equal(t, 1, fake.Stats().Parties[matchID])
}
