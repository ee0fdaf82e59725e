package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// startWithFake starts lobbyd in dev mode against a fake PlayFab whose
// counters the test can read, on the given Redis (empty: embedded).
func startWithFake(t *testing.T, redisURL string) (*server, *fakeplayfab.Server) {
	t.Helper()
	return startWithFakeConfig(t, fakeplayfab.Config{}, map[string]string{"LOBBYD_REDIS_URL": redisURL})
}

// startWithFakeConfig starts lobbyd against a fake made from cfg (title
// E2E), with env added to the dev-mode environment.
func startWithFakeConfig(t *testing.T, cfg fakeplayfab.Config, env map[string]string) (*server, *fakeplayfab.Server) {
	t.Helper()
	cfg.TitleID = "E2E"
	if cfg.SecretKey == "" {
		cfg.SecretKey = "e2e-title-secret"
	}
	fake := fakeplayfab.New(cfg)
	fsrv := httptest.NewServer(fake)
	t.Cleanup(fsrv.Close)
	full := map[string]string{
		"LOBBYD_DEV_AUTH":           "true",
		"LOBBYD_PLAYFAB_TITLE_ID":   "E2E",
		"LOBBYD_PLAYFAB_SECRET_KEY": "e2e-title-secret",
		"LOBBYD_PLAYFAB_BASE_URL":   fsrv.URL,
	}
	for k, v := range env {
		full[k] = v
	}
	return startServer(t, full), fake
}

// TestEndToEnd: 40 players queue alone in a MaxUsers 4 queue and end up in
// 10 matches, each allocated by exactly one RequestPartyService call, and
// every player gets exactly one match.ready with their match's party.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	for _, tier := range []struct {
		name  string
		redis func(t *testing.T) string
	}{
		{"miniredis", func(*testing.T) string { return "" }},
		{"redis-server", func(t *testing.T) string { return storetest.StartRedis(t).URL }},
	} {
		t.Run(tier.name, func(t *testing.T) { testEndToEnd(t, tier.redis(t)) })
	}
}

