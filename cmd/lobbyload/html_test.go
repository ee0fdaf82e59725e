package main

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.html from the current code")

// syntheticReport is a run made up here, the same every time: 400 players
// matched in four formation passes, sampled every 0.25 s, with lobbyd's
// figures; scale stretches its latencies (a slower baseline).
func syntheticReport(scale float64) *report {
	r := &report{
		URL: "http://127.0.0.1:8080", Queue: "default", StartedAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		Scenario:   "players=400 rate=0 lobby-share=0.25 lobby-size=2 leave-share=0 reconnect-share=0 connect-only=false preconnect=false",
		ElapsedSec: 6.5, MatchSize: 4, Players: 400, Connected: 400, Matched: 400, Matches: 100, Lobbies: 50,
		ThroughputPerSec: 400 / (4.6 * scale), Label: fmt.Sprintf("synthetic ×%g", scale), ServerVersion: "0123456789ab+dirty",
		Errors:     map[string]int{"reply queue.join: rate_limited": 2},
		Violations: map[string]int{},
		Settings: []setting{
			{Name: "html", Value: "report.html", From: "flag", Usage: "also write the report as a self-contained HTML page to this file"},
			{Name: "jwt-secret", Value: "(set, not shown)", From: "env", Usage: "HS256 secret"},
			{Name: "lobby-share", Value: "0.25", From: "flag", Usage: "share of players (0-1) who queue in lobbies of -lobby-size"},
			{Name: "players", Value: "400", From: "flag", Usage: "total simulated players"},
			{Name: "queue", Value: "default", From: "default", Usage: "queue to play in"},
		},
		Host: &hostInfo{Hostname: "bench-1", OS: "linux/amd64, Debian GNU/Linux 12 (bookworm), kernel 6.1.0", CPUModel: "AMD EPYC 7B13",
			CPUs: 2, GOMAXPROCS: 2, MemoryMiB: 24 * 1024, GoVersion: "go1.26.8", ServerLocal: true},
		Build: &buildInfo{WorkdirCommit: "0123456789abcdef0123456789abcdef01234567", WorkdirDirty: true},
		CPU:   &cpuReport{ServerSec: 0.9 * scale, ServerUsPerPlayer: 2250 * scale},
	}
	// Four passes: each one's players queued over the second before it.
	var connects, joins, ready []time.Duration
	for pass, at := range []float64{1.0, 2.2, 3.1, 4.6} {
		for i := range 100 {
			waited := (0.3 + 0.9*float64(i)/100) * scale
			at := at*scale + 0.002*float64(i)
			r.Timeline = append(r.Timeline, timelinePoint{AtSec: at, LatencyMs: math.Round(waited*1e6) / 1e3})
			ready = append(ready, time.Duration(waited*float64(time.Second)))
			connects = append(connects, time.Duration((20+float64((i*37+pass*11)%100))*scale*float64(time.Millisecond)))
			if i%8 != 0 { // lobby members send no queue.join
				joins = append(joins, time.Duration((5+float64((i*53+pass*7)%60))*scale*float64(time.Millisecond)))
			}
		}
	}
	r.Latency.Connect, r.Latency.JoinReply, r.Latency.JoinToReady = newPercentiles(connects), newPercentiles(joins), newPercentiles(ready)
	r.LatencyCDF.Connect, r.LatencyCDF.JoinReply, r.LatencyCDF.JoinToReady = newCDF(connects), newCDF(joins), newCDF(ready)

	r.Series = series{IntervalSec: 0.25, QueueDepthSource: depthFromLeader}
	f := func(v float64) *float64 { return &v }
	var matched int64
	formed, cpu, load, host := 0.0, 0.0, 0.0, 1000.0
	for i := 0; i <= 26; i++ {
		t := float64(i) * 0.25
		for _, p := range r.Timeline {
			if p.AtSec > t-0.25 && p.AtSec <= t {
				matched++
			}
		}
		if i%4 == 3 && formed < 100 {
			formed += 25
		}
		cpu += 0.25 * 0.8 * scale
		load += 0.25 * 0.3
		host += 0.25 * 1.9
		open := min(int64(i)*40, 400)
		if i == 26 {
			open = 0
		}
		r.Series.Samples = append(r.Series.Samples, sample{
			AtSec: t, Open: open, Searching: min(open, 400-matched), Matched: matched,
			LoadCPUSec: f(load), HostBusySec: f(host), ServerCPUSec: f(cpu), ServerRSS: f((20 + 15*float64(min(i, 10))) * (1 << 20) * scale),
			ServerConns: f(float64(min(int64(i)*40, 400))), MatchesFormed: f(formed), QueueDepth: f(float64(max(0, min(i*30, 300)-int(formed)*3))),
		})
	}
	return r
}

// pageHas, pageHasNot and pageMatches check the page without printing all of it.
func pageHas(t *testing.T, page, want string) {
	t.Helper()
	if !strings.Contains(page, want) {
		t.Errorf("the page has no %q", want)
	}
}

func pageHasNot(t *testing.T, page, unwanted string) {
	t.Helper()
	if strings.Contains(page, unwanted) {
		t.Errorf("the page has %q", unwanted)
	}
}

