package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/testutil"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// twoNodes starts a redis-server and two lobbyd nodes sharing it and one
// JWT secret (tokens of either node's dev endpoint work on both), plus
// env, and returns them.
func twoNodes(t *testing.T, env ...string) (*testutil.LobbydNode, *testutil.LobbydNode) {
	t.Helper()
	nodes, _ := startNodes(t, 2, env...)
	return nodes[0], nodes[1]
}

// startNodes starts a redis-server and n lobbyd nodes of one deployment
// on it (see twoNodes), and returns them and the Redis's URL.
func startNodes(t *testing.T, n int, env ...string) ([]*testutil.LobbydNode, string) {
	t.Helper()
	r := storetest.StartRedis(t)
	env = append([]string{"LOBBYD_REDIS_URL=" + r.URL, "LOBBYD_JWT_SECRET=a-shared-test-secret-of-at-least-32-bytes"}, env...)
	nodes := make([]*testutil.LobbydNode, n)
	for i := range nodes {
		nodes[i] = testutil.StartLobbydNode(t, env...)
	}
	return nodes, r.URL
}

// queueFile writes a queue file with one queue, default, of maxUsers
// players, and returns its path (for LOBBYD_CONFIG).
func queueFile(t *testing.T, maxUsers int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "queues.yaml")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`queues:
  - name: default
    maxUsers: %[1]d
    regions: [EastUs]
    playfab: {maxDevices: %[1]d, maxDevicesPerUser: 1, maxUsersPerDevice: 1, maxEndpointsPerDevice: 1}
`, maxUsers)), 0o644))
	return path
}

// Players are spread over the URLs of -url, round robin; lobbies (owner
// and members on different nodes) and reconnecters (who move to the next
// URL, where welcome gives their ticket back) are all matched.
func TestPlayersSpreadOverTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lobbyd")
	}
	n1, n2 := twoNodes(t)
	stdout, stderr, err := runLoad(t, nil, "-url", n1.URL+","+n2.URL, "-players", "200", "-lobby-share", "0.2", "-lobby-size", "2",
		"-reconnect-share", "0.1", "-duration", "25s", "-json")
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	var rep report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	t.Logf("elapsed %.2fs throughput %.0f/s urls %+v errors %v", rep.ElapsedSec, rep.ThroughputPerSec, rep.URLs, rep.Errors)
	assert.Equal(t, n1.URL+","+n2.URL, rep.URL)
	assert.Equal(t, 200, rep.Matched)
	assert.Zero(t, rep.Failed+rep.Lost)
	assert.Empty(t, rep.Violations)
	assert.Equal(t, 20, rep.Lobbies)
	assert.Equal(t, 20, rep.Reconnects)
	assert.Zero(t, rep.LostSockets)
	require.Len(t, rep.URLs, 2)
	matched, reconnects := 0, 0
	for i, u := range rep.URLs {
		assert.Equal(t, []string{n1.URL, n2.URL}[i], u.URL)
		assert.Equal(t, 100, u.Players, "player i connects to URL i mod 2")
		assert.Equal(t, 100, u.Connected)
		assert.Positive(t, u.Reconnects, "reconnecters move to the other node")
		assert.Zero(t, u.ConnectFailures)
		matched += u.Matched
		reconnects += u.Reconnects
	}
	assert.Equal(t, 200, matched)
	assert.Equal(t, 20, reconnects)
	require.NotNil(t, rep.CPU)
	assert.Equal(t, 2, rep.CPU.Nodes, "both nodes' CPU")
	last := rep.Series.Samples[len(rep.Series.Samples)-1]
	require.NotNil(t, last.MatchesFormed)
	assert.EqualValues(t, 50, *last.MatchesFormed, "matches formed, summed over the nodes")
}

// startLoad runs the generator in the background with a progress line on
// stderr (handed over line by line) and returns what run returns, on done.
func startLoad(t *testing.T, args ...string) (lines <-chan string, done <-chan loadResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	stderr := testutil.NewLineWriter()
	out, returned := make(chan loadResult, 1), make(chan struct{})
	go func() {
		defer close(returned)
		var stdout bytes.Buffer
		err := run(ctx, append([]string{"-progress", "on"}, args...), func(string) string { return "" }, &stdout, stderr)
		out <- loadResult{stdout.String(), stderr.String(), err}
	}()
	t.Cleanup(func() {
		cancel()
		<-returned
	})
	return stderr.Lines(), out
}

type loadResult struct {
	stdout, stderr string
	err            error
}

// progress is one progress line of the generator's.
type progress struct{ connected, searching, matched int }

var progressRe = regexp.MustCompile(`connected (\d+)  searching (\d+)  matched (\d+)`)

