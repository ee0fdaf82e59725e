package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeOne decodes the one JSON report of stdout, and fails if more
// follows.
func decodeOne(t *testing.T, stdout string) report {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(stdout)))
	var rep report
	require.NoError(t, dec.Decode(&rep), stdout)
	var more json.RawMessage
	require.ErrorIs(t, dec.Decode(&more), io.EOF, "one report, not one per worker")
	return rep
}

// -procs 2: two worker processes each play half the players, and the
// parent prints one report with their counts added up and the latency
// percentiles of all their samples.
func TestProcsMergeIntoOneReport(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "")
	stdout, stderr, err := runLoad(t, nil, "-url", fake.URL, "-players", "60", "-procs", "2", "-duration", "20s", "-json")
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	rep := decodeOne(t, stdout)
	assert.Equal(t, 2, rep.Procs)
	assert.Equal(t, 60, rep.Players)
	assert.Equal(t, 60, rep.Connected)
	assert.Equal(t, 60, rep.Matched)
	assert.Equal(t, 60, rep.Matches, "every player its own match (the fake's queue takes 1)")
	assert.Zero(t, rep.Failed+rep.Lost)
	assert.Empty(t, rep.Violations)
	require.Len(t, rep.Workers, 2)
	for i, w := range rep.Workers {
		assert.Equal(t, i, w.Worker)
		assert.Equal(t, 30, w.Players, "a contiguous half each")
		assert.Equal(t, 30, w.Matched)
		assert.Positive(t, w.CPUSec)
	}
	for name, p := range map[string]percentiles{"connect": rep.Latency.Connect, "join": rep.Latency.JoinReply, "ready": rep.Latency.JoinToReady} {
		assert.Equal(t, 60, p.Count, "%s: every worker's samples", name)
		assert.Positive(t, p.P50, name)
		assert.GreaterOrEqual(t, p.P99, p.P50, name)
		assert.GreaterOrEqual(t, p.Max, p.P99, name)
	}
	assert.Len(t, rep.LatencyCDF.JoinToReady, len(cdfQuantiles))
	assert.Len(t, rep.Timeline, 60)
	assert.Positive(t, rep.ThroughputPerSec)
	require.Len(t, rep.URLs, 1)
	assert.Equal(t, urlReport{URL: fake.URL, Players: 60, Connected: 60, Matched: 60}, rep.URLs[0])
	// The parent's time series sums the workers' counts.
	last := rep.Series.Samples[len(rep.Series.Samples)-1]
	assert.EqualValues(t, 60, last.Matched)
	assert.Zero(t, last.Open)
	require.NotNil(t, last.LoadCPUSec)
	// The fake saw 60 distinct players: the workers' names and ids do not
	// overlap.
	assert.EqualValues(t, 60, fake.ids.Load())
	assert.EqualValues(t, 60, fake.welcomed.Load())

	// The text report says so too.
	stdout, _, err = runLoad(t, nil, "-url", fake.URL, "-players", "6", "-procs", "3", "-duration", "20s")
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "worker (-procs 3)")
	assert.Contains(t, stdout, "result: OK")
}

// The workers share the barrier of -preconnect: no queue.join reaches the
// server before every player of every worker got welcome.
func TestProcsPreconnectBarrier(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "")
	stdout, stderr, err := runLoad(t, nil, "-url", fake.URL, "-players", "40", "-procs", "2", "-preconnect", "-max-connecting", "2",
		"-rate", "200", "-duration", "20s", "-json")
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	fewest, joins := fake.fewestWelcomedAtJoin()
	assert.Equal(t, 40, joins)
	assert.EqualValues(t, 40, fewest, "a queue.join arrived before every player of both workers was connected")
	rep := decodeOne(t, stdout)
	assert.True(t, rep.Preconnect)
	assert.Positive(t, rep.ConnectPhaseSec)
	assert.Positive(t, rep.QueueingPhaseSec)
	for _, p := range rep.Timeline {
		require.Positive(t, p.AtSec, "the timeline counts from the one barrier")
	}
	assert.InDelta(t, 40/rep.QueueingPhaseSec, rep.ThroughputPerSec, 0.01*rep.ThroughputPerSec)
	// At 200 players/s both workers follow one schedule: the 40 queue over
	// about 0.2 s, not 0.1 s each side by side.
	assert.Greater(t, rep.QueueingPhaseSec, 0.19)
}

