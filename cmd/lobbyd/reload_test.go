package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/testutil"
	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// queueNames reads GET /v1/queues' names.
func (s *server) queueNames(t testing.TB) []string {
	t.Helper()
	resp, err := http.Get(s.URL + "/v1/queues")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct{ Queues []struct{ Name string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	var names []string
	for _, q := range body.Queues {
		names = append(names, q.Name)
	}
	return names
}

const (
	oneQueue = "queues:\n  - name: solo\n    maxUsers: 4\n    regions: [NorthEurope]\n" +
		"    playfab: {maxDevices: 4, maxDevicesPerUser: 1, maxUsersPerDevice: 1, maxEndpointsPerDevice: 1}\n"
	duel = "  - name: duel\n    maxUsers: 2\n    regions: [NorthEurope]\n" +
		"    playfab: {maxDevices: 2, maxDevicesPerUser: 1, maxUsersPerDevice: 1, maxEndpointsPerDevice: 1}\n"
	// duel's skill window is too narrow for players 1000 apart.
	twoQueues = oneQueue + duel + "    skill:\n      initialWindow: 10\n      widenPerSecond: 0.001\n      maxWindow: 20\n"
	// The same, duel's window wide.
	twoQueuesWide = oneQueue + duel + "    skill:\n      initialWindow: 5000\n      widenPerSecond: 10\n      maxWindow: 5000\n"
)

// A reload through the admin API on one node reaches the other within
// 5 s: a new queue takes tickets on both, a rule changed under waiting
// tickets applies from the next pass, a bad file is refused with its
// reason and changes nothing, and a removed queue's waiting tickets expire
// with reason queue_removed.
func TestQueueReloadAcrossNodes(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	file := filepath.Join(t.TempDir(), "queues.yaml")
	require.NoError(t, os.WriteFile(file, []byte(oneQueue), 0o600))
	env := func() map[string]string {
		return map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_REDIS_URL": r.URL, "LOBBYD_CONFIG": file}
	}
	a := startServer(t, adminEnv(env()))
	b := startServer(t, env())
	assert.Equal(t, []string{"solo"}, b.queueNames(t))

	// A new queue.
	require.NoError(t, os.WriteFile(file, []byte(twoQueues), 0o600))
	out := a.admin(t, "POST", "/admin/api/queues/reload", nil)
	assert.Equal(t, true, out["changed"])
	assert.Equal(t, []any{"solo", "duel"}, out["queues"])
	changed := time.Now()
	require.Eventually(t, func() bool { return slices.Contains(b.queueNames(t), "duel") }, 5*time.Second, 20*time.Millisecond,
		"node B runs the new queue within 5 s")
	t.Logf("node B ran the new file %v after the reload", time.Since(changed).Round(10*time.Millisecond))
	assert.Contains(t, a.stderr.String(), "action=reload_queues", "audited")

	// Two players too far apart for duel's window wait on node B.
	duelists := make([]string, 2)
	c := make([]*lobbytest.Client, 2)
	for i, skill := range []float64{1000, 2000} {
		tok, id := b.devToken(t, "duel", "")
		c[i], _ = b.connect(t, tok)
		joined := c[i].Request("queue.join", map[string]any{"queue": "duel", "skill": skill})
		require.True(t, joined.OK(), "%v", joined)
		duelists[i] = id
	}
	require.Eventually(t, func() bool {
		q := a.admin(t, "GET", "/admin/api/queues", nil)["queues"].([]any)[1].(map[string]any)
		f, ok := q["figures"].(map[string]any)
		return ok && f["waitingTickets"] == float64(2)
	}, 10*time.Second, 20*time.Millisecond, "both wait, unmatched")

	// A bad file is refused with its reason; nothing changes.
	require.NoError(t, os.WriteFile(file, []byte(twoQueues+"    maxWiat: 3s\n"), 0o600))
	versionBefore := a.admin(t, "GET", "/admin/api/queues", nil)["configVersion"].(float64)
	status, bad := adminCall(t, "POST", a.AdminURL+"/admin/api/queues/reload", testAdminToken, nil)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, bad["error"], "maxWiat", "the reason names the field")
	assert.Equal(t, []string{"solo", "duel"}, a.queueNames(t))

	// Widen duel's window: the waiting pair is matched under the new rule.
	// Its version is the next one: the bad file was never stored.
	require.NoError(t, os.WriteFile(file, []byte(twoQueuesWide), 0o600))
	widened := a.admin(t, "POST", "/admin/api/queues/reload", nil)
	assert.Equal(t, versionBefore+1, widened["version"], "the refused file stored nothing")
	found := c[0].Next("match.found")
	var matched []string
	for _, p := range found["players"].([]any) {
		matched = append(matched, p.(map[string]any)["playerId"].(string))
	}
	assert.ElementsMatch(t, duelists, matched, "matched under the new rule")

	// Remove duel while a ticket waits in it.
	tok, _ := b.devToken(t, "late", "")
	late, _ := b.connect(t, tok)
	require.True(t, late.Request("queue.join", map[string]any{"queue": "duel", "skill": 1}).OK())
	require.NoError(t, os.WriteFile(file, []byte(oneQueue), 0o600))
	a.admin(t, "POST", "/admin/api/queues/reload", nil)
	state := late.Next("queue.state")
	assert.Equal(t, "expired", state.Obj("ticket").Str("status"))
	assert.Equal(t, "queue_removed", state.Str("reason"))
	require.Eventually(t, func() bool { return !slices.Contains(b.queueNames(t), "duel") }, 5*time.Second, 20*time.Millisecond)
	refused := late.Request("queue.join", map[string]any{"queue": "duel"})
	assert.False(t, refused.OK(), "a removed queue takes no ticket: %v", refused)

	// Redis loses the configuration (a flush, a failover that lost the
	// write): the stored version starts again from 1, and a reload still
	// reaches every node.
	raw := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer raw.Close()
	require.NoError(t, raw.Del(context.Background(), "lobbyd:queueconfig").Err())
	require.NoError(t, os.WriteFile(file, []byte(oneQueue+strings.ReplaceAll(duel, "duel", "trio")), 0o600))
	again := a.admin(t, "POST", "/admin/api/queues/reload", nil)
	assert.Equal(t, float64(1), again["version"])
	require.Eventually(t, func() bool { return slices.Contains(b.queueNames(t), "trio") }, 5*time.Second, 20*time.Millisecond,
		"node B runs it although its version is lower than the one it ran")
}

// A queue removed while no node ran it (every node was replaced) is still
// emptied: the stored configuration lists it as retired, and a node that
// never ran it expires its waiting tickets with reason queue_removed.
func TestRetiredQueueEmptiedByANewNode(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	file := filepath.Join(t.TempDir(), "queues.yaml")
	require.NoError(t, os.WriteFile(file, []byte(twoQueues), 0o600))
	env := map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_REDIS_URL": r.URL, "LOBBYD_CONFIG": file,
		"LOBBYD_JWT_SECRET": "shared-secret-of-both-nodes-0123456789"}
	a := startServer(t, env)
	tok, player := a.devToken(t, "left-behind", "")
	c, _ := a.connect(t, tok)
	require.True(t, c.Request("queue.join", map[string]any{"queue": "duel", "skill": 5}).OK())
	a.shutdown(t) // every node that ran duel is gone

	require.NoError(t, os.WriteFile(file, []byte(oneQueue), 0o600))
	raw := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer raw.Close()
	require.EqualValues(t, 1, raw.ZCard(context.Background(), "{q:duel}:searching").Val(), "the ticket waits in duel")
	b := startServer(t, adminEnv(env)) // starts with the new file: duel is retired
	require.Eventually(t, func() bool {
		return raw.ZCard(context.Background(), "{q:duel}:searching").Val() == 0
	}, 10*time.Second, 50*time.Millisecond, "the ticket in the retired queue ends")
	// It expired (the player's grace, 30 s, has not run out): their claim
	// is free, and the lookup shows no ticket.
	p := b.admin(t, "GET", "/admin/api/players/"+player, nil)
	assert.Nil(t, p["ticket"], "%v", p)
	assert.Contains(t, b.stderr.String(), `queue=duel`, "B ran the retired queue's loop")
	assert.Equal(t, []string{"solo"}, b.queueNames(t))
}