// actWhen reads the generator's progress lines until one satisfies cond,
// then calls act and returns that line's figures; the test fails if the
// run ends first.
func actWhen(t *testing.T, lines <-chan string, done <-chan loadResult, cond func(progress) bool, act func(progress)) progress {
	t.Helper()
	for {
		select {
		case line := <-lines:
			m := progressRe.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			var p progress
			p.connected, _ = strconv.Atoi(m[1])
			p.searching, _ = strconv.Atoi(m[2])
			p.matched, _ = strconv.Atoi(m[3])
			if cond(p) {
				act(p)
				return p
			}
		case r := <-done:
			t.Fatalf("the run ended first: %v\n%s\n%s", r.err, r.stdout, r.stderr)
		}
	}
}

// everyoneBack checks that the lost sockets of a run were lost sockets
// of the node at URL index gone, and that every one of the players who
// lost them got welcome again elsewhere, within limit.
func everyoneBack(t *testing.T, rep report, gone, lost int, limit time.Duration) {
	t.Helper()
	assert.Equal(t, lost, rep.LostSockets)
	assert.Equal(t, lost, rep.URLs[gone].SocketsLost, "every socket of the node that went was lost")
	require.NotNil(t, rep.Back, "a report of the way back")
	b := rep.Back
	t.Logf("back: %d reconnections, never back %d, all back %.2fs after the first loss, loss→welcome %+v", b.Reconnections, b.NeverBack, b.AllBackSec, b.LossToWelcome)
	assert.Zero(t, b.NeverBack, "players who lost their socket and never got welcome again")
	assert.Equal(t, lost, b.Reconnections, "a welcome after every lost socket")
	assert.Equal(t, lost, b.LossToWelcome.Count)
	assert.Less(t, b.AllBackSec, limit.Seconds(), "everyone back in time")
	assert.GreaterOrEqual(t, b.LastWelcomeSec, b.FirstLossSec)
	require.NotNil(t, b.Last)
	assert.InDelta(t, b.LastWelcomeSec, b.Last.WelcomeSec, 1e-9)
	require.Len(t, b.URLs, len(rep.URLs))
	sum := 0
	for u, ub := range b.URLs {
		perSecond := 0
		for _, n := range ub.PerSecond {
			perSecond += n
		}
		assert.Equal(t, ub.Reconnections, perSecond, "%s: the per-second counts add up", ub.URL)
		assert.Equal(t, rep.URLs[u].Reconnects, ub.Reconnections, "%s: every reconnection to it followed a loss", ub.URL)
		sum += ub.Reconnections
	}
	assert.Zero(t, b.URLs[gone].Reconnections, "nobody came back to the node that went")
	assert.Equal(t, lost, sum)
}

// One node is stopped (SIGTERM: it closes its sockets with 1001) while
// players queue: its players reconnect to the other node, get their
// tickets back in welcome, and every player gets match.ready once. The
// queue's matches take all 40 players, so no match forms before every
// player queued, after the stop.
func TestNodeStoppedMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lobbyd")
	}
	n1, n2 := twoNodes(t, "LOBBYD_CONFIG="+queueFile(t, 40))
	lines, done := startLoad(t, "-url", n1.URL+","+n2.URL, "-players", "40", "-preconnect", "-rate", "6",
		"-duration", "40s", "-json")

	// Once some players queued, and before all did, node 2 goes.
	actWhen(t, lines, done, func(p progress) bool { return p.searching >= 3 }, func(p progress) {
		require.Less(t, p.searching, 40, "every player queued before the stop: the test proves nothing")
		require.NoError(t, n2.Stop())
	})
	r := <-done
	require.NoError(t, r.err, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	var rep report
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	t.Logf("lost sockets %d resumed %d redelivered %d urls %+v errors %v", rep.LostSockets, rep.Resumed, rep.Redelivered, rep.URLs, rep.Errors)
	assert.Equal(t, 40, rep.Matched)
	assert.Equal(t, 1, rep.Matches)
	assert.Zero(t, rep.Failed)
	assert.Zero(t, rep.Lost)
	assert.Empty(t, rep.Violations)
	require.Len(t, rep.URLs, 2)
	assert.Equal(t, 20, rep.URLs[1].SocketsLost, "every socket of node 2 was closed")
	assert.Equal(t, 20, rep.LostSockets)
	assert.Equal(t, 20, rep.URLs[0].Reconnects, "node 2's players reconnected to node 1")
	assert.Equal(t, 40, rep.URLs[0].Matched)
	assert.Zero(t, rep.URLs[1].Matched)
	assert.Positive(t, rep.Resumed, "the players queued on node 2 got their tickets back in welcome")
	// Each lost socket is counted once among the errors, by why: the close
	// read while waiting, or the write of a player about to queue.
	why := 0
	for kind, n := range rep.Errors {
		if kind == "close 1001" || strings.HasPrefix(kind, "write: ") || strings.HasPrefix(kind, "socket: ") {
			why += n
		}
	}
	assert.Equal(t, rep.LostSockets, why, "%v", rep.Errors)
	assert.Equal(t, 40, rep.Latency.JoinToReady.Count)
	everyoneBack(t, rep, 1, 20, 30*time.Second)
}