// Players of one match who are told different invitation ids are caught
// even when different workers play them: each worker alone sees one.
func TestProcsDisagreementAcrossWorkers(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "")
	fake.OneMatch = true
	stdout, _, err := runLoad(t, nil, "-url", fake.URL, "-players", "2", "-procs", "2", "-duration", "10s", "-json")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "match.ready disagreement")
	rep := decodeOne(t, stdout)
	require.Len(t, rep.Workers, 2)
	assert.Equal(t, 1, rep.Workers[0].Players)
	assert.Equal(t, 1, rep.Violations[violationDisagree])
	assert.Equal(t, 1, rep.Matches)
}

// A worker that dies fails the run, with what it wrote to stderr.
func TestProcsWorkerCrashFailsRun(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "")
	old := workerCommand
	defer func() { workerCommand = old }()
	workerCommand = func(spec string) *exec.Cmd {
		if spec == "1/2" {
			return exec.Command("sh", "-c", "head -c 1 >/dev/null; echo 'worker exploded: out of luck' >&2; exit 3")
		}
		return old(spec)
	}
	_, _, err := runLoad(t, nil, "-url", fake.URL, "-players", "10", "-procs", "2", "-duration", "10s")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "worker 1/2")
	assert.Contains(t, err.Error(), "exit status 3")
	assert.Contains(t, err.Error(), "worker exploded: out of luck")
}

// Each worker takes a contiguous share of whole units: a lobby's members
// stay in one process, and the shares cover every player once.
func TestShareKeepsLobbiesTogether(t *testing.T) {
	l := newLoad(config{URL: "http://x", URLs: []string{"http://a", "http://b"}, Players: 101, LobbyShare: 0.5, LobbySize: 3,
		MaxConnecting: 1, Seed: 7}, nil)
	players := l.plan()
	for _, n := range []int{1, 2, 3, 7} {
		seen := 0
		for w := range n {
			part := share(players, w, n)
			require.NotEmpty(t, part)
			assert.Equal(t, players[seen], part[0], "contiguous")
			seen += len(part)
			first, last := part[0], part[len(part)-1]
			if first.group != nil {
				assert.Equal(t, roleLobbyOwner, first.role, "a share starts with a whole lobby")
			}
			if seen < len(players) && last.group != nil {
				assert.NotSame(t, last.group, players[seen].group, "a lobby is split between shares")
			}
		}
		assert.Equal(t, len(players), seen, "n=%d", n)
	}
	for i, p := range players {
		assert.Equal(t, i, p.index)
		assert.Equal(t, i%2, p.url, "player i connects to URL i mod 2 first")
	}
}

func TestBackoffFullJitterCapped(t *testing.T) {
	for n := range 40 {
		for range 20 {
			d := backoff(n)
			assert.GreaterOrEqual(t, d, 0*backoffBase)
			assert.Less(t, d, min(backoffMax, backoffBase<<min(n, 10)))
		}
	}
}

func TestURLList(t *testing.T) {
	got, err := parseURLs("http://a:1/, https://b:2")
	require.NoError(t, err)
	assert.Equal(t, []string{"http://a:1", "https://b:2"}, got)
	for _, bad := range []string{"http://a:1,", "http://a:1,ftp://b", ""} {
		_, err := parseURLs(bad)
		assert.Error(t, err, bad)
	}
	_, _, err = runLoad(t, nil, "-url", "http://a:1,nope")
	assert.ErrorContains(t, err, "invalid configuration")
	_, _, err = runLoad(t, nil, "-procs", "0")
	assert.ErrorContains(t, err, "-procs")
	_, _, err = runLoad(t, nil, "-procs", "2", "-pingers", "1")
	assert.ErrorContains(t, err, "abuse scenario")
}
