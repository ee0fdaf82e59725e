package main

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"sort"
	"strings"
)

// writeHTMLFile writes the report as one self-contained page: no scripts,
// fonts or stylesheets from elsewhere, the chart is inline SVG.
func (r *report) writeHTMLFile(path string) error {
	var buf bytes.Buffer
	if err := r.writeHTML(&buf); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func (r *report) writeHTML(w io.Writer) error {
	verdict := "OK"
	if err := r.verdict(); err != nil {
		verdict = "FAILED: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return htmlPage.Execute(w, map[string]any{
		"R": r, "Verdict": verdict, "OK": verdict == "OK",
		"Chart":      latencyChart(r.Timeline, r.timelineOrigin()),
		"Errors":     sortedCounts(r.Errors),
		"Violations": sortedCounts(r.Violations),
	})
}

type count struct {
	Kind string
	N    int
}

func sortedCounts(m map[string]int) []count {
	out := make([]count, 0, len(m))
	for k, v := range m {
		out = append(out, count{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

// timelineOrigin names the moment the timeline's seconds count from.
func (r *report) timelineOrigin() string {
	if r.Preconnect {
		return "the barrier"
	}
	return "start"
}

// latencyChart draws queue.join→match.ready latency (y) against the time
// match.ready arrived (x, seconds since origin) as an SVG scatter plot.
func latencyChart(points []timelinePoint, origin string) template.HTML {
	const (
		width, height          = 900, 360
		left, right, top, bott = 70, 20, 20, 45
		plotW, plotH           = width - left - right, height - top - bott
	)
	maxX, maxY := 1.0, 1.0
	for _, p := range points {
		maxX, maxY = math.Max(maxX, p.AtSec), math.Max(maxY, p.LatencyMs)
	}
	maxX, maxY = niceCeil(maxX), niceCeil(maxY)
	x := func(v float64) float64 { return left + v/maxX*plotW }
	y := func(v float64) float64 { return top + plotH - v/maxY*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="queue.join to match.ready latency over time">`, width, height, width, height)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#fff" stroke="#999"/>`, left, top, plotW, plotH)
	for i := 0; i <= 5; i++ {
		vx, vy := maxX*float64(i)/5, maxY*float64(i)/5
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`, x(vx), top, x(vx), top+plotH)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`, left, y(vy), left+plotW, y(vy))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s</text>`, x(vx), top+plotH+16, trimFloat(vx))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`, left-6, y(vy)+4, trimFloat(vy))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="middle">seconds since %s (match.ready received)</text>`, left+plotW/2, height-6, template.HTMLEscapeString(origin))
	fmt.Fprintf(&b, `<text x="14" y="%d" font-size="12" text-anchor="middle" transform="rotate(-90 14 %d)">queue.join→match.ready (ms)</text>`, top+plotH/2, top+plotH/2)
	for _, p := range points {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2" fill="#2a6fdb" fill-opacity="0.6"/>`, x(p.AtSec), y(p.LatencyMs))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built here from numbers only
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

var htmlPage = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lobbyload report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th:first-child,td:first-child{text-align:left}.ok{color:#186a1e}.bad{color:#b00020}
</style></head><body>
<h1>lobbyload report</h1>
<p>{{.R.URL}}, queue <code>{{.R.Queue}}</code>, started {{.R.StartedAt.Format "2006-01-02 15:04:05 UTC"}}, {{printf "%.2f" .R.ElapsedSec}} s<br><code>{{.R.Scenario}}</code></p>
<p class="{{if .OK}}ok{{else}}bad{{end}}"><strong>{{.Verdict}}</strong></p>
{{if .R.Preconnect}}<p>Preconnected: every player connected before anyone queued. Throughput, <code>queue.join</code> latencies and the chart cover the queueing phase only, from the barrier.</p>{{end}}
<table>
<tr><th>players</th><td>{{.R.Players}}</td></tr>
<tr><th>connected</th><td>{{.R.Connected}}</td></tr>
<tr><th>matched</th><td>{{.R.Matched}} ({{.R.Matches}} matches)</td></tr>
<tr><th>failed</th><td>{{.R.Failed}}</td></tr>
<tr><th>lost</th><td>{{.R.Lost}}</td></tr>
<tr><th>lobbies / leaves / reconnects</th><td>{{.R.Lobbies}} / {{.R.Leaves}} / {{.R.Reconnects}}</td></tr>
{{if .R.Preconnect}}<tr><th>connect phase</th><td>{{printf "%.2f" .R.ConnectPhaseSec}} s</td></tr>
<tr><th>queueing phase (barrier to last match.ready)</th><td>{{printf "%.2f" .R.QueueingPhaseSec}} s</td></tr>{{end}}
<tr><th>throughput</th><td>{{printf "%.1f" .R.ThroughputPerSec}} players/s</td></tr>
</table>
<h2>Latency (ms)</h2>
<table><tr><th></th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>
{{with .R.Latency.Connect}}<tr><td>connect</td><td>{{.Count}}</td><td>{{.P50}}</td><td>{{.P90}}</td><td>{{.P99}}</td><td>{{.Max}}</td></tr>{{end}}
{{with .R.Latency.JoinReply}}<tr><td>queue.join→reply</td><td>{{.Count}}</td><td>{{.P50}}</td><td>{{.P90}}</td><td>{{.P99}}</td><td>{{.Max}}</td></tr>{{end}}
{{with .R.Latency.JoinToReady}}<tr><td>queue.join→match.ready</td><td>{{.Count}}</td><td>{{.P50}}</td><td>{{.P90}}</td><td>{{.P99}}</td><td>{{.Max}}</td></tr>{{end}}
</table>
<h2>queue.join→match.ready over time{{if .R.Preconnect}} (queueing phase){{end}}</h2>
{{.Chart}}
<h2>Errors</h2>
{{if .Errors}}<table>{{range .Errors}}<tr><td>{{.Kind}}</td><td>{{.N}}</td></tr>{{end}}</table>{{else}}<p>none</p>{{end}}
<h2>Violations</h2>
{{if .Violations}}<table>{{range .Violations}}<tr><td>{{.Kind}}</td><td>{{.N}}</td></tr>{{end}}</table>
<ul>{{range .R.ViolationDetails}}<li>{{.}}</li>{{end}}</ul>{{else}}<p>none</p>{{end}}
</body></html>
`))
