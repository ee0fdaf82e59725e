package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// The admin API needs the token on every call, is not on the public port,
// and serves its console page with headers that keep it from being framed.
// The token never shows in the log.
func TestAdminAPIAuthorisation(t *testing.T) {
	t.Parallel()
	s := startServer(t, adminEnv(map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_LOG_LEVEL": "debug"}))
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

	s.shutdown(t)
	assert.NotContains(t, s.stderr.String(), testAdminToken, "the admin token is never logged")
}

// A short or missing admin token, or the public port, is refused at start.
func TestAdminConfigRefused(t *testing.T) {
	t.Parallel()
	for name, env := range map[string]map[string]string{
		"no token":    {"LOBBYD_ADMIN_ADDR": "127.0.0.1:0"},
		"short token": {"LOBBYD_ADMIN_ADDR": "127.0.0.1:0", "LOBBYD_ADMIN_TOKEN": "short"},
		"public port": {"LOBBYD_ADMIN_ADDR": ":8080", "LOBBYD_ADMIN_TOKEN": testAdminToken, "LOBBYD_ADDR": "0.0.0.0:8080"},
	} {
		env["LOBBYD_DEV_AUTH"] = "true"
		_, err := loadConfig(nil, func(k string) string { return env[k] }, io.Discard)
		assert.Error(t, err, name)
		if err != nil {
			assert.NotContains(t, err.Error(), "short\"", "the token is not echoed")
		}
	}
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
	a.admin(t, "POST", "/admin/api/lobbies/"+lobbyID+"/kick", map[string]string{"playerId": member})
	removed := cm.Next("lobby.removed")
	assert.Equal(t, "kicked", removed.Str("reason"))
	assert.Eventually(t, func() bool {
		return len(co.Next("lobby.state").Obj("lobby")["members"].([]any)) == 1
	}, 5*time.Second, time.Millisecond, "the owner sees the member gone")
	status, _ = adminCall(t, "POST", a.AdminURL+"/admin/api/lobbies/"+lobbyID+"/kick", testAdminToken, map[string]string{"playerId": member})
	assert.Equal(t, http.StatusNotFound, status, "no longer a member")
	a.admin(t, "POST", "/admin/api/lobbies/"+lobbyID+"/close", nil)
	assert.Equal(t, "closed", co.Next("lobby.removed").Str("reason"))
	status, _ = adminCall(t, "GET", a.AdminURL+"/admin/api/lobbies/"+lobbyID, testAdminToken, nil)
	assert.Equal(t, http.StatusNotFound, status, "the lobby is gone")

	// Disconnect the player on B.
	a.admin(t, "POST", "/admin/api/players/"+p1+"/disconnect", nil)
	assert.Equal(t, 4005, c1.CloseCode())

	// Drain B from A: its readiness fails, new sockets are refused, open
	// ones are closed with 1001.
	bID := nodeIDOf(t, b)
	a.admin(t, "POST", "/admin/api/nodes/"+bID+"/drain?period=1s", nil)
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

// Matches show in the admin API with their party and allocation time, the
// queue's figures count them, PlayFab's calls are counted, and a failed
// allocation shows PlayFab's error name.
func TestAdminShowsMatchesAndFailures(t *testing.T) {
	t.Parallel()
	s, fake := startWithFakeConfig(t, fakeplayfab.Config{Logger: quietFake}, adminEnv(map[string]string{"LOBBYD_ALLOCATION_DEADLINE": "2s"}))
	clients := queuePlayers(t, s, "m", 4)
	ready := clients[0].Next("match.ready")
	matchID := ready.Str("matchId")

	m := s.admin(t, "GET", "/admin/api/matches/"+matchID, nil)
	assert.Equal(t, "ready", m["state"])
	assert.Equal(t, ready.Str("partyId"), m["partyId"])
	assert.Len(t, m["players"], 4)
	assert.NotNil(t, m["allocationMs"], "allocation time")
	list := s.admin(t, "GET", "/admin/api/matches?queue=default", nil)["matches"].([]any)
	require.NotEmpty(t, list)
	assert.Equal(t, matchID, list[0].(map[string]any)["matchId"])

	require.Eventually(t, func() bool {
		q := s.admin(t, "GET", "/admin/api/queues", nil)["queues"].([]any)[0].(map[string]any)
		f, ok := q["figures"].(map[string]any)
		return ok && f["matchedLast5m"] == float64(4) && f["timeToMatchP99Ms"] != nil && q["leader"] != ""
	}, 10*time.Second, 50*time.Millisecond, "the leader's figures count the match")
	require.Eventually(t, func() bool {
		pf := s.admin(t, "GET", "/admin/api/playfab", nil)
		return pf["calls"].(float64) >= 2 // GetEntityToken and RequestPartyService
	}, 10*time.Second, 50*time.Millisecond, "PlayFab calls appear with the next heartbeat")

	// Every call fails from now on: the next match fails, and shows why.
	fake.SetFaults(fakeplayfab.Faults{ErrorRate: 1})
	more := queuePlayers(t, s, "f", 4)
	failed := more[0].Next("match.failed")
	fm := s.admin(t, "GET", "/admin/api/matches/"+failed.Str("matchId"), nil)
	assert.Equal(t, "failed", fm["state"])
	assert.Contains(t, []string{"ServiceUnavailable", "InternalServerError"}, fm["lastError"], "PlayFab's error name: %v", fm)
	require.Eventually(t, func() bool {
		pf := s.admin(t, "GET", "/admin/api/playfab", nil)
		return pf["errors"].(float64) > 0 && len(pf["errorsByName"].(map[string]any)) > 0
	}, 10*time.Second, 50*time.Millisecond, "PlayFab errors by name")
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

	bin := lobbydBinary(t)
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-node-id", "doomed")
	cmd.Env = append(os.Environ(), "LOBBYD_DEV_AUTH=true", "LOBBYD_REDIS_URL="+r.URL)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	_, err = bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)

	require.Eventually(t, func() bool { return a.nodeStates(t)["doomed"] == "up" }, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, cmd.Process.Kill())
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
// all at once: the first and last closes are more than half the period
// apart (a slow machine only widens the gap).
func TestDrainSpreadsCloses(t *testing.T) {
	t.Parallel()
	const period = 3 * time.Second
	s := startServer(t, adminEnv(map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_DRAIN_PERIOD": period.String()}))
	const n = 20
	clients := make([]*lobbytest.Client, n)
	for i := range clients {
		tok, _ := s.devToken(t, "drained", "")
		clients[i], _ = s.connect(t, tok)
	}
	s.admin(t, "POST", "/admin/api/nodes/"+nodeIDOf(t, s)+"/drain", nil)
	type closed struct {
		code int
		at   time.Time
	}
	closes := make(chan closed, n)
	for _, c := range clients {
		go func() {
			for c.ReadErr() == nil {
				if _, ok := <-c.Frames; !ok {
					break
				}
			}
			at := time.Now()
			closes <- closed{c.CloseCode(), at}
		}()
	}
	var first, last time.Time
	for range n {
		var c closed
		select {
		case c = <-closes:
		case <-time.After(period + 10*time.Second):
			t.Fatalf("the drain did not close every socket")
		}
		assert.Equal(t, 1001, c.code)
		if first.IsZero() || c.at.Before(first) {
			first = c.at
		}
		if c.at.After(last) {
			last = c.at
		}
	}
	assert.Greater(t, last.Sub(first), period/2, "closes spread over the drain period")
	assert.Equal(t, float64(1), s.metric(t, "lobbyd_node_draining"))
}