// SIGHUP reloads the queue file of the real binary; a bad file is refused
// and logged, and the server keeps running the one in force.
func TestQueueReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	file := filepath.Join(t.TempDir(), "queues.yaml")
	require.NoError(t, os.WriteFile(file, []byte(oneQueue), 0o600))
	node := testutil.StartLobbydNode(t, "LOBBYD_CONFIG="+file)
	srv := &server{URL: node.URL}
	assert.Equal(t, []string{"solo"}, srv.queueNames(t))

	require.NoError(t, os.WriteFile(file, []byte("queues: [oops"), 0o600))
	require.NoError(t, node.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(node.Log(), "queue file refused") }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"solo"}, srv.queueNames(t), "the configuration in force stays")

	require.NoError(t, os.WriteFile(file, []byte(twoQueues), 0o600))
	require.NoError(t, node.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return slices.Contains(srv.queueNames(t), "duel") }, 5*time.Second, 20*time.Millisecond)
}

// With LOBBYD_QUEUES_AT_START=stored, a node starting with an older queue
// file runs the configuration in force and says so, where by default its
// file would be stored for every node; its file is applied by a reload.
// With nothing stored, it stores its file as before.
func TestQueuesAtStartStored(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	dir := t.TempDir()
	newer, older := filepath.Join(dir, "newer.yaml"), filepath.Join(dir, "older.yaml")
	require.NoError(t, os.WriteFile(newer, []byte(twoQueues), 0o600))
	require.NoError(t, os.WriteFile(older, []byte(oneQueue), 0o600))
	env := func(file string) map[string]string {
		return map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_REDIS_URL": r.URL, "LOBBYD_CONFIG": file,
			"LOBBYD_QUEUES_AT_START": "stored"}
	}
	a := startServer(t, env(newer)) // nothing stored yet: its file is stored
	assert.Equal(t, []string{"solo", "duel"}, a.queueNames(t))

	b := startServer(t, adminEnv(env(older)))
	assert.Equal(t, []string{"solo", "duel"}, b.queueNames(t), "the configuration in force, not its older file")
	assert.Contains(t, b.stderr.String(), "this node's queue file is not the configuration in force")
	assert.EqualValues(t, 1, b.admin(t, "GET", "/admin/api/queues", nil)["configVersion"], "B stored nothing: A's file is still in force")

	out := b.admin(t, "POST", "/admin/api/queues/reload", nil)
	assert.Equal(t, true, out["changed"], "a reload applies B's file")
	require.Eventually(t, func() bool { return slices.Equal(a.queueNames(t), []string{"solo"}) }, 5*time.Second, 20*time.Millisecond,
		"and it reaches node A")
}