func pageMatches(t *testing.T, page, re string) {
	t.Helper()
	if !regexp.MustCompile(re).MatchString(page) {
		t.Errorf("nothing in the page matches %q", re)
	}
}

func renderSynthetic(t *testing.T) string {
	t.Helper()
	r := syntheticReport(1)
	r.compare(syntheticReport(1.25), "baseline.json")
	var buf bytes.Buffer
	require.NoError(t, r.writeHTML(&buf))
	return buf.String()
}

// The page of a fixed run, byte for byte. After a deliberate change to the
// page: go test ./cmd/lobbyload/ -run TestHTMLReportGolden -update, then
// look at testdata/report.golden.html in a browser.
func TestHTMLReportGolden(t *testing.T) {
	page := renderSynthetic(t)
	golden := filepath.Join("testdata", "report.golden.html")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, []byte(page), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run with -update to create it")
	if page != string(want) {
		got := filepath.Join(t.TempDir(), "report.html")
		os.WriteFile(got, []byte(page), 0o644)
		t.Fatalf("the page differs from %s (this run's page: %s); if the change is meant, run with -update", golden, got)
	}
}

// What the page is made of, whatever its exact bytes.
func TestHTMLReportStructure(t *testing.T) {
	page := renderSynthetic(t)

	pageHas(t, page, `<meta name="viewport" content="width=device-width, initial-scale=1">`)
	pageHasNot(t, page, "<script")
	pageHasNot(t, page, "src=")
	pageHasNot(t, page, "href=")

	var sections []string
	for _, m := range regexp.MustCompile(`<h2>([^<]*)</h2>`).FindAllStringSubmatch(page, -1) {
		sections = append(sections, m[1])
	}
	assert.Equal(t, []string{"Compared with the baseline", "Over time", "queue.join→match.ready over time",
		"Latency (ms)", "Errors", "Violations", "How it ran"}, sections)

	// Five series, the per-player scatter and three CDFs.
	assert.Equal(t, 9, strings.Count(page, "<svg "))
	for _, title := range []string{"Players matched per second", "Queue depth", "Open connections", "CPU", "lobbyd memory"} {
		pageHas(t, page, "<h3>"+title+"</h3>")
	}
	for _, line := range []string{"players who got match.ready (lobbyload)", "players put in matches by lobbyd (lobbyd_matches_formed_total × 4)",
		"baseline: players who got match.ready", "tickets in the queue (lobbyd; a lobby is one ticket)", "lobbyd_connections (lobbyd)",
		"every process of lobbyload&#39;s host", "lobbyd resident memory"} {
		pageHas(t, page, line)
	}
	assert.Equal(t, 400, strings.Count(page, "<circle"), "one dot per matched player")
	pageHas(t, page, "3 pauses between two consecutive <code>match.ready</code> were longer than 0.2 s, the longest 1.30 s (after 3.30 s)") // the scatter's pauses are named
	pageHas(t, page, ">2 CPUs</text>")

	// The CDFs call out their percentiles.
	for _, name := range []string{"queue.join→match.ready", "queue.join→reply", "connect"} {
		pageHas(t, page, "<h3>"+name+"</h3>")
	}
	p := syntheticReport(1).Latency.JoinToReady
	for _, tag := range []string{"p50 " + fmtMs(p.P50), "p90 " + fmtMs(p.P90), "p99 " + fmtMs(p.P99), "max " + fmtMs(p.Max)} {
		pageHas(t, page, ">"+tag+"</text>")
	}

	// The baseline, its differences and which way they go.
	pageHas(t, page, "<code>baseline.json</code> (synthetic ×1.25)")
	pageMatches(t, page, `throughput \(players/s\)</td><td>69\.6</td><td>87\.0</td><td class="better">&#43;17\.4 \(&#43;25\.0%\) better`)
	pageMatches(t, page, `lobbyd CPU per matched player \(µs\)</td><td>2812\.5</td><td>2250</td><td class="better">-562\.5 \(-20\.0%\) better`)

	// How it ran: the command, lobbyd's version, the host, every setting.
	pageHas(t, page, "lobbyload -html report.html -lobby-share 0.25 -players 400</code>")
	pageHas(t, page, "0123456789ab&#43;dirty")
	pageHas(t, page, "AMD EPYC 7B13")
	pageHas(t, page, `<td class="text"><code>-queue</code><br><small>queue to play in</small></td><td class="val">default</td><td>default</td>`)
	assert.Equal(t, strings.Count(page, "<table"), strings.Count(page, `<div class="scroll"><table`), "every table scrolls on a narrow screen")
}

func TestNiceScale(t *testing.T) {
	for _, tc := range []struct{ v, end, step float64 }{
		{7.1, 8, 2}, {8.67, 10, 2}, {4.1, 5, 1}, {2444, 2500, 500}, {0.3, 0.3, 0.1}, {1, 1, 0.2}, {0, 1, 0.2}, {12000, 12500, 2500},
	} {
		end, step := niceScale(tc.v)
		assert.InDelta(t, tc.end, end, 1e-9, "%v", tc.v)
		assert.InDelta(t, tc.step, step, 1e-9, "%v", tc.v)
		if tc.v > 0 {
			assert.Less(t, end-tc.v, step, "the axis ends less than a step past the data")
		}
	}
}
