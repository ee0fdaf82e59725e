package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/testutil"
	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
	"github.com/lobbyd/lobbyd/store/storetest"
)

const testAdminToken = "admin-token-for-tests-0123456789abcdef"

// adminEnv turns the admin listener on, on a free loopback port.
func adminEnv(env map[string]string) map[string]string {
	if env == nil {
		env = map[string]string{}
	}
	env["LOBBYD_ADMIN_ADDR"], env["LOBBYD_ADMIN_TOKEN"] = "127.0.0.1:0", testAdminToken
	return env
}

// adminCall makes an admin API call with token and returns the status and
// the decoded JSON body.
func adminCall(t testing.TB, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(raw, &out), "body %s", raw)
	}
	return resp.StatusCode, out
}

// admin calls s's admin API with the right token and wants 200.
func (s *server) admin(t testing.TB, method, path string, body any) map[string]any {
	t.Helper()
	status, out := adminCall(t, method, s.AdminURL+path, testAdminToken, body)
	require.Equal(t, http.StatusOK, status, "%s %s: %v", method, path, out)
	return out
}

// nodeStates returns the admin API's nodes by id, with their state.
func (s *server) nodeStates(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range s.admin(t, "GET", "/admin/api/nodes", nil)["nodes"].([]any) {
		n := n.(map[string]any)
		out[n["id"].(string)] = n["state"].(string)
	}
	return out
}

// The admin API, on the real binary with its token read from a file,
// needs the token on every call, is not on the public port, and serves its
// console page with headers that keep it from being framed. The token
// never shows in the log, even at debug level. (With -short, which skips
// building the binary, the same checks run in-process.)
func TestAdminAPIAuthorisation(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(testAdminToken+"\n"), 0o600))
	var s *server
	var stop func() (log string) // stops the server and returns its log
	if testing.Short() {
		s = startServer(t, map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_LOG_LEVEL": "debug",
			"LOBBYD_ADMIN_ADDR": "127.0.0.1:0", "LOBBYD_ADMIN_TOKEN_FILE": tokenFile})
		stop = func() string { s.shutdown(t); return s.stderr.String() }
	} else {
		node := testutil.StartLobbydNode(t, "LOBBYD_LOG_LEVEL=debug", "LOBBYD_ADMIN_ADDR=127.0.0.1:0", "LOBBYD_ADMIN_TOKEN_FILE="+tokenFile)
		s = &server{URL: node.URL, AdminURL: node.AdminURL}
		stop = func() string { require.NoError(t, node.Stop()); return node.Log() }
	}
	require.NotEmpty(t, s.AdminURL)

	for _, path := range []string{"/admin/api/queues", "/admin/api/nodes", "/admin/api/matches", "/admin/api/playfab",
		"/admin/api/players/p1", "/admin/api/lobbies/ABCDEF"} {
		status, _ := adminCall(t, "GET", s.AdminURL+path, "", nil)
		assert.Equal(t, http.StatusUnauthorized, status, "no token: %s", path)
		status, _ = adminCall(t, "GET", s.AdminURL+path, testAdminToken+"x", nil)
		assert.Equal(t, http.StatusUnauthorized, status, "wrong token: %s", path)
		status, _ = adminCall(t, "GET", s.URL+path, testAdminToken, nil)
		assert.Equal(t, http.StatusNotFound, status, "not on the public port: %s", path)
	}
	status, _ := adminCall(t, "POST", s.AdminURL+"/admin/api/players/p1/disconnect", "", nil)
	assert.Equal(t, http.StatusUnauthorized, status, "actions too")

	queues := s.admin(t, "GET", "/admin/api/queues", nil)["queues"].([]any)
	require.Len(t, queues, 1)
	assert.Equal(t, "default", queues[0].(map[string]any)["name"])

	resp, err := http.Get(s.AdminURL + "/admin/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(page), "<html")
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	resp, err = http.Get(s.URL + "/admin/")
	require.NoError(t, err)
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.NotContains(t, string(page), "operator console", "the public port serves the player UI, not the console")

	log := stop()
	require.Contains(t, log, "starting lobbyd", "the log is captured")
	assert.NotContains(t, log, testAdminToken, "the admin token is never logged")
}