// A reload that adds a queue split into shards allocates every shard's
// matches: each shard has a stream of its own, which this node (and the
// others, polling) consume from the reload on, as they do at start-up.
func TestReloadAddsAShardedQueue(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "queues.yaml")
	require.NoError(t, os.WriteFile(file, []byte(oneQueue), 0o600))
	s := startServer(t, adminEnv(map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_CONFIG": file}))
	require.NoError(t, os.WriteFile(file, []byte(oneQueue+"  - name: ranked\n    maxUsers: 2\n    regions: [NorthEurope]\n"+
		"    shards: 4\n    skill: {initialWindow: 50, widenPerSecond: 0, maxWindow: 100}\n"+
		"    playfab: {maxDevices: 2, maxDevicesPerUser: 1, maxUsersPerDevice: 1, maxEndpointsPerDevice: 1}\n"), 0o600))
	require.Equal(t, true, s.admin(t, "POST", "/admin/api/queues/reload", nil)["changed"])

	var players []*lobbytest.Client
	for i, skill := range []float64{1010, 1050} { // one skill band: one shard, not shard 0
		tok, _ := s.devToken(t, fmt.Sprint("ranked", i), "")
		c, _ := s.connect(t, tok)
		require.True(t, c.Request("queue.join", map[string]any{"queue": "ranked", "skill": skill}).OK())
		players = append(players, c)
	}
	for _, c := range players {
		assert.NotEmpty(t, c.Next("match.ready").Str("partyId"), "the shard's match got its party")
	}
}
