package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseProm(t *testing.T) {
	m, err := parseProm(strings.NewReader(`# HELP process_cpu_seconds_total x
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
lobbyd_queue_depth{queue="default"} 17
lobbyd_queue_depth{queue="with \"quotes\""} 3
lobbyd_ticket_wait_seconds_bucket{queue="default",le="+Inf"} 9
process_resident_memory_bytes 2.5100288e+07
broken line
`))
	require.NoError(t, err)
	assert.Equal(t, 12.5, *m.get("process_cpu_seconds_total"))
	assert.Equal(t, 17.0, *m.get("lobbyd_queue_depth" + promLabel("queue", "default")))
	assert.Equal(t, 3.0, *m.get("lobbyd_queue_depth" + promLabel("queue", `with "quotes"`)))
	assert.Equal(t, 9.0, *m.get(`lobbyd_ticket_wait_seconds_bucket{queue="default",le="+Inf"}`))
	assert.Equal(t, 25100288.0, *m.get("process_resident_memory_bytes"))
	assert.Nil(t, m.get("lobbyd_connections"))
}

// fakeMetrics serves a lobbyd's /metrics whose counters grow with every
// scrape, and GET /v1/queues; leader says whether it leads the queue.
func fakeMetrics(t *testing.T, leader bool) (*httptest.Server, *atomic.Int64) {
	scrapes := new(atomic.Int64)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		n := scrapes.Add(1)
		lead := 0
		if leader {
			lead = 1
		}
		fmt.Fprintf(w, "process_cpu_seconds_total %g\nprocess_resident_memory_bytes %d\nlobbyd_connections %d\n"+
			"lobbyd_queue_leader{queue=\"default\"} %d\nlobbyd_queue_depth{queue=\"default\"} 42\n", 0.1*float64(n), 1<<20*n, 10*n, lead)
		if n > 2 { // a queue's counter appears with its first match
			fmt.Fprintf(w, "lobbyd_matches_formed_total{queue=\"default\"} %d\n", n)
		}
	})
	mux.HandleFunc("GET /v1/queues", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"queues":[{"name":"other","maxUsers":4,"depth":1},{"name":"default","maxUsers":4,"depth":7}]}`)
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s, scrapes
}

func TestSamplerReadsLobbydMetrics(t *testing.T) {
	for _, leader := range []bool{true, false} {
		t.Run(fmt.Sprintf("leader=%v", leader), func(t *testing.T) {
			srv, scrapes := fakeMetrics(t, leader)
			l := newLoad(config{URL: srv.URL, URLs: []string{srv.URL}, Queue: "default", MaxConnecting: 4, SampleInterval: 20 * time.Millisecond}, nil)
			l.start = time.Now()
			l.matched.Store(3)
			stop := l.startSampler(context.Background())
			// A sample scrapes /metrics once: wait for a few.
			require.Eventually(t, func() bool { return scrapes.Load() >= 4 }, 10*time.Second, time.Millisecond)
			s := stop()

			assert.Equal(t, 0.02, s.IntervalSec)
			require.GreaterOrEqual(t, len(s.Samples), 4)
			var prev float64
			for i, smp := range s.Samples {
				require.NotNil(t, smp.ServerCPUSec, "sample %d", i)
				require.NotNil(t, smp.ServerRSS)
				require.NotNil(t, smp.ServerConns)
				require.NotNil(t, smp.MatchesFormed, "0 until the counter appears")
				require.NotNil(t, smp.QueueDepth)
				assert.EqualValues(t, 3, smp.Matched)
				assert.GreaterOrEqual(t, smp.AtSec, prev, "in time order")
				prev = smp.AtSec
				if leader {
					assert.Equal(t, 42.0, *smp.QueueDepth, "the leader's gauge")
				} else {
					assert.Equal(t, 7.0, *smp.QueueDepth, "GET /v1/queues, the node not leading")
				}
			}
			assert.Zero(t, *s.Samples[0].MatchesFormed)
			assert.Greater(t, *s.Samples[len(s.Samples)-1].ServerCPUSec, *s.Samples[0].ServerCPUSec)
			if leader {
				assert.Equal(t, depthFromLeader, s.QueueDepthSource)
			} else {
				assert.Equal(t, depthFromQueues, s.QueueDepthSource)
			}
		})
	}
}

// A server without /metrics (echoref, the fake) leaves lobbyd's figures
// out; lobbyload's own are there.
func TestSamplerWithoutMetrics(t *testing.T) {
	fake := newFakeLobbyd(t, 1, "")
	l := newLoad(config{URL: fake.URL, URLs: []string{fake.URL}, Queue: "default", MaxConnecting: 4, SampleInterval: 20 * time.Millisecond}, nil)
	l.start = time.Now()
	l.open.Store(5)
	stop := l.startSampler(context.Background())
	s := stop() // the sampler takes one sample at its start and one at its stop
	require.NotEmpty(t, s.Samples)
	for _, smp := range s.Samples {
		assert.Nil(t, smp.ServerCPUSec)
		assert.Nil(t, smp.QueueDepth, "the fake's GET /v1/queues has no depth")
		assert.EqualValues(t, 5, smp.Open)
	}
	assert.Empty(t, s.QueueDepthSource)
}

// loadtest.sh puts its defaults first and the caller's flags after them:
// the last value of a flag wins.
func TestLaterFlagsWin(t *testing.T) {
	cfg, err := loadConfig([]string{"-players", "4000", "-lobby-share", "0.25", "-duration", "2m", "-players", "100", "-html", "r.html"},
		func(string) string { return "" }, nil)
	require.NoError(t, err)
	assert.Equal(t, 100, cfg.Players)
	assert.Equal(t, 0.25, cfg.LobbyShare, "a default not overridden stays")
	assert.Equal(t, 2*time.Minute, cfg.Duration)
	assert.Equal(t, "r.html", cfg.HTMLFile)
}

// The report lists every flag with its value and where it came from, and
// never a secret.
func TestSettings(t *testing.T) {
	env := map[string]string{"LOBBYLOAD_QUEUE": "ranked", "LOBBYLOAD_JWT_SECRET": "a-secret-never-shown"}
	cfg, err := loadConfig([]string{"-players", "7", "-redis-url", "redis://:a-redis-password@127.0.0.1:6379/15"}, func(k string) string { return env[k] }, nil)
	require.NoError(t, err)
	by := map[string]setting{}
	for _, s := range cfg.Settings {
		by[s.Name] = s
	}
	assert.Equal(t, setting{Name: "players", Value: "7", From: "flag", Usage: by["players"].Usage}, by["players"])
	assert.Equal(t, "ranked", by["queue"].Value)
	assert.Equal(t, "env", by["queue"].From)
	assert.Equal(t, "default", by["rate"].From)
	assert.Equal(t, "(set, not shown)", by["jwt-secret"].Value)
	assert.Contains(t, by["players"].Usage, "LOBBYLOAD_PLAYERS")
	for _, name := range []string{"url", "players", "rate", "duration", "preconnect", "sample-interval", "baseline", "label", "server-version", "json-file", "report-from"} {
		assert.Contains(t, by, name)
	}
	assert.Equal(t, "redis://:xxxxx@127.0.0.1:6379/15", by["redis-url"].Value)
	b, _ := json.Marshal(cfg.Settings)
	assert.NotContains(t, string(b), "a-secret-never-shown")
	assert.NotContains(t, string(b), "a-redis-password")
}

// -json-file writes the JSON report, -baseline compares a run with it (in
// the text, the JSON and the HTML report), and -report-from writes the
// reports of a saved run again.
func TestBaselineAndSavedReports(t *testing.T) {
	dir := t.TempDir()
	first, second, page := filepath.Join(dir, "first.json"), filepath.Join(dir, "second.json"), filepath.Join(dir, "r.html")
	fake := newFakeLobbyd(t, 1, "")
	stdout, _, err := runLoad(t, nil, "-url", fake.URL, "-players", "8", "-duration", "10s", "-label", "first", "-json-file", first)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "result: OK", "text on stdout, JSON in the file")
	base, err := readBaseline(first)
	require.NoError(t, err)
	assert.Equal(t, "first", base.Label)
	assert.Equal(t, 8, base.Matched)
	assert.NotEmpty(t, base.Series.Samples)
	assert.Len(t, base.LatencyCDF.JoinToReady, len(cdfQuantiles))

	stdout, stderr, err := runLoad(t, nil, "-url", fake.URL, "-players", "8", "-duration", "10s", "-baseline", first,
		"-json-file", second, "-html", page)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "vs baseline "+first+" (first)")
	assert.Contains(t, stdout, "throughput")
	assert.Contains(t, stderr, "lobbyload: HTML report in "+page)
	saved, err := readBaseline(second)
	require.NoError(t, err)
	require.NotNil(t, saved.VsBaseline)
	assert.True(t, saved.VsBaseline.SameScenario)
	assert.Equal(t, "players matched", saved.VsBaseline.Rows[0].Metric)
	html, err := os.ReadFile(page)
	require.NoError(t, err)
	assert.Contains(t, string(html), "Compared with the baseline")

	// The saved run's page again, against another baseline, without running.
	again := filepath.Join(dir, "again.html")
	stdout, _, err = runLoad(t, nil, "-report-from", second, "-baseline", second, "-html", again)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "vs baseline "+second)
	html, err = os.ReadFile(again)
	require.NoError(t, err)
	assert.Contains(t, string(html), "±0 (&#43;0.0%)")

	_, _, err = runLoad(t, nil, "-url", fake.URL, "-baseline", filepath.Join(dir, "missing.json"))
	assert.ErrorContains(t, err, "invalid configuration")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "text.json"), []byte("players 8\n"), 0o644))
	_, err = readBaseline(filepath.Join(dir, "text.json"))
	assert.ErrorContains(t, err, "not a lobbyload -json report")
}

func TestCompare(t *testing.T) {
	base, run := syntheticReport(1), syntheticReport(1)
	run.ThroughputPerSec = base.ThroughputPerSec * 0.5
	run.Latency.JoinToReady.P99 = base.Latency.JoinToReady.P99 * 0.5
	run.Latency.JoinToReady.P50 = base.Latency.JoinToReady.P50 * 1.005
	run.Scenario += " (changed)"
	run.compare(base, "b.json")
	rows := map[string]comparisonRow{}
	for _, row := range run.VsBaseline.Rows {
		rows[row.Metric] = row
	}
	assert.False(t, run.VsBaseline.SameScenario)
	assert.Equal(t, -1, rows["throughput"].Better, "half the throughput is worse")
	assert.InDelta(t, -50, *rows["throughput"].DiffPct, 1e-9)
	assert.Equal(t, 1, rows["queue.join→match.ready p99"].Better, "half the latency is better")
	assert.Equal(t, 0, rows["queue.join→match.ready p50"].Better, "within 1%: neither")
	assert.Equal(t, 0, rows["players matched"].Better)
	assert.Contains(t, rows, "lobbyd peak RSS")
	assert.Contains(t, rows, "lobbyd CPU per matched player")
}
