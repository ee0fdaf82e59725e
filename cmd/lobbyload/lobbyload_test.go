package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lobbyd/lobbyd/internal/testutil"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runLoad runs the generator as main does, with a deadline, and returns its
// stdout, stderr and error.
func runLoad(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, append([]string{"-progress", "off"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestMain(m *testing.M) {
	if _, ok := workerSpec(os.Args[1:]); ok {
		// A worker of a -procs run started by a test: this test binary is
		// the executable the parent re-executes.
		main()
		os.Exit(0)
	}
	code := m.Run()
	testutil.RemoveLobbydBinary()
	os.Exit(code)
}

// startLobbyd runs the lobbyd binary on a free port with dev auth, as `make
// run` does, and returns its base URL. It is stopped at cleanup.
func startLobbyd(t *testing.T) string { return testutil.StartLobbyd(t) }

// The scenario against the real server: every player matched, no
// violations, and a valid JSON report.
func TestRunAgainstLobbyd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lobbyd")
	}
	url := startLobbyd(t)
	stdout, stderr, err := runLoad(t, nil, "-url", url, "-players", "200", "-lobby-share", "0.3", "-lobby-size", "2",
		"-leave-share", "0.1", "-reconnect-share", "0.1", "-duration", "20s", "-settle", "2s", "-json")
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)

	var rep report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	t.Logf("elapsed %.2fs matched %d left after found %d lost %d late leaves %d errors %v",
		rep.ElapsedSec, rep.Matched, rep.LeftAfterFound, rep.Lost, rep.LateLeaves, rep.Errors)
	assert.Equal(t, 200, rep.Players)
	assert.Equal(t, 200, rep.Connected)
	assert.Equal(t, 0, rep.Failed)
	assert.Empty(t, rep.Violations)
	// A leave may land after match.found, which the protocol allows: that
	// player gets no match.ready and does not queue again. Rarely it is
	// noticed only after queueing again, which can strand a few players.
	assert.Equal(t, 200, rep.Matched+rep.LeftAfterFound+rep.Lost)
	if rep.LateLeaves == 0 {
		assert.Equal(t, 0, rep.Lost)
	}
	assert.Equal(t, 30, rep.Lobbies)
	assert.Equal(t, 20, rep.Reconnects)
	assert.GreaterOrEqual(t, rep.Leaves, 1)
	assert.Equal(t, 220, rep.Latency.Connect.Count, "one connect per player, two per reconnecter")
	assert.Equal(t, rep.Matched, rep.Latency.JoinToReady.Count)
	assert.Greater(t, rep.ThroughputPerSec, 0.0)
	assert.Len(t, rep.Timeline, rep.Matched)
	require.NotNil(t, rep.CPU, "lobbyd's CPU from its /metrics")
	assert.Greater(t, rep.CPU.ServerSec, 0.0)
	assert.InDelta(t, rep.CPU.ServerSec*1e6/float64(rep.Matched), rep.CPU.ServerUsPerPlayer, 1e-6)
	assert.Nil(t, rep.CPU.RedisSec, "no -redis-url: no Redis figure")
	assert.Empty(t, stderr, "no progress line when stderr is not a terminal")

	// The run over time: lobbyload's counts and lobbyd's /metrics.
	require.GreaterOrEqual(t, len(rep.Series.Samples), 2)
	first, last := rep.Series.Samples[0], rep.Series.Samples[len(rep.Series.Samples)-1]
	assert.Zero(t, first.Matched)
	assert.EqualValues(t, rep.Matched, last.Matched)
	assert.Zero(t, last.Open, "every socket closed by the end")
	for _, s := range []*float64{last.ServerCPUSec, last.ServerRSS, last.ServerConns, last.MatchesFormed, last.QueueDepth, last.LoadCPUSec} {
		require.NotNil(t, s)
	}
	assert.Positive(t, *last.MatchesFormed)
	assert.Positive(t, *last.ServerRSS)
	assert.Equal(t, depthFromLeader, rep.Series.QueueDepthSource, "one node: it leads the queue")
	// What ran where.
	require.NotNil(t, rep.Host)
	assert.Positive(t, rep.Host.CPUs)
	assert.True(t, rep.Host.ServerLocal)
	require.NotNil(t, rep.Build)
	assert.Len(t, rep.LatencyCDF.JoinToReady, len(cdfQuantiles))
	assert.Equal(t, rep.Latency.JoinToReady.Max, rep.LatencyCDF.JoinToReady[len(cdfQuantiles)-1].Ms)
	for _, st := range rep.Settings {
		if st.Name == "players" {
			assert.Equal(t, setting{Name: "players", Value: "200", From: "flag", Usage: st.Usage}, st)
		}
	}
}