// Two nodes on one Redis: an operator on node A acts on players connected
// to node B, and each action reaches the player's socket; both nodes are
// listed; draining B closes its sockets with 1001 and refuses new ones.
func TestAdminActionsAcrossNodes(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	env := func() map[string]string {
		return map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_REDIS_URL": r.URL}
	}
	a := startServer(t, adminEnv(env()))
	b := startServer(t, env())

	// Both nodes heart-beat at start.
	require.Eventually(t, func() bool { return len(a.nodeStates(t)) == 2 }, 10*time.Second, 50*time.Millisecond)
	for id, state := range a.nodeStates(t) {
		assert.Equal(t, "up", state, id)
	}

	// Cancel a ticket of a player on B.
	tok, p1 := b.devToken(t, "one", "")
	c1, _ := b.connect(t, tok)
	require.True(t, c1.Request("queue.join", map[string]any{"queue": "default"}).OK())
	player := a.admin(t, "GET", "/admin/api/players/"+p1, nil)
	assert.Equal(t, true, player["connected"])
	assert.NotEmpty(t, player["node"])
	assert.Equal(t, "searching", player["ticket"].(map[string]any)["status"])
	a.admin(t, "POST", "/admin/api/players/"+p1+"/cancel-ticket", nil)
	state := c1.Next("queue.state")
	assert.Equal(t, "cancelled", state.Obj("ticket").Str("status"))
	assert.Equal(t, "operator", state.Str("reason"))
	status, _ := adminCall(t, "POST", a.AdminURL+"/admin/api/players/"+p1+"/cancel-ticket", testAdminToken, nil)
	assert.Equal(t, http.StatusNotFound, status, "nothing left to cancel")
	assert.Contains(t, a.stderr.String(), "action=cancel_ticket target="+p1, "audited")

	// A lobby across both nodes: kick the member on A, then close it.
	tokOwner, _ := b.devToken(t, "owner", "")
	co, _ := b.connect(t, tokOwner)
	created := co.Request("lobby.create", map[string]any{"queue": "default"})
	require.True(t, created.OK(), "%v", created)
	lobbyID, code := created.Obj("data").Obj("lobby").Str("lobbyId"), created.Obj("data").Obj("lobby").Str("code")
	tokMember, member := a.devToken(t, "member", "")
	cm, _ := a.connect(t, tokMember)
	joined := cm.Request("lobby.join", map[string]any{"code": code})
	require.True(t, joined.OK(), "%v", joined)
	found := a.admin(t, "GET", "/admin/api/lobbies/"+strings.ToLower(code), nil)
	assert.Equal(t, lobbyID, found["id"], "found by its code")
	status, _ = adminCall(t, "POST", a.AdminURL+"/admin/api/lobbies/"+lobbyID+"/kick", testAdminToken, map[string]string{"player": member})
	assert.Equal(t, http.StatusBadRequest, status, "a body without playerId")
	assert.Contains(t, a.stderr.String(), `action=kick target=`+lobbyID+` outcome="body must be {\"playerId\"`, "a refused kick is audited with its reason")
	a.admin(t, "POST", "/admin/api/lobbies/"+lobbyID+"/kick", map[string]string{"playerId": member})
	assert.Contains(t, a.stderr.String(), "action=kick target="+lobbyID+" outcome=ok remote=", "audited")
	assert.Contains(t, a.stderr.String(), "player="+member)
	removed := cm.Next("lobby.removed")
	assert.Equal(t, "kicked", removed.Str("reason"))
	// Next may fail the test: on the test's goroutine, not Eventually's.
	storetest.Eventually(t, 5*time.Second, func() bool {
		return len(co.Next("lobby.state").Obj("lobby")["members"].([]any)) == 1
	}, "the owner sees the member gone")
	status, _ = adminCall(t, "POST", a.AdminURL+"/admin/api/lobbies/"+lobbyID+"/kick", testAdminToken, map[string]string{"playerId": member})
	assert.Equal(t, http.StatusNotFound, status, "no longer a member")
	a.admin(t, "POST", "/admin/api/lobbies/"+lobbyID+"/close", nil)
	assert.Contains(t, a.stderr.String(), "action=close_lobby target="+lobbyID+" outcome=ok", "audited")
	assert.Equal(t, "closed", co.Next("lobby.removed").Str("reason"))
	status, _ = adminCall(t, "GET", a.AdminURL+"/admin/api/lobbies/"+lobbyID, testAdminToken, nil)
	assert.Equal(t, http.StatusNotFound, status, "the lobby is gone")

	// Disconnect the player on B.
	a.admin(t, "POST", "/admin/api/players/"+p1+"/disconnect", nil)
	assert.Contains(t, a.stderr.String(), "action=disconnect target="+p1+" outcome=ok", "audited")
	assert.Equal(t, 4005, c1.CloseCode())

	// Drain B from A: its readiness fails, new sockets are refused, open
	// ones are closed with 1001.
	bID := nodeIDOf(t, b)
	status, _ = adminCall(t, "POST", a.AdminURL+"/admin/api/nodes/"+bID+"/drain?period=5ms", testAdminToken, nil)
	assert.Equal(t, http.StatusBadRequest, status, "a period under 1s")
	assert.Contains(t, a.stderr.String(), `action=drain target=`+bID+` outcome="period must be a duration from 1s to 1h, like 30s" remote=`,
		"a refused drain is audited with its reason")
	status, _ = adminCall(t, "POST", a.AdminURL+"/admin/api/nodes/no-such-node/drain", testAdminToken, nil)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Contains(t, a.stderr.String(), `action=drain target=no-such-node outcome="no such live node"`, "a drain of an unknown node is audited")
	a.admin(t, "POST", "/admin/api/nodes/"+bID+"/drain?period=1s", nil)
	assert.Contains(t, a.stderr.String(), "action=drain target="+bID+" outcome=ok remote=", "audited")
	assert.Contains(t, a.stderr.String(), "period=1s")
	assert.Equal(t, 1001, co.CloseCode(), "B's sockets are closed with 1001")
	resp, err := http.Get(b.URL + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	_, hs, err := lobbytest.Dial(t, b.wsURL(), http.Header{"Authorization": {"Bearer " + tokOwner}})
	require.Error(t, err)
	require.NotNil(t, hs)
	assert.Equal(t, http.StatusServiceUnavailable, hs.StatusCode, "B takes no new socket")
	require.Eventually(t, func() bool { return a.nodeStates(t)[bID] == "draining" }, 10*time.Second, 50*time.Millisecond)
	assert.Contains(t, b.stderr.String(), "draining", "B logs its drain")
}

// adminQueues: the default queue, and one whose tickets expire after a
// second.
const adminQueues = `queues:
  - name: default
    maxUsers: 4
    regions: [EastUs, WestUs, NorthEurope, WestEurope]
    playfab: {maxDevices: 4, maxUsersPerDevice: 1, maxDevicesPerUser: 1}
  - name: brief
    maxUsers: 4
    regions: [EastUs]
    playfab: {maxDevices: 4, maxUsersPerDevice: 1, maxDevicesPerUser: 1}
    ticketTimeout: 1s
    maxWait: 1s
`

// queueNamed returns the admin API's queue of that name.
func (s *server) queueNamed(t testing.TB, name string) map[string]any {
	t.Helper()
	for _, q := range s.admin(t, "GET", "/admin/api/queues", nil)["queues"].([]any) {
		if q := q.(map[string]any); q["name"] == name {
			return q
		}
	}
	t.Fatalf("no queue %q in the admin API", name)
	return nil
}

// selfNode returns the admin API's entry of the node answering.
func (s *server) selfNode(t testing.TB) map[string]any {
	t.Helper()
	for _, n := range s.admin(t, "GET", "/admin/api/nodes", nil)["nodes"].([]any) {
		if n := n.(map[string]any); n["self"] == true {
			return n
		}
	}
	t.Fatalf("the answering node is not in the admin API's nodes")
	return nil
}

// seriesSum adds up one field of a queue's figures' series.
func seriesSum(figures map[string]any, field string) float64 {
	var sum float64
	for _, p := range figures["series"].([]any) {
		sum += p.(map[string]any)[field].(float64)
	}
	return sum
}

// Matches show in the admin API with their party and allocation time, and
// in each player's lookup once delivered; the queue's figures count them
// and expired tickets; the node shows its sockets and queues; PlayFab's
// calls, token age and throttles are counted, and a failed allocation
// shows PlayFab's error name.
func TestAdminShowsMatchesAndFailures(t *testing.T) {
	t.Parallel()
	rdb := miniredis.RunT(t)
	queueFile := filepath.Join(t.TempDir(), "queues.yaml")
	require.NoError(t, os.WriteFile(queueFile, []byte(adminQueues), 0o600))
	s, fake := startWithFakeConfig(t, fakeplayfab.Config{Logger: quietFake}, adminEnv(map[string]string{
		"LOBBYD_ALLOCATION_DEADLINE": "2s", "LOBBYD_REDIS_URL": "redis://" + rdb.Addr(), "LOBBYD_CONFIG": queueFile}))
	clients := queuePlayers(t, s, "m", 4)
	ready := clients[0].Next("match.ready")
	matchID := ready.Str("matchId")

	m := s.admin(t, "GET", "/admin/api/matches/"+matchID, nil)
	assert.Equal(t, "ready", m["state"])
	assert.Equal(t, ready.Str("partyId"), m["partyId"])
	assert.Len(t, m["players"], 4)
	assert.NotNil(t, m["allocationMs"], "allocation time")
	list := s.admin(t, "GET", "/admin/api/matches?queue=default", nil)["matches"].([]any)
	require.Len(t, list, 1)
	assert.Equal(t, matchID, list[0].(map[string]any)["matchId"])

	// Delivered, a match is no longer the ticket's nor a copy waiting for
	// the player: the lookup still shows it.
	for _, p := range m["players"].([]any) {
		id := p.(map[string]any)["playerId"].(string)
		pending := "{p:" + id + "}:match"
		storetest.Eventually(t, 10*time.Second, func() bool {
			return rdb.HGet(pending, "matchId") == "" && rdb.HGet(pending, "delivered") == matchID
		}, "%s's match.ready is written and acknowledged", id)
		player := s.admin(t, "GET", "/admin/api/players/"+id, nil)
		assert.Nil(t, player["ticket"], "the claim on the matched ticket is released")
		found, _ := player["match"].(map[string]any)
		require.NotNil(t, found, "the lookup of %s shows their match: %v", id, player)
		assert.Equal(t, matchID, found["matchId"])
		assert.Equal(t, "ready", found["state"])
		assert.Equal(t, ready.Str("partyId"), found["partyId"])
	}

	var figures map[string]any
	storetest.Eventually(t, 10*time.Second, func() bool {
		q := s.queueNamed(t, "default")
		figures, _ = q["figures"].(map[string]any)
		return figures != nil && figures["matchedLast5m"] == float64(4) && figures["timeToMatchP99Ms"] != nil && q["leader"] != ""
	}, "the leader's figures count the match")
	assert.Equal(t, float64(len(list)), seriesSum(figures, "matches"), "the series adds up to the matches made: %v", figures["series"])

	// The node's figures are live: its sockets, the queues it leads.
	storetest.Eventually(t, 10*time.Second, func() bool {
		n := s.selfNode(t)
		return n["connections"] == float64(len(clients)) && slices.Contains(n["queuesLed"].([]any), any("default"))
	}, "the node counts its %d sockets and leads the default queue", len(clients))
	assert.NotEmpty(t, s.selfNode(t)["version"])
	clients[3].Conn.Close()
	storetest.Eventually(t, 10*time.Second, func() bool { return s.selfNode(t)["connections"] == float64(len(clients)-1) },
		"a closed socket is no longer counted")

	storetest.Eventually(t, 10*time.Second, func() bool {
		pf := s.admin(t, "GET", "/admin/api/playfab", nil)
		nodes := pf["nodes"].([]any)
		return pf["calls"].(float64) >= 2 && // GetEntityToken and RequestPartyService
			len(nodes) == 1 && nodes[0].(map[string]any)["tokenAgeSeconds"].(float64) > 0
	}, "PlayFab calls and the entity token's age appear")

	// A ticket that waits past its queue's ticketTimeout expires, and the
	// figures count it.
	tok, _ := s.devToken(t, "brief", "")
	waiting, _ := s.connect(t, tok)
	require.True(t, waiting.Request("queue.join", map[string]any{"queue": "brief"}).OK())
	for status := ""; status != "expired"; {
		status = waiting.Next("queue.state").Obj("ticket").Str("status")
	}
	storetest.Eventually(t, 10*time.Second, func() bool {
		figures, _ = s.queueNamed(t, "brief")["figures"].(map[string]any)
		return figures != nil && figures["expiredLast5m"] == float64(1)
	}, "the figures count the expired ticket")
	assert.Equal(t, float64(1), seriesSum(figures, "expired"), "and so does the series: %v", figures["series"])

	// Every call fails from now on: the next match fails, and shows why.
	fake.SetFaults(fakeplayfab.Faults{ErrorRate: 1})
	more := queuePlayers(t, s, "f", 4)
	failed := more[0].Next("match.failed")
	fm := s.admin(t, "GET", "/admin/api/matches/"+failed.Str("matchId"), nil)
	assert.Equal(t, "failed", fm["state"])
	assert.Contains(t, []string{"ServiceUnavailable", "InternalServerError"}, fm["lastError"], "PlayFab's error name: %v", fm)
	storetest.Eventually(t, 10*time.Second, func() bool {
		pf := s.admin(t, "GET", "/admin/api/playfab", nil)
		return pf["errors"].(float64) > 0 && len(pf["errorsByName"].(map[string]any)) > 0
	}, "PlayFab errors by name")
	require.Zero(t, s.admin(t, "GET", "/admin/api/playfab", nil)["throttles"], "errors are not throttles")

	// Every call is throttled from now on: the throttles are counted.
	fake.SetFaults(fakeplayfab.Faults{ThrottleRate: 1, RetryAfter: 10 * time.Millisecond})
	queuePlayers(t, s, "t", 4)
	storetest.Eventually(t, 10*time.Second, func() bool {
		return s.admin(t, "GET", "/admin/api/playfab", nil)["throttles"].(float64) > 0
	}, "PlayFab throttles")
}

// A node killed with SIGKILL stops heart-beating and is shown as gone
// within 30 s.
func TestAdminShowsKilledNodeGone(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary and waits for a heartbeat to lapse")
	}
	r := storetest.StartRedis(t)
	a := startServer(t, adminEnv(map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_REDIS_URL": r.URL}))

	doomed := testutil.StartLobbydNode(t, "LOBBYD_NODE_ID=doomed", "LOBBYD_REDIS_URL="+r.URL)

	require.Eventually(t, func() bool { return a.nodeStates(t)["doomed"] == "up" }, 10*time.Second, 50*time.Millisecond)
	doomed.Kill()
	killed := time.Now()
	require.Eventually(t, func() bool { return a.nodeStates(t)["doomed"] == "gone" }, 30*time.Second, 100*time.Millisecond)
	t.Logf("shown as gone %v after the kill", time.Since(killed).Round(time.Second))
	assert.Equal(t, "up", a.nodeStates(t)[nodeIDOf(t, a)], "the live node stays up")
}

// nodeIDOf reads a node's id from its start-up log line.
func nodeIDOf(t *testing.T, s *server) string {
	t.Helper()
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		if strings.Contains(line, "starting lobbyd") {
			_, rest, ok := strings.Cut(line, "node=")
			require.True(t, ok, line)
			id, _, _ := strings.Cut(rest, " ")
			return id
		}
	}
	t.Fatalf("no start-up line in the log")
	return ""
}

// A drain closes the node's sockets a share at a time over its period, not
// all at once. runDrain closes, every drainStep (100 ms), the open sockets
// divided by the steps left, rounded up: with no more sockets than steps
// (40 sockets, a 4 s period of 41 steps) that is one a step, so any
// quarter of the period (1 s, 10 steps) holds about a quarter of the
// closes (at most 11 of 40). The bound is half: only a stall of about a
// second (of the server, which makes later steps close two at a time, or
// of the test's readers, which bunches the closes they see) breaks it,
// while closing in a few large batches does.
func TestDrainSpreadsCloses(t *testing.T) {
	t.Parallel()
	const period = 4 * time.Second
	s := startServer(t, adminEnv(map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_DRAIN_PERIOD": period.String()}))
	const n = 40
	clients := make([]*lobbytest.Client, n)
	for i := range clients {
		tok, _ := s.devToken(t, "drained", "")
		clients[i], _ = s.connect(t, tok)
	}
	s.admin(t, "POST", "/admin/api/nodes/"+nodeIDOf(t, s)+"/drain", nil)
	type closed struct {
		c  *lobbytest.Client
		at time.Time
	}
	closes := make(chan closed, n)
	for _, c := range clients {
		go func() {
			for range c.Frames { // closed when the socket ends
			}
			closes <- closed{c, time.Now()}
		}()
	}
	var at []time.Time
	for range n {
		select {
		case c := <-closes:
			assert.Equal(t, 1001, c.c.CloseCode())
			at = append(at, c.at)
		case <-time.After(period + 10*time.Second):
			t.Fatalf("the drain closed %d of %d sockets", len(at), n)
		}
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	busiest := 0
	for i := range at {
		inQuarter, _ := slices.BinarySearchFunc(at, at[i].Add(period/4), func(a, b time.Time) int { return a.Compare(b) })
		busiest = max(busiest, inQuarter-i)
	}
	t.Logf("closes over %v; at most %d of %d in a quarter of the period", at[n-1].Sub(at[0]).Round(time.Millisecond), busiest, n)
	assert.LessOrEqual(t, busiest, n/2, "no quarter of the drain period holds more than half the closes")
	assert.Greater(t, at[n-1].Sub(at[0]), period/2, "closes spread over the drain period")
	assert.Equal(t, float64(1), s.metric(t, "lobbyd_node_draining"))
}
