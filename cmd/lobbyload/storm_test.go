package main

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The reconnect storm of make storm (cmd/lobbyload/storm.sh), small: three
// nodes on one Redis, players spread over them, some matched (holding
// their sockets), some queued, some in lobbies and some not yet queued
// when node 3 is killed with SIGKILL (no close frame: its sockets just
// end). Every one of its players reconnects to one of the other two (at
// random, as behind a load balancer), gets welcome with what it had, and
// every player gets its match.ready once: no ticket, lobby place or match
// result lost, everyone back well within 30 s.
func TestNodeKilledMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lobbyd")
	}
	const players = 300
	// A held allocation job of the killed node is claimed by another after
	// twice the deadline + 15 s: 1 s keeps that within the test's time.
	nodes, redisURL := startNodes(t, 3, "LOBBYD_CONFIG="+queueFile(t, 4), "LOBBYD_ALLOCATION_DEADLINE=1s")
	urls := nodes[0].URL + "," + nodes[1].URL + "," + nodes[2].URL
	lines, done := startLoad(t, "-url", urls, "-players", "300", "-preconnect", "-rate", "40", "-lobby-share", "0.2",
		"-lobby-size", "2", "-reconnect-to", "random", "-duration", "45s", "-json")

	// Node 3 dies once players are matched (holding their sockets) and
	// queued, and while many have not queued yet.
	var killedAt time.Time
	at := actWhen(t, lines, done, func(p progress) bool {
		return p.matched >= 40 && p.searching >= 2 && p.connected-p.searching-p.matched >= 60
	}, func(progress) {
		nodes[2].Kill()
		killedAt = time.Now()
	})
	lobbies := countKeys(t, redisURL, "{l:*}")
	t.Logf("killed node 3 at: connected %d, searching %d, matched %d; %d lobbies", at.connected, at.searching, at.matched, lobbies)
	assert.Positive(t, lobbies, "players were in lobbies when the node died")

	r := <-done
	t.Logf("run ended %.1fs after the kill", time.Since(killedAt).Seconds())
	require.NoError(t, r.err, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	var rep report
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	t.Logf("lost sockets %d resumed %d redelivered %d urls %+v errors %v", rep.LostSockets, rep.Resumed, rep.Redelivered, rep.URLs, rep.Errors)
	assert.Equal(t, players, rep.Connected)
	assert.Equal(t, players, rep.Matched, "every player got match.ready")
	assert.Equal(t, players/4, rep.Matches)
	assert.Equal(t, 30, rep.Lobbies)
	assert.Zero(t, rep.Failed)
	assert.Zero(t, rep.Lost)
	assert.Empty(t, rep.Violations)
	// Node 3 held player i for every i mod 3 = 2 (preconnected, nobody
	// moves before the kill): each lost its socket, without a close frame.
	everyoneBack(t, rep, 2, players/3, 30*time.Second)
	assert.Positive(t, rep.Resumed, "welcome gave tickets, lobbies or matches back")
	for u := range 2 {
		assert.Positive(t, rep.Back.URLs[u].Reconnections, "%s: took a share of the storm", rep.URLs[u].URL)
	}
	assert.Zero(t, rep.Errors["close 1001"], "a killed node sends no close frame")
	assert.Equal(t, players, rep.Latency.JoinToReady.Count)
}

// countKeys counts the keys of the Redis at url that match pattern.
func countKeys(t *testing.T, url, pattern string) int {
	t.Helper()
	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := 0
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	require.NoError(t, iter.Err())
	return n
}

// A matched player whose socket is lost while it holds it, and who never
// gets welcome again, fails the run: before the way back was followed, a
// matched player was counted as done whatever became of its socket.
func TestNeverBackFailsRun(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "")
	fake.CloseAfterReady, fake.RefuseReconnects = true, true
	stdout, _, err := runLoad(t, nil, "-url", fake.URL, "-players", "6", "-duration", "2s", "-json")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "6 player(s) lost their socket and never got welcome again")
	var rep report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	assert.Equal(t, 6, rep.Matched, "matched before their sockets went")
	assert.Zero(t, rep.Failed+rep.Lost)
	require.NotNil(t, rep.Back)
	assert.Equal(t, 6, rep.Back.NeverBack)
	assert.Zero(t, rep.Back.Reconnections)
	assert.Len(t, rep.Failures, 6)
	assert.Contains(t, rep.Failures[0], "no welcome after it")

	// The same players coming back pass, and their way back is measured.
	ok := newFakeLobbyd(t, 1, "")
	ok.CloseAfterReady = true
	stdout, _, err = runLoad(t, nil, "-url", ok.URL, "-players", "6", "-duration", "10s", "-json")
	require.NoError(t, err, stdout)
	rep = report{}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	require.NotNil(t, rep.Back)
	assert.Equal(t, 6, rep.Back.Reconnections)
	assert.Zero(t, rep.Back.NeverBack)
	assert.Equal(t, 6, rep.Back.URLs[0].Reconnections)
	assert.Positive(t, rep.Back.LossToWelcome.P50)
}