// -preconnect against the real server: every player connects before anyone
// queues, lobbies included, and the report carries the connect phase and
// the queueing phase's throughput and latencies.
func TestPreconnectAgainstLobbyd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lobbyd")
	}
	url := startLobbyd(t)
	stdout, stderr, err := runLoad(t, nil, "-url", url, "-players", "300", "-preconnect", "-lobby-share", "0.2", "-lobby-size", "2",
		"-max-connecting", "64", "-duration", "30s", "-json")
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)

	var rep report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	t.Logf("connect phase %.2fs queueing phase %.2fs throughput %.0f/s errors %v",
		rep.ConnectPhaseSec, rep.QueueingPhaseSec, rep.ThroughputPerSec, rep.Errors)
	assert.True(t, rep.Preconnect)
	assert.Contains(t, rep.Scenario, "preconnect=true")
	assert.Equal(t, 300, rep.Players)
	assert.Equal(t, 300, rep.Connected)
	assert.Equal(t, 300, rep.Matched)
	assert.Equal(t, 0, rep.Failed)
	assert.Equal(t, 0, rep.Lost)
	assert.Empty(t, rep.Violations)
	assert.Equal(t, 30, rep.Lobbies)
	assert.Greater(t, rep.ConnectPhaseSec, 0.0)
	assert.Greater(t, rep.QueueingPhaseSec, 0.0)
	assert.Less(t, rep.ConnectPhaseSec+rep.QueueingPhaseSec, rep.ElapsedSec, "both phases lie within the run")
	assert.InDelta(t, float64(rep.Matched)/rep.QueueingPhaseSec, rep.ThroughputPerSec, 0.01*rep.ThroughputPerSec,
		"throughput is over the queueing phase")
	assert.Equal(t, 300, rep.Latency.Connect.Count, "one connect per player")
	assert.Equal(t, 270, rep.Latency.JoinReply.Count, "one queue.join per solo player and per lobby")
	assert.Equal(t, 300, rep.Latency.JoinToReady.Count)
	assert.Greater(t, rep.Latency.JoinToReady.P99, 0.0)
	assert.Len(t, rep.Timeline, 300)
	for _, p := range rep.Timeline {
		require.Greater(t, p.AtSec, 0.0, "timeline counts from the barrier")
		require.LessOrEqual(t, p.AtSec, rep.QueueingPhaseSec)
	}
}

// With -preconnect no queue.join reaches the server before every player
// got welcome; without it (the control) some do, with dialling throttled.
func TestPreconnectBarrier(t *testing.T) {
	for _, tc := range []struct {
		name       string
		preconnect bool
	}{{"preconnect", true}, {"control", false}} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeLobbyd(t, 1, "")
			args := []string{"-url", fake.URL, "-players", "40", "-max-connecting", "2", "-duration", "20s"}
			if tc.preconnect {
				args = append(args, "-preconnect")
			}
			stdout, _, err := runLoad(t, nil, args...)
			require.NoError(t, err, stdout)
			fewest, joins := fake.fewestWelcomedAtJoin()
			assert.Equal(t, 40, joins)
			if tc.preconnect {
				assert.EqualValues(t, 40, fewest, "a queue.join arrived before every player was connected")
				assert.Contains(t, stdout, "preconnected: connect phase")
				assert.Contains(t, stdout, "barrier to last match.ready")
			} else {
				assert.Less(t, fewest, int64(40))
				assert.NotContains(t, stdout, "preconnected")
			}
		})
	}
}

// Players who cannot connect fail in the connect phase and are not queued;
// the run fails.
func TestPreconnectConnectFailures(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "a-secret-the-generator-does-not-know-at-all")
	stdout, _, err := runLoad(t, map[string]string{"LOBBYLOAD_JWT_SECRET": "the-wrong-secret-for-this-fake-server"},
		"-url", fake.URL, "-players", "5", "-preconnect", "-duration", "10s", "-json")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "5 player(s) failed")
	var rep report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	assert.True(t, rep.Preconnect)
	assert.Equal(t, 0, rep.Connected)
	assert.Equal(t, 5, rep.Failed)
	assert.Equal(t, 5, rep.Errors["connect: HTTP 401"])
	_, joins := fake.fewestWelcomedAtJoin()
	assert.Zero(t, joins)
}

func TestPreconnectHTMLReport(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "")
	out := filepath.Join(t.TempDir(), "report.html")
	stdout, _, err := runLoad(t, nil, "-url", fake.URL, "-players", "5", "-preconnect", "-duration", "10s", "-html", out)
	require.NoError(t, err, stdout)
	page, err := os.ReadFile(out)
	require.NoError(t, err)
	html := string(page)
	assert.Contains(t, html, "Preconnected")
	assert.Contains(t, html, "<th>connect phase</th>")
	assert.Contains(t, html, "<th>queueing phase (barrier to last match.ready)</th>")
	assert.Contains(t, html, "seconds since the barrier")
}

// A server that sends match.ready twice fails the run, naming the duplicate.
func TestDuplicateMatchReadyFailsRun(t *testing.T) {
	fake := newFakeLobbyd(t, 2, "")
	stdout, _, err := runLoad(t, nil, "-url", fake.URL, "-players", "3", "-duration", "10s")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "duplicate match.ready")
	assert.Contains(t, stdout, "duplicate match.ready")
	assert.Contains(t, stdout, "result: FAILED")
}

