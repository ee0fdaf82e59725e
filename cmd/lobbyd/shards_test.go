package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/lobby/lobbytest"
)

// A queue split into shards is one queue to clients: tickets and matches
// name it, GET /v1/queues sums its shards' depth; players of one skill band
// and region meet in one shard and are matched there, each match with one
// party.
func TestShardedQueue(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "queues.yaml")
	require.NoError(t, os.WriteFile(file, []byte("queues:\n  - name: ranked\n    maxUsers: 2\n    regions: [NorthEurope, EastUs]\n"+
		"    shards: 4\n    skill: {initialWindow: 50, widenPerSecond: 0, maxWindow: 100}\n"+
		"    playfab: {maxDevices: 2, maxDevicesPerUser: 1, maxUsersPerDevice: 1, maxEndpointsPerDevice: 1}\n"), 0o600))
	s := startServer(t, adminEnv(map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_CONFIG": file}))

	join := func(name string, skill float64) *lobbytest.Client {
		tok, _ := s.devToken(t, name, "")
		c, _ := s.connect(t, tok)
		r := c.Request("queue.join", map[string]any{"queue": "ranked", "skill": skill, "regions": []string{"NorthEurope"}})
		require.True(t, r.OK(), "%v", r)
		assert.Equal(t, "ranked", r.Obj("data").Obj("ticket").Str("queue"), "the ticket names the queue, not its shard")
		return c
	}
	// Bands of 100 (maxWindow): 1010 and 1050 share one, 1330 and 1360
	// another; 1500 is too far from everyone for the window.
	low := join("low1", 1010)
	high := join("high1", 1330)
	alone := join("alone", 1500)
	queues := s.admin(t, "GET", "/admin/api/queues", nil)["queues"].([]any)
	require.Len(t, queues, 1)
	q := queues[0].(map[string]any)
	assert.Len(t, q["shards"], 4, "the admin API lists the shards")
	assert.Contains(t, s.queueNames(t), "ranked")

	low2 := join("low2", 1050)
	high2 := join("high2", 1360)
	parties := map[string]string{}
	for name, c := range map[string]*lobbytest.Client{"low1": low, "low2": low2, "high1": high, "high2": high2} {
		ready := c.Next("match.ready")
		assert.Equal(t, "ranked", ready.Str("queue"), "the match names the queue")
		parties[name] = ready.Str("partyId")
	}
	assert.Equal(t, parties["low1"], parties["low2"], "one band, one match")
	assert.Equal(t, parties["high1"], parties["high2"])
	assert.NotEqual(t, parties["low1"], parties["high1"])
	// The others' matches were formed and allocated: a reply to alone
	// now comes after any frame a pass that formed them sent it.
	require.True(t, alone.Request("ping", nil).OK())
	alone.Drain()
	assert.Zero(t, alone.Count("match.found"), "nobody in its band")
	depth := s.admin(t, "GET", "/admin/api/queues", nil)["queues"].([]any)[0].(map[string]any)["depth"]
	assert.Equal(t, float64(1), depth, "the depth sums the shards")
}