func testEndToEnd(t *testing.T, redisURL string) {
	srv, fake := startWithFake(t, redisURL)
	const players = 40
	clients := make([]*lobbytest.Client, players)
	ids := make([]string, players)
	for i := range clients {
		token, id := srv.devToken(t, fmt.Sprintf("player%02d", i), "")
		c, welcome := srv.connect(t, token)
		assert.Equal(t, id, welcome.Str("playerId"))
		assert.EqualValues(t, 1, welcome["protocol"])
		clients[i], ids[i] = c, id
	}
	for _, c := range clients {
		r := c.Request("queue.join", map[string]any{"queue": "default"})
		require.Equal(t, true, r["ok"], "queue.join: %v", r)
		assert.Equal(t, "searching", r.Obj("data").Obj("ticket").Str("status"))
	}

	type member struct{ party, invitation, descriptor string }
	matches := map[string]map[string]member{}
	for i, c := range clients {
		found := c.Next("match.found")
		ready := c.Next("match.ready")
		matchID := ready.Str("matchId")
		require.NotEmpty(t, matchID)
		assert.Equal(t, found.Str("matchId"), matchID)
		assert.Equal(t, "default", ready.Str("queue"))
		assert.Len(t, ready["players"], 4)
		assert.NotEmpty(t, ready["regions"])
		if matches[matchID] == nil {
			matches[matchID] = map[string]member{}
		}
		matches[matchID][ids[i]] = member{ready.Str("partyId"), ready.Str("invitationId"), ready.Str("networkDescriptor")}
	}
	// A ping's reply comes after every frame queued before it: any duplicate
	// match.ready already sent would now be in the backlog.
	for _, c := range clients {
		c.Request("ping", nil)
		assert.Zero(t, c.Count("match.ready"), "exactly one match.ready per connection")
	}

	require.Len(t, matches, players/4)
	parties := map[string]bool{}
	for matchID, members := range matches {
		require.Len(t, members, 4, "match %s", matchID)
		var first member
		for _, m := range members {
			if first.party == "" {
				first = m
			}
			assert.Equal(t, first, m, "members of %s share party, invitation and descriptor", matchID)
		}
		assert.Equal(t, matchID, first.party, "PartyId is the match id")
		assert.NotEmpty(t, first.invitation)
		info, err := fakeplayfab.DecodeDescriptor(first.descriptor)
		require.NoError(t, err)
		assert.Equal(t, first.party, info.PartyID, "the descriptor is the one PlayFab made for this party")
		parties[first.party] = true
	}
	assert.Len(t, parties, players/4, "distinct parties")

	stats := fake.Stats()
	assert.Equal(t, players/4, stats.RequestPartyService, "one RequestPartyService per match")
	assert.Len(t, stats.Parties, players/4)
	for id, n := range stats.Parties {
		assert.Equal(t, 1, n, "party %s requested once", id)
		assert.True(t, parties[id], "party %s was delivered", id)
	}
	assert.Equal(t, 1, stats.GetEntityToken, "the entity token is cached")

	resp, err := http.Get(srv.URL + "/v1/queues")
	require.NoError(t, err)
	defer resp.Body.Close()
	var qs struct {
		Queues []struct {
			Name  string `json:"name"`
			Depth int    `json:"depth"`
		} `json:"queues"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&qs))
	require.Len(t, qs.Queues, 1)
	assert.Zero(t, qs.Queues[0].Depth)
}

// After matches in a queue, queue.join's ticket and GET /v1/queues carry the
// queue's estimated wait. Each node reads it at most once a second, so the
// probe joins (and leaves) until its node has read the new figure.
func TestEstimatedWait(t *testing.T) {
	t.Parallel()
	srv, _ := startWithFake(t, "")
	var clients []*lobbytest.Client
	for i := 0; i < 4; i++ {
		token, _ := srv.devToken(t, fmt.Sprintf("waiter%d", i), "")
		c, _ := srv.connect(t, token)
		clients = append(clients, c)
	}
	first := clients[0].Request("queue.join", map[string]any{"queue": "default"})
	require.Equal(t, true, first["ok"], "queue.join: %v", first)
	assert.Nil(t, first.Obj("data").Obj("ticket")["estimatedWaitMs"], "no estimate before any match")
	time.Sleep(200 * time.Millisecond) // the first player's wait: the estimate is at least a share of it
	for _, c := range clients[1:] {
		r := c.Request("queue.join", map[string]any{"queue": "default"})
		require.Equal(t, true, r["ok"], "queue.join: %v", r)
	}
	for _, c := range clients {
		c.Next("match.ready")
	}

	token, _ := srv.devToken(t, "probe", "")
	probe, _ := srv.connect(t, token)
	var estimate float64
	require.Eventually(t, func() bool {
		r := probe.Request("queue.join", map[string]any{"queue": "default"})
		require.Equal(t, true, r["ok"], "queue.join: %v", r)
		estimate, _ = r.Obj("data").Obj("ticket")["estimatedWaitMs"].(float64)
		left := probe.Request("queue.leave", nil)
		require.Equal(t, true, left["ok"], "queue.leave: %v", left)
		probe.Next("queue.state")
		return estimate > 0
	}, 10*time.Second, 100*time.Millisecond)
	assert.Less(t, estimate, 60000.0, "an estimate of this run's waits")

	resp, err := http.Get(srv.URL + "/v1/queues")
	require.NoError(t, err)
	defer resp.Body.Close()
	var queues struct {
		Queues []struct {
			Name            string   `json:"name"`
			EstimatedWaitMs *float64 `json:"estimatedWaitMs"`
		} `json:"queues"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&queues))
	require.NotEmpty(t, queues.Queues)
	require.NotNil(t, queues.Queues[0].EstimatedWaitMs, "GET /v1/queues: %+v", queues)
	assert.Positive(t, *queues.Queues[0].EstimatedWaitMs)
}