// A preconnected player waiting for its turn to queue (-rate) replaces a
// lost socket at once, as a client would, and not when its turn comes:
// the last players' turns here are 4 s after the drop.
func TestWaitingPlayersReconnectAtOnce(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "")
	fake.DropAfter = 500 * time.Millisecond
	stdout, _, err := runLoad(t, nil, "-url", fake.URL, "-players", "40", "-preconnect", "-rate", "8", "-duration", "20s", "-json")
	require.NoError(t, err, stdout)
	var rep report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	assert.Equal(t, 40, rep.Matched)
	assert.Equal(t, 40, rep.LostSockets, "every first socket was dropped")
	require.NotNil(t, rep.Back)
	assert.Equal(t, 40, rep.Back.Reconnections)
	assert.Less(t, rep.Back.LossToWelcome.Max, 2000.0, "back at once, not at the player's turn")
	assert.Less(t, rep.Back.AllBackSec, 2.0)
}

// The figures of the way back, from reconnections made up here.
func TestBackReport(t *testing.T) {
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := func(sec float64) time.Time { return start.Add(time.Duration(sec * float64(time.Second))) }
	urls := []string{"http://a", "http://b", "http://c"}
	var backs []reconnection
	// Node c dies at 10.5 s: 10 players back on a within the second, 5 on
	// b in the next, the last at 12.9 s.
	for i := range 10 {
		backs = append(backs, reconnection{URL: 0, Player: "a" + string(rune('0'+i)), Lost: at(10.5), Back: at(10.6 + 0.03*float64(i))})
	}
	for i := range 5 {
		backs = append(backs, reconnection{URL: 1, Player: "b" + string(rune('0'+i)), Lost: at(10.5), Back: at(11.1 + 0.2*float64(i))})
	}
	backs = append(backs, reconnection{URL: 1, Player: "slow", Lost: at(10.51), Back: at(12.9)})
	r := newBackReport(backs, 1, urls, start)
	require.NotNil(t, r)
	assert.Equal(t, 16, r.Reconnections)
	assert.Equal(t, 1, r.NeverBack)
	assert.InDelta(t, 10.5, r.FirstLossSec, 1e-9)
	assert.InDelta(t, 12.9, r.LastWelcomeSec, 1e-9)
	assert.InDelta(t, 2.4, r.AllBackSec, 1e-9)
	assert.Equal(t, 10, r.FromSec)
	require.NotNil(t, r.Last)
	assert.Equal(t, backPlayer{Player: "slow", URL: "http://b", LostSec: 10.51, WelcomeSec: 12.9, Ms: 2390}, *roundBack(r.Last))
	assert.Equal(t, 16, r.LossToWelcome.Count)
	assert.InDelta(t, 2390, r.LossToWelcome.Max, 1e-6)

	assert.Equal(t, []int{10, 0, 0}, r.URLs[0].PerSecond, "seconds 10, 11 and 12")
	assert.Equal(t, []int{0, 5, 1}, r.URLs[1].PerSecond)
	assert.Equal(t, []int{0, 0, 0}, r.URLs[2].PerSecond)
	assert.Equal(t, 10, r.URLs[0].PeakPerSec)
	assert.Equal(t, 5, r.URLs[1].PeakPerSec)
	assert.InDelta(t, 10/0.37, r.URLs[0].MeanPerSec, 0.1, "10 over the 0.37 s from the first loss to a's last welcome")
	assert.InDelta(t, 6/2.4, r.URLs[1].MeanPerSec, 0.1)
	assert.Zero(t, r.URLs[2].Reconnections)
	assert.Nil(t, r.URLs[2].Last)

	assert.Nil(t, newBackReport(nil, 0, urls, start), "no socket lost: no report")
	none := newBackReport(nil, 3, urls, start)
	require.NotNil(t, none, "players lost and never back")
	assert.Equal(t, 3, none.NeverBack)

	// The text and HTML reports show it.
	rep := syntheticReport(1)
	rep.URLs = []urlReport{{URL: urls[0]}, {URL: urls[1]}, {URL: urls[2]}}
	rep.Back = r
	var text strings.Builder
	require.NoError(t, rep.writeText(&text))
	assert.Regexp(t, `all back +2\.40 s after the first loss +\(first loss at 10\.50 s, last welcome at 12\.90 s`, text.String())
	assert.Regexp(t, `http://b +6 +1000\.0 +2390\.0 +2390\.0 +2390\.0 +2390\.0\n`, text.String())
	assert.Regexp(t, `http://a +10 +27\.0 +10 0 0\n`, text.String(), "peak, mean and each second")
	assert.Contains(t, text.String(), "FAILED: ")
	assert.Contains(t, text.String(), "1 player(s) lost their socket and never got welcome again")
	var page strings.Builder
	require.NoError(t, rep.writeHTML(&page))
	pageHas(t, page.String(), "<h2>Back after a lost socket</h2>")
	pageHas(t, page.String(), "<h3>Reconnections per second, by URL</h3>")
	pageHas(t, page.String(), "http://a: peak 10/s")
	assert.Equal(t, 10, strings.Count(page.String(), "<svg "), "the synthetic report's nine charts and this one")
}

// roundBack rounds a backPlayer's figures to what the test compares.
func roundBack(b *backPlayer) *backPlayer {
	r := func(v float64) float64 { return math.Round(v*1000) / 1000 }
	c := *b
	c.LostSec, c.WelcomeSec, c.Ms = r(c.LostSec), r(c.WelcomeSec), r(c.Ms)
	return &c
}