// Players of one match who are told different invitation ids fail the run.
func TestMatchDisagreementFailsRun(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "")
	fake.OneMatch = true
	stdout, _, err := runLoad(t, nil, "-url", fake.URL, "-players", "2", "-duration", "10s")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "match.ready disagreement")
	assert.Contains(t, stdout, "match m-all")
}

// A server that never sends match.ready loses players, which fails the run
// once the duration passes.
func TestMissingMatchReadyFailsRun(t *testing.T) {
	fake := newFakeLobbyd(t, 0, "")
	stdout, _, err := runLoad(t, nil, "-url", fake.URL, "-players", "2", "-duration", "300ms")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "2 player(s) lost")
	assert.Contains(t, stdout, "timeout: no match.ready before the run ended")
}

func TestHTMLReport(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "")
	out := filepath.Join(t.TempDir(), "report.html")
	stdout, _, err := runLoad(t, nil, "-url", fake.URL, "-players", "5", "-duration", "10s", "-html", out)
	require.NoError(t, err, stdout)
	page, err := os.ReadFile(out)
	require.NoError(t, err)
	html := string(page)
	assert.Contains(t, html, "<svg")
	assert.Equal(t, 5, strings.Count(html, "<circle"), "one point per matched player")
	assert.NotContains(t, html, "<script")
	assert.NotContains(t, html, "src=", "self-contained: no external resources")
	assert.NotContains(t, html, "href=")
	assert.Contains(t, stdout, "result: OK")
}

// With -jwt-secret (here from the environment) tokens are signed locally,
// and the secret never appears in the output.
func TestJWTSecretSignsTokens(t *testing.T) {
	const secret = "a-test-secret-of-at-least-32-bytes!!"
	fake := newFakeLobbyd(t, 1, secret)
	stdout, stderr, err := runLoad(t, map[string]string{"LOBBYLOAD_JWT_SECRET": secret}, "-url", fake.URL, "-players", "4", "-duration", "10s", "-json")
	require.NoError(t, err, stdout)
	var rep report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	assert.Equal(t, 4, rep.Matched)
	assert.NotContains(t, stdout+stderr, secret)
}

func TestSourceIPsRoundRobin(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "")
	stdout, _, err := runLoad(t, nil, "-url", fake.URL, "-players", "6", "-duration", "10s", "-source-ips", "127.0.0.1-127.0.0.3")
	require.NoError(t, err, stdout)
	assert.ElementsMatch(t, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, fake.sourceIPs())
}

func TestConnectOnlyHoldsUntilDuration(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "")
	stdout, _, err := runLoad(t, nil, "-url", fake.URL, "-players", "10", "-connect-only", "-duration", "300ms", "-json")
	require.NoError(t, err, stdout)
	var rep report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	assert.Equal(t, 10, rep.Connected)
	assert.Equal(t, 0, rep.Matched)
	assert.GreaterOrEqual(t, rep.ElapsedSec, 0.3)
}

func TestInvalidConfiguration(t *testing.T) {
	for _, args := range [][]string{
		{"-players", "0"},
		{"-lobby-share", "1.5"},
		{"-url", "ftp://x"},
		{"-source-ips", "127.0.0.9-127.0.0.1"},
		{"-progress", "sometimes"},
		{"-preconnect", "-connect-only"},
	} {
		_, _, err := runLoad(t, nil, args...)
		assert.ErrorContains(t, err, "invalid configuration", "%v", args)
	}
}

func TestParseSourceIPs(t *testing.T) {
	got, err := parseSourceIPs("10.0.0.254-10.0.1.1, 127.0.0.5")
	require.NoError(t, err)
	var s []string
	for _, a := range got {
		s = append(s, a.String())
	}
	assert.Equal(t, []string{"10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1", "127.0.0.5"}, s)
	_, err = parseSourceIPs("nope")
	assert.Error(t, err)
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	p := newPercentiles(ds)
	assert.Equal(t, percentiles{Count: 100, P50: 50, P90: 90, P99: 99, Max: 100}, p)
	assert.Equal(t, percentiles{}, newPercentiles(nil))
}

// syncBuffer captures output written concurrently.
type syncBuffer = testutil.SyncBuffer

// The abuse scenario against the real server: the flooders are closed with
// 1008 and then refused (429) while the penalty lasts; the well-behaved
// players' pings all succeed.
func TestAbuseScenarioAgainstLobbyd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lobbyd")
	}
	url := startLobbyd(t)
	stdout, stderr, err := runLoad(t, nil, "-url", url, "-pingers", "5", "-abusers", "2", "-duration", "3s", "-json")
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	var rep abuseReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	assert.Positive(t, rep.Ping.Count, "pings were answered")
	assert.Zero(t, rep.PingErrors)
	assert.Equal(t, 2, rep.Closes["1008"], "each flooder was closed with 1008 once: %v", rep.Closes)
	assert.Equal(t, 2, rep.Upgrades, "and not let in again during the penalty")
	assert.Positive(t, rep.Refused["429"], "reconnects were refused: %v", rep.Refused)
}
