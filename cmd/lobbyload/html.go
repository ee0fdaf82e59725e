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
// fonts or stylesheets from elsewhere, the charts are inline SVG.
func (r *report) writeHTMLFile(path string) error {
	var buf bytes.Buffer
	if err := r.writeHTML(&buf); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// Colours of the charts' lines.
const (
	colBlue   = "#2a6fdb"
	colOrange = "#e07b00"
	colGreen  = "#2e9d45"
	colPurple = "#8e44ad"
	colGrey   = "#8a8a8a"
)

// figure is one chart of the page with its legend and its explanation.
type figure struct {
	Title   string
	SVG     template.HTML
	Legend  []legendItem
	Caption template.HTML
}

type legendItem struct {
	Name  string
	Color string
	Dash  bool
}

func legendOf(lines []plotLine) []legendItem {
	var out []legendItem
	for _, l := range lines {
		out = append(out, legendItem{l.Name, l.Color, l.Dash})
	}
	return out
}

// row is one line of a two-column table.
type row struct{ Name, Value string }

func (r *report) writeHTML(w io.Writer) error {
	verdict := "OK"
	if err := r.verdict(); err != nil {
		verdict = "FAILED: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	series, haveServer := r.seriesFigures()
	return htmlPage.Execute(w, map[string]any{
		"R": r, "Verdict": verdict, "OK": verdict == "OK",
		"Command":    r.command(),
		"Summary":    r.summaryRows(),
		"Series":     series,
		"HaveServer": haveServer,
		"Scatter":    r.scatterFigure(),
		"CDFs":       r.cdfFigures(),
		"Errors":     sortedCounts(r.Errors),
		"Violations": sortedCounts(r.Violations),
		"Host":       r.hostRows(),
		"Code":       r.codeRows(),
		"PerURL":     len(r.URLs) > 1,
		"BackFigure": r.backFigure(),
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

// backFigure is the chart of the reconnections per second by URL; nil
// when no socket was lost.
func (r *report) backFigure() *figure {
	if r.Back == nil {
		return nil
	}
	return r.Back.figure()
}

// timelineOrigin names the moment the timeline's seconds count from.
func (r *report) timelineOrigin() string {
	if r.Preconnect {
		return "the barrier"
	}
	return "start"
}

// command is the lobbyload command line of the run: every setting not
// left at its default (from flags or the environment), secrets left out.
func (r *report) command() string {
	parts := []string{"lobbyload"}
	for _, s := range r.Settings {
		if s.From == "default" || s.Name == "jwt-secret" {
			continue
		}
		v := s.Value
		if v == "" || strings.ContainsAny(v, " \t'\"$`\\") {
			v = "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
		}
		parts = append(parts, "-"+s.Name, v)
	}
	return strings.Join(parts, " ")
}

func (r *report) summaryRows() []row {
	rows := []row{
		{"players", fmtInt(r.Players)},
		{"connected", fmtInt(r.Connected)},
	}
	if !r.ConnectOnly {
		rows = append(rows, row{"matched", fmt.Sprintf("%s (%s matches of up to %d)", fmtInt(r.Matched), fmtInt(r.Matches), r.MatchSize)})
	}
	rows = append(rows, row{"failed", fmtInt(r.Failed)})
	if !r.ConnectOnly {
		lost := fmtInt(r.Lost)
		if r.LateLeaves > 0 {
			lost += fmt.Sprintf(" (not judged: %d leave(s) after match.found were followed by a new queue.join)", r.LateLeaves)
		}
		rows = append(rows, row{"lost", lost},
			row{"lobbies / leaves / reconnects", fmt.Sprintf("%s / %s / %s", fmtInt(r.Lobbies), fmtInt(r.Leaves), fmtInt(r.Reconnects))})
	}
	if r.TicketsLost > 0 {
		rows = append(rows, row{"tickets lost by the server", fmtInt(r.TicketsLost) + " (queue.state cancelled, reason lost: Redis lost them after the queue.join reply; queued again)"})
	}
	if r.LostSockets > 0 {
		rows = append(rows, row{"sockets lost", fmtInt(r.LostSockets) + fmt.Sprintf(" (closed by the server or broken; each player reconnected to another URL (-reconnect-to); %s welcome(s) gave a ticket, lobby or match back; %s ticket(s) and %s lobby place(s) missing)", fmtInt(r.Resumed), fmtInt(r.DroppedTickets), fmtInt(r.DroppedLobbyPlaces))})
	}
	if r.Back != nil {
		rows = append(rows, r.Back.summaryRows()...)
	}
	if r.Redelivered > 0 {
		rows = append(rows, row{"match.ready again", fmtInt(r.Redelivered) + " (the player's match once more on a later socket, in welcome: allowed, not a duplicate)"})
	}
	if r.Procs > 1 {
		rows = append(rows, row{"lobbyload processes", fmt.Sprintf("%d workers (-procs), merged into this report", r.Procs)})
	}
	if r.Preconnect {
		rows = append(rows, row{"connect phase", fmt.Sprintf("%.2f s", r.ConnectPhaseSec)},
			row{"queueing phase (barrier to last match.ready)", fmt.Sprintf("%.2f s", r.QueueingPhaseSec)})
	}
	if !r.ConnectOnly {
		span := "first queue.join to last match.ready"
		if r.Preconnect {
			span = "barrier to last match.ready"
		}
		rows = append(rows, row{"throughput", fmt.Sprintf("%.1f players/s (match.ready, %s)", r.ThroughputPerSec, span)})
		if first, ok := r.firstReady(); ok {
			rows = append(rows, row{"first match.ready", fmt.Sprintf("%.2f s after %s", first, r.timelineOrigin())})
		}
	}
	if c := r.CPU; c != nil {
		rows = append(rows, row{"lobbyd CPU per matched player", fmt.Sprintf("%.0f µs (%.2f s while the players queued)", c.ServerUsPerPlayer, c.ServerSec)})
		if c.RedisSec != nil {
			rows = append(rows, row{"Redis CPU per matched player", fmt.Sprintf("%.0f µs (%.2f s)", *c.RedisUsPerPlayer, *c.RedisSec)})
		}
	}
	if peak, ok := r.peakRSS(); ok {
		rows = append(rows, row{"lobbyd peak memory (RSS)", fmt.Sprintf("%.1f MiB", peak/(1<<20))})
	}
	return rows
}

// firstReady is when the first match.ready arrived, in timeline seconds.
func (r *report) firstReady() (float64, bool) {
	if len(r.Timeline) == 0 {
		return 0, false
	}
	first := r.Timeline[0].AtSec
	for _, p := range r.Timeline {
		first = math.Min(first, p.AtSec)
	}
	return first, true
}

// maxChartSamples bounds the samples a line is drawn through; longer
// series are thinned evenly (rates are then over the longer spans).
const maxChartSamples = 600

// chartSamples is the series, thinned to at most maxChartSamples.
func chartSamples(ss []sample) []sample {
	if len(ss) <= maxChartSamples {
		return ss
	}
	stride := (len(ss) + maxChartSamples - 1) / maxChartSamples
	var out []sample
	for i := 0; i < len(ss); i += stride {
		out = append(out, ss[i])
	}
	if out[len(out)-1].AtSec != ss[len(ss)-1].AtSec {
		out = append(out, ss[len(ss)-1])
	}
	return out
}

// rateLine is the per-second rate of a counter between samples, as steps
// over each interval, times scale; NaN where a reading is missing or the
// counter went back (a restart).
func rateLine(ss []sample, get func(sample) (float64, bool), scale float64) []pt {
	var out []pt
	for i := 1; i < len(ss); i++ {
		a, okA := get(ss[i-1])
		b, okB := get(ss[i])
		dt := ss[i].AtSec - ss[i-1].AtSec
		if !okA || !okB || dt <= 0 || b < a {
			out = append(out, pt{ss[i].AtSec, math.NaN()})
			continue
		}
		v := (b - a) / dt * scale
		out = append(out, pt{ss[i-1].AtSec, v}, pt{ss[i].AtSec, v})
	}
	return out
}

// gaugeLine is a gauge's value at each sample, times scale.
func gaugeLine(ss []sample, get func(sample) (float64, bool), scale float64) []pt {
	var out []pt
	for _, s := range ss {
		v, ok := get(s)
		if !ok {
			v = math.NaN()
		}
		out = append(out, pt{s.AtSec, v * scale})
	}
	return out
}

// has reports whether any point of a line is a number.
func has(pts []pt) bool {
	for _, p := range pts {
		if !math.IsNaN(p.Y) {
			return true
		}
	}
	return false
}

func opt(p *float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p, true
}

// seriesFigures are the charts over time, and whether lobbyd's /metrics
// were read at all.
func (r *report) seriesFigures() ([]figure, bool) {
	ss := chartSamples(r.Series.Samples)
	if len(ss) < 2 {
		return nil, false
	}
	interval := fmt.Sprintf("%g ms", math.Round(r.Series.IntervalSec*1000))
	xLabel := "seconds since start"
	var guides []guide
	if r.Preconnect {
		guides = append(guides, guide{Vertical: true, At: r.ConnectPhaseSec, Tag: "barrier"})
	}
	var figs []figure
	haveServer := false

	if !r.ConnectOnly {
		lines := []plotLine{{Name: "players who got match.ready (lobbyload)", Color: colBlue,
			Pts: rateLine(ss, func(s sample) (float64, bool) { return float64(s.Matched), true }, 1)}}
		formed := rateLine(ss, func(s sample) (float64, bool) { return opt(s.MatchesFormed) }, float64(max(r.MatchSize, 1)))
		if has(formed) {
			haveServer = true
			lines = append(lines, plotLine{Name: fmt.Sprintf("players put in matches by lobbyd (lobbyd_matches_formed_total × %d)", r.MatchSize), Color: colOrange, Pts: formed})
		}
		if b := r.baseline; b != nil && len(b.Series.Samples) > 1 {
			lines = append(lines, plotLine{Name: "baseline: players who got match.ready", Color: colGrey, Dash: true,
				Pts: rateLine(chartSamples(b.Series.Samples), func(s sample) (float64, bool) { return float64(s.Matched), true }, 1)})
		}
		figs = append(figs, figure{
			Title:  "Players matched per second",
			SVG:    chart{Label: "players matched per second over time", XLabel: xLabel, YLabel: "players/s", Lines: lines, Guides: guides}.svg(),
			Legend: legendOf(lines),
			Caption: template.HTML(fmt.Sprintf(`Players who received <code>match.ready</code> in each sampling interval (%s), per second: the run's throughput over time (over the whole run: %.1f players/s). `+
				`The orange line, from lobbyd's <code>/metrics</code>, counts the players of the matches lobbyd formed: it comes in steps, one per formation pass, `+
				`and the blue line follows once those matches have their party and their <code>match.ready</code> is delivered.`, interval, r.ThroughputPerSec)),
		})
	}

	depth := gaugeLine(ss, func(s sample) (float64, bool) { return opt(s.QueueDepth) }, 1)
	if !r.ConnectOnly {
		lines := []plotLine{{Name: "players searching (lobbyload: queued, no match.ready yet)", Color: colBlue,
			Pts: gaugeLine(ss, func(s sample) (float64, bool) { return float64(s.Searching), true }, 1)}}
		if has(depth) {
			lines = append(lines, plotLine{Name: "tickets in the queue (lobbyd; a lobby is one ticket)", Color: colOrange, Pts: depth})
		}
		source := "lobbyd's queue depth could not be read."
		if r.Series.QueueDepthSource != "" {
			source = "lobbyd's queue depth is from " + template.HTMLEscapeString(r.Series.QueueDepthSource) + "."
		}
		figs = append(figs, figure{
			Title:  "Queue depth",
			SVG:    chart{Label: "queue depth over time", XLabel: xLabel, YLabel: "players / tickets", Lines: lines, Guides: guides}.svg(),
			Legend: legendOf(lines),
			Caption: template.HTML(`How many are waiting for a match: the players lobbyload has queued and not yet seen matched, and the tickets lobbyd holds in the queue, which drop at each formation pass. ` +
				source + ` The two differ: a lobby's players are one ticket, and a ticket leaves the queue when its match is formed while its players wait on until their <code>match.ready</code>, after the party is allocated.`),
		})
	}

	connsCaption := `Player WebSockets open: as lobbyload counts them, and as lobbyd does (<code>lobbyd_connections</code> in its <code>/metrics</code>; with several nodes, only the node that answered). Matched players hold their socket until every player is done, then say goodbye: the drop at the end.`
	if len(r.URLs) > 1 {
		connsCaption = `Player WebSockets open: as lobbyload counts them, and as lobbyd does (<code>lobbyd_connections</code> in the <code>/metrics</code> of every node of <code>-url</code>, summed over those that answered). Matched players hold their socket until every player is done, then say goodbye: the drop at the end.`
	}
	conns := []plotLine{{Name: "sockets open (lobbyload)", Color: colBlue,
		Pts: gaugeLine(ss, func(s sample) (float64, bool) { return float64(s.Open), true }, 1)}}
	if server := gaugeLine(ss, func(s sample) (float64, bool) { return opt(s.ServerConns) }, 1); has(server) {
		haveServer = true
		conns = append(conns, plotLine{Name: "lobbyd_connections (lobbyd)", Color: colOrange, Pts: server})
	}
	figs = append(figs, figure{
		Title:   "Open connections",
		SVG:     chart{Label: "open connections over time", XLabel: xLabel, YLabel: "connections", Lines: conns, Guides: guides}.svg(),
		Legend:  legendOf(conns),
		Caption: template.HTML(connsCaption),
	})

	var cpu []plotLine
	cores := func(get func(sample) (float64, bool)) []pt { return rateLine(ss, get, 1) }
	if server := cores(func(s sample) (float64, bool) { return opt(s.ServerCPUSec) }); has(server) {
		haveServer = true
		cpu = append(cpu, plotLine{Name: "lobbyd", Color: colBlue, Pts: server})
	}
	if redis := cores(func(s sample) (float64, bool) { return opt(s.RedisCPUSec) }); has(redis) {
		cpu = append(cpu, plotLine{Name: "Redis (-redis-url)", Color: colPurple, Pts: redis})
	}
	if gen := cores(func(s sample) (float64, bool) { return opt(s.LoadCPUSec) }); has(gen) {
		cpu = append(cpu, plotLine{Name: "lobbyload", Color: colGreen, Pts: gen})
	}
	var cpuGuides []guide
	if host := cores(func(s sample) (float64, bool) { return opt(s.HostBusySec) }); has(host) {
		cpu = append(cpu, plotLine{Name: "every process of lobbyload's host", Color: colGrey, Dash: true, Pts: host})
		if r.Host != nil {
			cpuGuides = append(cpuGuides, guide{At: float64(r.Host.CPUs), Tag: fmt.Sprintf("%d CPUs", r.Host.CPUs)})
		}
	}
	if len(cpu) > 0 {
		perPlayer := ""
		if r.CPU != nil {
			perPlayer = fmt.Sprintf(" While the players queued lobbyd used %.2f CPU seconds, %.0f µs per matched player.", r.CPU.ServerSec, r.CPU.ServerUsPerPlayer)
		}
		figs = append(figs, figure{
			Title:  "CPU",
			SVG:    chart{Label: "CPU use over time", XLabel: xLabel, YLabel: "cores busy", Lines: cpu, Guides: append(cpuGuides, guides...)}.svg(),
			Legend: legendOf(cpu),
			Caption: template.HTML(`CPU used in each sampling interval, in cores (1 = one core busy all the time): lobbyd's from <code>process_cpu_seconds_total</code> in its <code>/metrics</code>; ` +
				`with lobbyd's embedded Redis (its default, used by <code>make loadtest</code>) Redis runs inside lobbyd and is counted there. ` +
				`The dashed line is the whole machine lobbyload runs on (Linux <code>/proc/stat</code>): when lobbyd runs there too and the line reaches the CPUs line, the machine is saturated and the generator, lobbyd and Redis slow each other down.` +
				perPlayer),
		})
	}

	if rss := gaugeLine(ss, func(s sample) (float64, bool) { return opt(s.ServerRSS) }, 1.0/(1<<20)); has(rss) {
		haveServer = true
		lines := []plotLine{{Name: "lobbyd resident memory", Color: colBlue, Pts: rss}}
		if b := r.baseline; b != nil {
			if base := gaugeLine(chartSamples(b.Series.Samples), func(s sample) (float64, bool) { return opt(s.ServerRSS) }, 1.0/(1<<20)); has(base) {
				lines = append(lines, plotLine{Name: "baseline: lobbyd resident memory", Color: colGrey, Dash: true, Pts: base})
			}
		}
		peak, _ := r.peakRSS()
		figs = append(figs, figure{
			Title:   "lobbyd memory",
			SVG:     chart{Label: "lobbyd memory over time", XLabel: xLabel, YLabel: "MiB", Lines: lines, Guides: guides}.svg(),
			Legend:  legendOf(lines),
			Caption: template.HTML(fmt.Sprintf(`lobbyd's resident memory (<code>process_resident_memory_bytes</code>), peak %.1f MiB. Go returns freed memory to the system slowly: it stays up after the players leave.`, peak/(1<<20))),
		})
	}
	return figs, haveServer
}

// pause is the longest time between two consecutive match.ready.
type pause struct {
	Sec, AfterSec float64
	// Count is the pauses longer than pauseFloor.
	Count int
}

const pauseFloor = 0.2 // seconds

func (r *report) pauses() pause {
	ts := make([]float64, len(r.Timeline))
	for i, p := range r.Timeline {
		ts[i] = p.AtSec
	}
	sort.Float64s(ts)
	var p pause
	for i := 1; i < len(ts); i++ {
		gap := ts[i] - ts[i-1]
		if gap > pauseFloor {
			p.Count++
		}
		if gap > p.Sec {
			p.Sec, p.AfterSec = gap, ts[i-1]
		}
	}
	return p
}

// scatterFigure draws queue.join→match.ready latency (y) against the time
// match.ready arrived (x, seconds since the origin), one dot per player.
func (r *report) scatterFigure() *figure {
	if r.ConnectOnly {
		return nil
	}
	dots := make([]pt, len(r.Timeline))
	for i, p := range r.Timeline {
		dots[i] = pt{p.AtSec, p.LatencyMs}
	}
	origin := r.timelineOrigin()
	c := chart{Label: "queue.join to match.ready latency over time", XLabel: "seconds since " + origin + " (match.ready received)",
		YLabel: "queue.join→match.ready (ms)", Dots: dots, DotColor: colBlue}
	var why strings.Builder
	fmt.Fprintf(&why, `Each dot is one player: when its <code>match.ready</code> arrived (across) and how long after its <code>queue.join</code> (up; a lobby's members count from the owner's <code>queue.join</code>). `)
	if first, ok := r.firstReady(); ok {
		fmt.Fprintf(&why, `Nothing comes before %.2f s: the players were connecting, queueing and waiting for the first matches. `, first)
	}
	why.WriteString(`Dots in vertical bands with empty space between them are how lobbyd works, not a gap in the measurement: ` +
		`the queue's leader forms matches in passes, each taking every ticket that arrived since the previous pass, grouping them and committing the matches to Redis; ` +
		`the parties of those matches are then allocated and their <code>match.ready</code> reach the players together. ` +
		`A band is one pass (the steps of the orange line in "Players matched per second"), its height how long its players waited for it, and the space before the next band how long the next pass took: ` +
		`longer the more tickets a pass takes and the less CPU it gets (see the CPU chart; with lobbyd, Redis and lobbyload on one saturated 2-CPU machine, passes of a 4,000-player burst took 0.3–0.7 s). `)
	if p := r.pauses(); p.Count > 0 {
		fmt.Fprintf(&why, `In this run %d pauses between two consecutive <code>match.ready</code> were longer than %.1f s, the longest %.2f s (after %.2f s).`, p.Count, pauseFloor, p.Sec, p.AfterSec)
	} else if len(r.Timeline) > 1 {
		fmt.Fprintf(&why, `In this run no pause between two consecutive <code>match.ready</code> was longer than %.1f s.`, pauseFloor)
	}
	title := "queue.join→match.ready over time"
	if r.Preconnect {
		title += " (queueing phase)"
	}
	return &figure{Title: title, SVG: c.svg(), Caption: template.HTML(why.String())}
}

// cdfFigures draw each latency's distribution, with the baseline's when
// there is one.
func (r *report) cdfFigures() []figure {
	var out []figure
	add := func(name, what string, cdf []cdfPoint, p percentiles, base []cdfPoint) {
		if len(cdf) == 0 {
			return
		}
		lines := []plotLine{{Name: "this run", Color: colBlue, Pts: cdfLine(cdf)}}
		if len(base) > 0 {
			lines = append(lines, plotLine{Name: "baseline", Color: colGrey, Dash: true, Pts: cdfLine(base)})
		}
		c := chart{Label: name + " latency distribution", XLabel: name + " (ms)", YLabel: "share at or below", Lines: lines, YPercent: true,
			Marks: []mark{
				{p.P50, 0.50, "p50 " + fmtMs(p.P50)},
				{p.P90, 0.90, "p90 " + fmtMs(p.P90)},
				{p.P99, 0.99, "p99 " + fmtMs(p.P99)},
			},
			Guides: []guide{{Vertical: true, At: p.Max, Tag: "max " + fmtMs(p.Max)}},
		}
		out = append(out, figure{
			Title:  name,
			SVG:    c.svg(),
			Legend: legendOf(lines),
			Caption: template.HTML(fmt.Sprintf(`The share of %s (of %s) that took at most the time across: p50 %s ms, p90 %s ms, p99 %s ms, max %s ms.`,
				what, fmtInt(p.Count), fmtMs(p.P50), fmtMs(p.P90), fmtMs(p.P99), fmtMs(p.Max))),
		})
	}
	var base *report
	if r.baseline != nil {
		base = r.baseline
	} else {
		base = &report{}
	}
	add("queue.join→match.ready", "matched players", r.LatencyCDF.JoinToReady, r.Latency.JoinToReady, base.LatencyCDF.JoinToReady)
	add("queue.join→reply", "queue.join requests", r.LatencyCDF.JoinReply, r.Latency.JoinReply, base.LatencyCDF.JoinReply)
	add("connect", "connections (token, dial, welcome)", r.LatencyCDF.Connect, r.Latency.Connect, base.LatencyCDF.Connect)
	return out
}

// cdfLine draws a CDF as steps: at each quantile's latency the share rises.
func cdfLine(cdf []cdfPoint) []pt {
	out := []pt{{0, 0}}
	for _, c := range cdf {
		out = append(out, pt{c.Ms, out[len(out)-1].Y}, pt{c.Ms, c.Q})
	}
	return out
}

func (r *report) hostRows() []row {
	h := r.Host
	if h == nil {
		return nil
	}
	rows := []row{{"hostname", h.Hostname}, {"OS", h.OS}}
	if h.CPUModel != "" {
		rows = append(rows, row{"CPU", h.CPUModel})
	}
	rows = append(rows, row{"CPUs", fmt.Sprintf("%d (GOMAXPROCS %d)", h.CPUs, h.GOMAXPROCS)})
	if h.MemoryMiB > 0 {
		rows = append(rows, row{"memory", fmt.Sprintf("%.1f GiB", float64(h.MemoryMiB)/1024)})
	}
	rows = append(rows, row{"Go", h.GoVersion})
	where := "elsewhere, or unknown (not a loopback URL)"
	if h.ServerLocal {
		where = "this host (a loopback URL): lobbyd, Redis and the generator shared its CPUs"
	}
	return append(rows, row{"lobbyd ran on", where})
}

func (r *report) codeRows() []row {
	v := r.ServerVersion
	if v == "" {
		v = "not given (-server-version)"
	}
	rows := []row{{"lobbyd", v}}
	if b := r.Build; b != nil {
		rev := "not stamped (go run, or built with -buildvcs=false)"
		if b.Revision != "" {
			rev = b.Revision
			if b.Modified {
				rev += " (with uncommitted changes)"
			}
		}
		rows = append(rows, row{"lobbyload", rev})
		if b.WorkdirCommit != "" {
			wd := b.WorkdirCommit
			if b.WorkdirDirty {
				wd += " (with uncommitted changes)"
			}
			rows = append(rows, row{"working directory's git commit", wd})
		}
	}
	return rows
}

// fmtInt writes n with thousands separators.
func fmtInt(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// fmtMs writes a latency in ms: one decimal below 100, none above.
func fmtMs(v float64) string {
	if v >= 100 {
		return fmtInt(int(math.Round(v)))
	}
	return fmt.Sprintf("%.1f", v)
}

var htmlPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms": fmtMs, "num": fmtInt, "pct": func(p *float64) string {
		if p == nil {
			return ""
		}
		return fmt.Sprintf("%+.1f%%", *p)
	},
	"fnum": fmtNum,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lobbyload report{{with .R.Label}}: {{.}}{{end}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:0 auto;padding:1em;max-width:76em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.3em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd}h3{font-size:1.05em;margin:.2em 0}
code{font-size:.92em;background:#f3f3f3;padding:0 .2em;border-radius:3px;overflow-wrap:anywhere}
.cmd{display:block;padding:.4em .6em;white-space:pre-wrap}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.8em 0}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right;white-space:nowrap;vertical-align:top}
th:first-child,td:first-child{text-align:left}th{white-space:normal}td.text{text-align:left;white-space:normal;overflow-wrap:anywhere;min-width:10em}td.wrap{white-space:normal;min-width:9em;text-align:left}td.val{text-align:left;white-space:normal;overflow-wrap:anywhere;max-width:16em}small{color:#555}
@media (max-width:40em){body{padding:.6em}td,th{padding:.25em .35em}table{font-size:.92em}}
.ok{color:#186a1e}.bad{color:#b00020}.better{color:#186a1e}.worse{color:#b00020}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,30em),1fr));gap:1.2em 2em}
figure{margin:0}svg{display:block;width:100%;height:auto;max-width:32em}
figcaption{font-size:.9em;color:#444}
.legend{list-style:none;padding:0;margin:.3em 0;font-size:.9em}.legend li{display:inline-block;margin-right:1.2em}
.sw{display:inline-block;width:1.6em;height:0;border-top:3px solid;vertical-align:middle;margin-right:.4em}.sw.dash{border-top-style:dashed}
.note{background:#fff8e1;padding:.5em .8em;border-left:4px solid #e0a800}
</style></head><body>
<h1>lobbyload report{{with .R.Label}}: {{.}}{{end}}</h1>
<p>{{.R.URL}}, queue <code>{{.R.Queue}}</code>, started {{.R.StartedAt.Format "2006-01-02 15:04:05 UTC"}}, {{printf "%.2f" .R.ElapsedSec}} s{{with .R.ServerVersion}}; lobbyd {{.}}{{end}}<br><code>{{.R.Scenario}}</code></p>
<p class="{{if .OK}}ok{{else}}bad{{end}}"><strong>{{.Verdict}}</strong></p>
{{if .R.Preconnect}}<p>Preconnected: every player connected before anyone queued. Throughput, <code>queue.join</code> latencies and the per-player chart cover the queueing phase only, from the barrier.</p>{{end}}
<div class="scroll"><table>
{{range .Summary}}<tr><th>{{.Name}}</th><td class="text">{{.Value}}</td></tr>
{{end}}</table></div>
{{if .PerURL}}<h2>Per URL</h2>
<p>Player <i>i</i> connects to URL <i>i</i> mod {{len .R.URLs}} first; a player whose socket is lost (closed by the server, 1001 from a drain or a shutdown, or broken) reconnects to the next URL (with <code>-reconnect-to random</code>, to another one at random) after a backoff, and gets its ticket, lobby and match back in <code>welcome</code>.</p>
<div class="scroll"><table><tr><th>URL</th><th>players</th><th>connected</th><th>reconnects to it</th><th>sockets lost</th><th>failed connects</th><th>matched on it</th></tr>
{{range .R.URLs}}<tr><td>{{.URL}}</td><td>{{num .Players}}</td><td>{{num .Connected}}</td><td>{{num .Reconnects}}</td><td>{{num .SocketsLost}}</td><td>{{num .ConnectFailures}}</td><td>{{num .Matched}}</td></tr>
{{end}}</table></div>
{{end}}{{with .R.Back}}<h2>Back after a lost socket</h2>
<p>For each socket lost (closed by the server or broken), the time from its loss, as the player saw it, to the player's next <code>welcome</code>, by the URL that gave it, however many attempts it took (each after a backoff with full jitter). The last of the {{num .Reconnections}} came back {{printf "%.2f" .AllBackSec}} s after the first loss; {{num .NeverBack}} player(s) never got <code>welcome</code> again.</p>
<div class="scroll"><table><tr><th>URL</th><th>reconnections</th><th>p50 (ms)</th><th>p90 (ms)</th><th>p99 (ms)</th><th>max (ms)</th><th>last back (ms)</th><th>peak per second</th><th>mean per second</th></tr>
<tr><td>all</td><td>{{num .Reconnections}}</td><td>{{ms .LossToWelcome.P50}}</td><td>{{ms .LossToWelcome.P90}}</td><td>{{ms .LossToWelcome.P99}}</td><td>{{ms .LossToWelcome.Max}}</td><td>{{with .Last}}{{ms .Ms}}{{end}}</td><td></td><td></td></tr>
{{range .URLs}}<tr><td>{{.URL}}</td><td>{{num .Reconnections}}</td><td>{{ms .LossToWelcome.P50}}</td><td>{{ms .LossToWelcome.P90}}</td><td>{{ms .LossToWelcome.P99}}</td><td>{{ms .LossToWelcome.Max}}</td><td>{{with .Last}}{{ms .Ms}}{{end}}</td><td>{{num .PeakPerSec}}</td><td>{{fnum .MeanPerSec}}</td></tr>
{{end}}</table></div>
{{with $.BackFigure}}<div class="charts"><figure><h3>{{.Title}}</h3>{{.SVG}}<ul class="legend">{{range .Legend}}<li><span class="sw{{if .Dash}} dash{{end}}" style="border-color:{{.Color}}"></span>{{.Name}}</li>{{end}}</ul><figcaption>{{.Caption}}</figcaption></figure></div>{{end}}
{{end}}{{with .R.Workers}}<h2>Worker processes</h2>
<p>The players were played by {{len .}} processes of lobbyload (<code>-procs</code>), each a share of them; the report merges theirs (latency percentiles from every sample).</p>
<div class="scroll"><table><tr><th>worker</th><th>players</th><th>connected</th><th>matched</th><th>failed</th><th>lost</th><th>CPU (s)</th></tr>
{{range .}}<tr><td>{{.Worker}}</td><td>{{num .Players}}</td><td>{{num .Connected}}</td><td>{{num .Matched}}</td><td>{{num .Failed}}</td><td>{{num .Lost}}</td><td>{{printf "%.2f" .CPUSec}}</td></tr>
{{end}}</table></div>
{{end}}{{with .R.VsBaseline}}
<h2>Compared with the baseline</h2>
<p>Baseline: <code>{{.File}}</code>{{with .Label}} ({{.}}){{end}}, started {{.StartedAt.Format "2006-01-02 15:04:05 UTC"}}.
{{if not .SameScenario}}<span class="bad">It ran a different scenario (<code>{{.Scenario}}</code>): its figures are not comparable.</span>{{end}}
Single runs on a shared machine vary (see <code>docs/benchmarks.md</code>): for a decision, compare interleaved runs (<code>cmd/lobbyload/ab.sh</code>).</p>
<div class="scroll"><table><tr><th></th><th>baseline</th><th>this run</th><th>difference</th></tr>
{{range .Rows}}<tr><td class="wrap">{{.Metric}}{{with .Unit}} ({{.}}){{end}}</td><td>{{fnum .Baseline}}</td><td>{{fnum .Run}}</td><td class="{{if eq .Better 1}}better{{else if eq .Better -1}}worse{{end}}">{{.DiffText}}{{if eq .Better 1}} better{{else if eq .Better -1}} worse{{end}}</td></tr>
{{end}}</table></div>
{{end}}
{{if .Series}}
<h2>Over time</h2>
<p>Sampled every {{printf "%g" .R.Series.IntervalSec}} s from the start of the run to its end: lobbyload's own counts, and lobbyd's <code>/metrics</code>.{{if not .HaveServer}} <span class="note">lobbyd's <code>/metrics</code> could not be read (a server without them, such as echoref): only lobbyload's own figures are shown.</span>{{end}}</p>
<div class="charts">
{{range .Series}}<figure><h3>{{.Title}}</h3>{{.SVG}}<ul class="legend">{{range .Legend}}<li><span class="sw{{if .Dash}} dash{{end}}" style="border-color:{{.Color}}"></span>{{.Name}}</li>{{end}}</ul><figcaption>{{.Caption}}</figcaption></figure>
{{end}}</div>
{{end}}
{{with .Scatter}}
<h2>{{.Title}}</h2>
<figure class="charts">{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{end}}
<h2>Latency (ms)</h2>
<div class="scroll"><table><tr><th></th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>
{{with .R.Latency.Connect}}<tr><td>connect</td><td>{{num .Count}}</td><td>{{ms .P50}}</td><td>{{ms .P90}}</td><td>{{ms .P99}}</td><td>{{ms .Max}}</td></tr>{{end}}
{{with .R.Latency.JoinReply}}<tr><td>queue.join→reply</td><td>{{num .Count}}</td><td>{{ms .P50}}</td><td>{{ms .P90}}</td><td>{{ms .P99}}</td><td>{{ms .Max}}</td></tr>{{end}}
{{with .R.Latency.JoinToReady}}<tr><td>queue.join→match.ready</td><td>{{num .Count}}</td><td>{{ms .P50}}</td><td>{{ms .P90}}</td><td>{{ms .P99}}</td><td>{{ms .Max}}</td></tr>{{end}}
</table></div>
<p>connect: token, WebSocket dial and <code>welcome</code>; queue.join→reply: the request's round trip; queue.join→match.ready: the wait for a match and its party (percentiles by nearest rank).</p>
{{if .CDFs}}<div class="charts">
{{range .CDFs}}<figure><h3>{{.Title}}</h3>{{.SVG}}<ul class="legend">{{range .Legend}}<li><span class="sw{{if .Dash}} dash{{end}}" style="border-color:{{.Color}}"></span>{{.Name}}</li>{{end}}</ul><figcaption>{{.Caption}}</figcaption></figure>
{{end}}</div>{{end}}
<h2>Errors</h2>
{{if .Errors}}<div class="scroll"><table>{{range .Errors}}<tr><td>{{.Kind}}</td><td>{{.N}}</td></tr>{{end}}</table></div>{{else}}<p>none</p>{{end}}
{{with .R.Failures}}<p>First failed or lost players:</p><ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2>Violations</h2>
{{if .Violations}}<div class="scroll"><table>{{range .Violations}}<tr><td>{{.Kind}}</td><td>{{.N}}</td></tr>{{end}}</table></div>
<ul>{{range .R.ViolationDetails}}<li>{{.}}</li>{{end}}</ul>{{else}}<p>none</p>{{end}}
<h2>How it ran</h2>
<p>The command (settings left at their defaults omitted):</p>
<code class="cmd">{{.Command}}</code>
{{with .Code}}<h3>Code</h3>
<div class="scroll"><table>{{range .}}<tr><th>{{.Name}}</th><td class="text">{{.Value}}</td></tr>{{end}}</table></div>{{end}}
{{with .Host}}<h3>Host (lobbyload's)</h3>
<div class="scroll"><table>{{range .}}<tr><th>{{.Name}}</th><td class="text">{{.Value}}</td></tr>{{end}}</table></div>{{end}}
{{with .R.Settings}}<h3>Every setting</h3>
<div class="scroll"><table><tr><th>flag and meaning</th><th>value</th><th>from</th></tr>
{{range .}}<tr><td class="text"><code>-{{.Name}}</code><br><small>{{.Usage}}</small></td><td class="val">{{.Value}}</td><td>{{.From}}</td></tr>
{{end}}</table></div>{{end}}
</body></html>
`))
