package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the outcome of one run; its JSON form is what -json prints.
type report struct {
	// URL is -url: one lobbyd, or a comma-separated list (see URLs).
	URL         string    `json:"url"`
	Queue       string    `json:"queue"`
	Scenario    string    `json:"scenario"`
	StartedAt   time.Time `json:"startedAt"`
	ElapsedSec  float64   `json:"elapsedSeconds"`
	ConnectOnly bool      `json:"connectOnly"`
	// Preconnect says every player connected before anyone queued (see
	// -preconnect); then throughput, queue.join latencies and the timeline
	// cover the queueing phase only, from the barrier.
	Preconnect bool `json:"preconnect"`
	// ConnectPhaseSec is, with -preconnect, the time from the start until
	// every player was connected or failed (the barrier).
	ConnectPhaseSec float64 `json:"connectPhaseSeconds"`
	// QueueingPhaseSec is, with -preconnect, the time from the barrier to
	// the last match.ready: the span ThroughputPerSec is measured over.
	QueueingPhaseSec float64 `json:"queueingPhaseSeconds"`

	MatchSize int `json:"matchSize"`
	Players   int `json:"players"`
	Connected int `json:"connected"`
	Matched   int `json:"matched"`
	Failed    int `json:"failed"`
	Lost      int `json:"lost"`
	Matches   int `json:"matches"`
	Lobbies   int `json:"lobbies"`
	Leaves    int `json:"leaves"`
	// LeftAfterFound players left the queue after match.found: the match
	// went ahead without their match.ready (as the protocol says), so they
	// did not queue again and are neither matched nor lost.
	LeftAfterFound int `json:"leftAfterFound"`
	// LateLeaves are leaves after match.found noticed only after queueing
	// again; each puts one ticket too many in the queue, and with lobbies
	// and first-fit packing the leftover tickets may not form a match. After
	// a late leave lost players are reported but do not fail the run.
	LateLeaves int `json:"lateLeaves"`
	// Reconnects are -reconnect-share's drops and reconnections.
	Reconnects int `json:"reconnects"`
	// LostSockets are sockets the server closed (1001 from a drain or a
	// shutdown, 1011, 4004, 4005) or that broke under a player, who then
	// reconnected to the next URL of -url; Redelivered counts the
	// match.ready that came again on a player's later socket, in
	// welcome.state.match, which docs/protocol.md allows (no duplicate:
	// the same match).
	LostSockets int `json:"lostSockets"`
	Redelivered int `json:"redelivered"`
	// Resumed are the reconnections (after a lost socket, or a drop of
	// -reconnect-share) whose welcome gave the player's ticket, lobby or
	// match back.
	Resumed int `json:"resumed"`
	// DroppedTickets and DroppedLobbyPlaces are the reconnections whose
	// welcome left out an acknowledged searching ticket, or a lobby place,
	// that nothing had ended: each fails the run.
	DroppedTickets     int `json:"droppedTickets"`
	DroppedLobbyPlaces int `json:"droppedLobbyPlaces"`
	// TicketsLost are the queue.state cancelled events with reason lost:
	// tickets Redis lost after their queue.join reply (a failover), which
	// the server found and said so; each was queued again.
	TicketsLost int `json:"ticketsLost"`
	// Back is, once sockets were lost, how the players came back: the
	// time from each loss to the next welcome, when the last came back,
	// the reconnections per second at each URL, and who never came back
	// (see backReport). Absent when no socket was lost.
	Back *backReport `json:"back,omitempty"`
	// URLs are the figures of each URL of -url, in its order.
	URLs []urlReport `json:"urls,omitempty"`
	// Procs is -procs; Workers, with more than one, each worker's share.
	Procs   int            `json:"procs,omitempty"`
	Workers []workerReport `json:"workers,omitempty"`

	// ThroughputPerSec is players reaching match.ready per second between
	// the first queue.join (with -preconnect, the barrier) and the last
	// match.ready.
	ThroughputPerSec float64 `json:"throughputPerSecond"`
	// CPU is what lobbyd (and Redis, with -redis-url) spent per matched
	// player while the players queued; absent when lobbyd's /metrics
	// could not be read.
	CPU *cpuReport `json:"cpu,omitempty"`

	Latency struct {
		Connect     percentiles `json:"connect"`
		JoinReply   percentiles `json:"queueJoinReply"`
		JoinToReady percentiles `json:"queueJoinToMatchReady"`
	} `json:"latencyMs"`

	Errors     map[string]int `json:"errors"`
	Violations map[string]int `json:"violations"`
	// ViolationDetails are the first violations, one line each.
	ViolationDetails []string `json:"violationDetails"`
	Failures         []string `json:"failures,omitempty"` // the first failed players' reasons

	// Timeline is each matched player's queue.join→match.ready latency by
	// the time match.ready arrived, since the start (with -preconnect,
	// since the barrier), in arrival order.
	Timeline []timelinePoint `json:"timeline"`

	// Label and ServerVersion are -label and -server-version.
	Label         string `json:"label,omitempty"`
	ServerVersion string `json:"serverVersion,omitempty"`
	// Settings is every flag of the run, secrets hidden.
	Settings []setting  `json:"settings,omitempty"`
	Host     *hostInfo  `json:"host,omitempty"`
	Build    *buildInfo `json:"build,omitempty"`
	// Series is the run over time (see series).
	Series series `json:"series"`
	// LatencyCDF is each latency's distribution, as the latency (ms) at
	// the quantiles cdfQuantiles (nearest rank, as the percentiles).
	LatencyCDF struct {
		Connect     []cdfPoint `json:"connect,omitempty"`
		JoinReply   []cdfPoint `json:"queueJoinReply,omitempty"`
		JoinToReady []cdfPoint `json:"queueJoinToMatchReady,omitempty"`
	} `json:"latencyCdfMs"`
	// VsBaseline compares the run with -baseline's.
	VsBaseline *comparison `json:"vsBaseline,omitempty"`

	// baseline is -baseline's report, for the HTML page.
	baseline *report
}

// cdfPoint is the latency at one quantile.
type cdfPoint struct {
	Q  float64 `json:"q"`
	Ms float64 `json:"ms"`
}

// cdfQuantiles are the quantiles a latency CDF is kept at: every half
// percent, and the tail in finer steps.
var cdfQuantiles = func() []float64 {
	var qs []float64
	for i := 0; i <= 200; i++ {
		qs = append(qs, float64(i)/200)
		if i == 198 {
			qs = append(qs, 0.9925)
		}
		if i == 199 {
			qs = append(qs, 0.999)
		}
	}
	return qs
}()

// newCDF is durations at cdfQuantiles; nil without any. It sorts ds.
func newCDF(ds []time.Duration) []cdfPoint {
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	out := make([]cdfPoint, len(cdfQuantiles))
	for i, q := range cdfQuantiles {
		out[i] = cdfPoint{Q: q, Ms: ms(ds[rank(q, len(ds))])}
	}
	return out
}

// rank is the index of quantile q of n sorted values (nearest rank).
func rank(q float64, n int) int {
	i := int(q*float64(n)+0.999999) - 1
	return min(max(i, 0), n-1)
}

type timelinePoint struct {
	AtSec     float64 `json:"atSeconds"`
	LatencyMs float64 `json:"latencyMs"`
}

// percentiles of a set of latencies, in milliseconds (nearest rank).
type percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func newPercentiles(ds []time.Duration) percentiles {
	if len(ds) == 0 {
		return percentiles{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 { return ms(ds[rank(q, len(ds))]) }
	return percentiles{Count: len(ds), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

const maxFailureDetails = 20

// urlReport is what happened at one URL of -url.
type urlReport struct {
	URL string `json:"url"`
	// Players are the players who connect there first (player i: URL i
	// mod n); Connected those whose first connection reached it (their own
	// URL, or the next when theirs failed).
	Players   int `json:"players"`
	Connected int `json:"connected"`
	// Reconnects are the reconnections that reached it: after a lost
	// socket (from the URL before it) and -reconnect-share's drops.
	Reconnects int `json:"reconnects"`
	// SocketsLost are its sockets the server closed or that broke under a
	// player; ConnectFailures its failed connection attempts (token, dial,
	// handshake or welcome); Matched the players whose match.ready came on
	// one of its sockets.
	SocketsLost     int `json:"socketsLost"`
	ConnectFailures int `json:"connectFailures"`
	Matched         int `json:"matched"`
}

// workerReport is one worker process's share of a -procs run.
type workerReport struct {
	Worker    int `json:"worker"`
	Players   int `json:"players"`
	Connected int `json:"connected"`
	Matched   int `json:"matched"`
	Failed    int `json:"failed"`
	Lost      int `json:"lost"`
	// CPUSec is the worker's own CPU time (user and system).
	CPUSec float64 `json:"cpuSeconds"`
}

// tally is what the players of one process found, in a form that adds
// up: the report is computed from it, and with -procs each worker sends
// its tally to the parent, which merges them (mergeTallies) into the run's.
type tally struct {
	Players, Connected, Matched, Failed, Lost, Lobbies, Leaves int
	LeftAfterFound, LateLeaves, Reconnects, LostSockets        int
	Redelivered, Resumed                                       int
	DroppedTickets, DroppedLobbyPlaces, TicketsLost            int
	// The latencies, every sample.
	Connects, JoinReplies, ToReady []time.Duration
	// Ready is when each matched player with a known queue.join time got
	// match.ready, and its latency (ToReady's samples, in order).
	Ready []time.Time
	// FirstJoin is the first queue.join, LastReady the last match.ready
	// (zero: none).
	FirstJoin, LastReady time.Time
	Failures             []string // the first failed or lost players
	Errors, Violations   map[string]int
	ViolationDetails     []string
	// Matches is what the first receiver of each match was told.
	Matches map[string]matchView
	URLs    []urlReport
	// Backs are the reconnections after a lost socket that got welcome;
	// NeverBack the players whose socket was lost and who had no welcome
	// after it (the first of them named in Failures).
	Backs     []reconnection
	NeverBack int
	// CPUSec is the process's own CPU time, in a worker's tally.
	CPUSec float64 `json:",omitempty"`
}

// collect gathers the players' results once they all returned.
func (l *load) collect(players []*player) *tally {
	cfg := l.cfg
	t := &tally{Players: len(players)}
	for _, p := range players {
		t.Connects = append(t.Connects, p.connects...)
		t.JoinReplies = append(t.JoinReplies, p.joinReplies...)
		if p.wasConnected {
			t.Connected++
		}
		if p.role == roleLobbyOwner {
			t.Lobbies++
		}
		t.Leaves += p.leaves
		t.Reconnects += p.reconnects
		t.LostSockets += p.lostSockets
		t.Redelivered += p.redelivered
		t.Resumed += p.resumed
		t.DroppedTickets += p.droppedTickets
		t.DroppedLobbyPlaces += p.droppedLobbies
		t.TicketsLost += p.ticketsLost
		t.Backs = append(t.Backs, p.backs...)
		if !p.lostAt.IsZero() {
			t.NeverBack++
			if len(t.Failures) < maxFailureDetails {
				t.Failures = append(t.Failures, fmt.Sprintf("%s (%s, %s): socket lost at %s (on %s), no welcome after it",
					p.name, p.role, p.id, p.lostAt.UTC().Format("15:04:05.000"), cfg.URLs[p.lostURL]))
			}
		}
		if p.leftMatch && p.matchReadies == 0 {
			t.LeftAfterFound++
		} else if p.leftAfterFound() {
			t.LateLeaves++
		}
		if !p.firstJoinAt.IsZero() && (t.FirstJoin.IsZero() || p.firstJoinAt.Before(t.FirstJoin)) {
			t.FirstJoin = p.firstJoinAt
		}
		switch {
		case p.matchReadies > 0:
			t.Matched++
			if p.matchLatency > 0 {
				t.ToReady = append(t.ToReady, p.matchLatency)
				t.Ready = append(t.Ready, p.matchAt)
			}
			if p.matchAt.After(t.LastReady) {
				t.LastReady = p.matchAt
			}
		case p.leftMatch:
		case p.failure != "":
			t.Failed++
			if len(t.Failures) < maxFailureDetails {
				t.Failures = append(t.Failures, p.name+": "+p.failure)
			}
		case p.lost && !cfg.ConnectOnly:
			t.Lost++
			if len(t.Failures) < maxFailureDetails {
				t.Failures = append(t.Failures, fmt.Sprintf("%s (%s, %s): no match.ready; match.found for %v",
					p.name, p.role, p.id, p.foundIDs))
			}
		}
	}
	_, t.Violations, t.Errors, t.ViolationDetails = l.check.snapshot()
	t.Matches = l.check.views()
	t.URLs = make([]urlReport, len(cfg.URLs))
	for u := range cfg.URLs {
		c := &l.urls[u]
		t.URLs[u] = urlReport{URL: cfg.URLs[u], Connected: int(c.connected.Load()), Reconnects: int(c.reconnects.Load()),
			SocketsLost: int(c.lost.Load()), ConnectFailures: int(c.failures.Load()), Matched: int(c.matched.Load())}
	}
	for _, p := range players {
		t.URLs[p.index%len(cfg.URLs)].Players++
	}
	return t
}

// mergeTallies adds the workers' tallies up into the run's: counts and
// samples are summed, the matches united, and the players of one match
// seen by different workers checked against each other (into check).
func mergeTallies(ts []*tally, check *checker) *tally {
	out := &tally{}
	for _, t := range ts {
		out.Players += t.Players
		out.Connected += t.Connected
		out.Matched += t.Matched
		out.Failed += t.Failed
		out.Lost += t.Lost
		out.Lobbies += t.Lobbies
		out.Leaves += t.Leaves
		out.LeftAfterFound += t.LeftAfterFound
		out.LateLeaves += t.LateLeaves
		out.Reconnects += t.Reconnects
		out.LostSockets += t.LostSockets
		out.Redelivered += t.Redelivered
		out.Resumed += t.Resumed
		out.DroppedTickets += t.DroppedTickets
		out.DroppedLobbyPlaces += t.DroppedLobbyPlaces
		out.TicketsLost += t.TicketsLost
		out.Backs = append(out.Backs, t.Backs...)
		out.NeverBack += t.NeverBack
		out.Connects = append(out.Connects, t.Connects...)
		out.JoinReplies = append(out.JoinReplies, t.JoinReplies...)
		out.ToReady = append(out.ToReady, t.ToReady...)
		out.Ready = append(out.Ready, t.Ready...)
		if !t.FirstJoin.IsZero() && (out.FirstJoin.IsZero() || t.FirstJoin.Before(out.FirstJoin)) {
			out.FirstJoin = t.FirstJoin
		}
		if t.LastReady.After(out.LastReady) {
			out.LastReady = t.LastReady
		}
		for _, f := range t.Failures {
			if len(out.Failures) < maxFailureDetails {
				out.Failures = append(out.Failures, f)
			}
		}
		check.add(t.Errors, t.Violations, t.ViolationDetails)
		for id, v := range t.Matches {
			check.seeMatch(id, v)
		}
		if out.URLs == nil {
			out.URLs = make([]urlReport, len(t.URLs))
		}
		for u, x := range t.URLs {
			if u >= len(out.URLs) {
				break
			}
			o := &out.URLs[u]
			o.URL = x.URL
			o.Players += x.Players
			o.Connected += x.Connected
			o.Reconnects += x.Reconnects
			o.SocketsLost += x.SocketsLost
			o.ConnectFailures += x.ConnectFailures
			o.Matched += x.Matched
		}
	}
	_, out.Violations, out.Errors, out.ViolationDetails = check.snapshot()
	out.Matches = check.views()
	return out
}

// buildReport is the report of the run's tally.
func (l *load) buildReport(t *tally, end time.Time) *report {
	cfg := l.cfg
	r := &report{
		URL: cfg.URL, Queue: cfg.Queue, StartedAt: l.start.UTC(), ElapsedSec: end.Sub(l.start).Seconds(),
		ConnectOnly: cfg.ConnectOnly, Preconnect: cfg.Preconnect, Players: t.Players, MatchSize: l.matchSize,
		Scenario: fmt.Sprintf("players=%d rate=%g lobby-share=%g lobby-size=%d leave-share=%g reconnect-share=%g connect-only=%v preconnect=%v",
			cfg.Players, cfg.Rate, cfg.LobbyShare, cfg.LobbySize, cfg.LeaveShare, cfg.ReconnectShare, cfg.ConnectOnly, cfg.Preconnect),
		Connected: t.Connected, Matched: t.Matched, Failed: t.Failed, Lost: t.Lost, Lobbies: t.Lobbies, Leaves: t.Leaves,
		LeftAfterFound: t.LeftAfterFound, LateLeaves: t.LateLeaves, Reconnects: t.Reconnects,
		LostSockets: t.LostSockets, Redelivered: t.Redelivered, Resumed: t.Resumed, Failures: t.Failures, URLs: t.URLs,
		DroppedTickets: t.DroppedTickets, DroppedLobbyPlaces: t.DroppedLobbyPlaces, TicketsLost: t.TicketsLost,
	}
	if cfg.Preconnect {
		r.ConnectPhaseSec = l.queueStart.Sub(l.start).Seconds()
	}
	connects, joins, toReady := t.Connects, t.JoinReplies, slices.Clone(t.ToReady)
	firstJoin, lastReady := t.FirstJoin, t.LastReady
	for i, at := range t.Ready {
		r.Timeline = append(r.Timeline, timelinePoint{AtSec: at.Sub(l.queueStart).Seconds(), LatencyMs: ms(t.ToReady[i])})
	}
	sort.Slice(r.Timeline, func(i, j int) bool { return r.Timeline[i].AtSec < r.Timeline[j].AtSec })
	if cfg.Preconnect {
		// Every queue.join came after the barrier, so the queue.join
		// latencies are the queueing phase's already; the throughput's
		// span starts at the barrier too.
		firstJoin = l.queueStart
		if r.Matched > 0 {
			r.QueueingPhaseSec = lastReady.Sub(firstJoin).Seconds()
		}
	}
	if r.Matched > 0 && lastReady.After(firstJoin) {
		r.ThroughputPerSec = float64(r.Matched) / lastReady.Sub(firstJoin).Seconds()
	}
	r.Latency.Connect = newPercentiles(connects)
	r.Latency.JoinReply = newPercentiles(joins)
	r.Latency.JoinToReady = newPercentiles(toReady)
	r.LatencyCDF.Connect, r.LatencyCDF.JoinReply, r.LatencyCDF.JoinToReady = newCDF(connects), newCDF(joins), newCDF(toReady)
	r.Matches, r.Violations, r.Errors, r.ViolationDetails = len(t.Matches), t.Violations, t.Errors, t.ViolationDetails
	r.Label, r.ServerVersion, r.Settings = cfg.Label, cfg.ServerVersion, cfg.Settings
	r.Host, r.Build = l.host, l.build
	r.Back = newBackReport(t.Backs, t.NeverBack, cfg.URLs, l.start)
	return r
}

// leftAfterFound reports whether the player left the queue after a match
// had been found for it and so never got that match's match.ready, which the
// protocol allows: the match goes ahead and one player of the run is left
// over in the queue.
func (p *player) leftAfterFound() bool {
	if len(p.leftMatchIDs) > 0 {
		return true
	}
	if p.leaves == 0 {
		return false
	}
	for _, id := range p.foundIDs {
		if !slices.Contains(p.matchIDs, id) {
			return true
		}
	}
	return false
}

// violationCount is the number of protocol violations found.
func (r *report) violationCount() int {
	n := 0
	for _, v := range r.Violations {
		n += v
	}
	return n
}

// verdict is nil when the run kept the protocol and every player got its
// match (or, with -connect-only, stayed connected). After a leave that
// landed after match.found was followed by a new queue.join, the player
// count no longer adds up, so lost players do not fail the run.
func (r *report) verdict() error {
	var errs []error
	if n := r.violationCount(); n > 0 {
		kinds := make([]string, 0, len(r.Violations))
		for k, v := range r.Violations {
			kinds = append(kinds, fmt.Sprintf("%s ×%d", k, v))
		}
		sort.Strings(kinds)
		errs = append(errs, fmt.Errorf("%d protocol violation(s): %s", n, strings.Join(kinds, ", ")))
	}
	if r.Failed > 0 {
		errs = append(errs, fmt.Errorf("%d player(s) failed", r.Failed))
	}
	if r.Lost > 0 && r.LateLeaves == 0 {
		errs = append(errs, fmt.Errorf("%d player(s) lost: no match.ready before the run ended", r.Lost))
	}
	if r.DroppedTickets > 0 || r.DroppedLobbyPlaces > 0 {
		errs = append(errs, fmt.Errorf("%d ticket(s) and %d lobby place(s) acknowledged and not ended were missing from welcome after a reconnection",
			r.DroppedTickets, r.DroppedLobbyPlaces))
	}
	if b := r.Back; b != nil && b.NeverBack > 0 {
		errs = append(errs, fmt.Errorf("%d player(s) lost their socket and never got welcome again", b.NeverBack))
	}
	if r.ConnectOnly && r.Connected < r.Players {
		errs = append(errs, fmt.Errorf("%d of %d player(s) connected", r.Connected, r.Players))
	}
	return errors.Join(errs...)
}

// writeJSONFile writes the report as -json prints it.
func (r *report) writeJSONFile(path string) error {
	var buf bytes.Buffer
	if err := r.writeJSON(&buf); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *report) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "lobbyload against %s, queue %s\n", r.URL, r.Queue)
	if r.Label != "" {
		fmt.Fprintf(tw, "label: %s\n", r.Label)
	}
	if r.ServerVersion != "" {
		fmt.Fprintf(tw, "lobbyd: %s\n", r.ServerVersion)
	}
	fmt.Fprintf(tw, "scenario: %s\n", r.Scenario)
	fmt.Fprintf(tw, "elapsed: %.2fs\n", r.ElapsedSec)
	if r.Preconnect {
		fmt.Fprintf(tw, "preconnected: connect phase %.2fs, then queueing phase %.2fs (barrier to the last match.ready); throughput and queue.join latencies are the queueing phase's\n",
			r.ConnectPhaseSec, r.QueueingPhaseSec)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "players\t%d\n", r.Players)
	fmt.Fprintf(tw, "connected\t%d\n", r.Connected)
	if !r.ConnectOnly {
		fmt.Fprintf(tw, "matched\t%d\t(%d matches)\n", r.Matched, r.Matches)
	}
	fmt.Fprintf(tw, "failed\t%d\n", r.Failed)
	if !r.ConnectOnly {
		if r.LateLeaves > 0 {
			fmt.Fprintf(tw, "lost\t%d\t(no match.ready by the end; not judged: %d leave(s) after match.found were followed by a new queue.join)\n", r.Lost, r.LateLeaves)
		} else {
			fmt.Fprintf(tw, "lost\t%d\t(no match.ready by the end)\n", r.Lost)
		}
		if r.TicketsLost > 0 {
			fmt.Fprintf(tw, "tickets lost by the server\t%d\t(queue.state cancelled, reason lost: Redis lost them after the queue.join reply; queued again)\n", r.TicketsLost)
		}
		fmt.Fprintf(tw, "lobbies\t%d\n", r.Lobbies)
		fmt.Fprintf(tw, "leaves\t%d\t(%d after match.found, not queued again)\n", r.Leaves, r.LeftAfterFound)
		fmt.Fprintf(tw, "reconnects\t%d\n", r.Reconnects)
		if r.LostSockets > 0 {
			fmt.Fprintf(tw, "sockets lost\t%d\t(closed by the server or broken; each player reconnected to another -url (-reconnect-to); %d welcome(s) gave a ticket, lobby or match back; %d ticket(s) and %d lobby place(s) missing)\n", r.LostSockets, r.Resumed, r.DroppedTickets, r.DroppedLobbyPlaces)
		}
		if r.Redelivered > 0 {
			fmt.Fprintf(tw, "match.ready again\t%d\t(the player's match once more on a later socket, in welcome: allowed, not a duplicate)\n", r.Redelivered)
		}
		span := "first queue.join to last match.ready"
		if r.Preconnect {
			span = "barrier to last match.ready"
		}
		fmt.Fprintf(tw, "throughput\t%.1f players/s\t(match.ready, %s)\n", r.ThroughputPerSec, span)
		if c := r.CPU; c != nil {
			fmt.Fprintf(tw, "lobbyd CPU\t%.0f µs per matched player\t(%.2f s while the players queued)\n", c.ServerUsPerPlayer, c.ServerSec)
			if c.RedisSec != nil {
				fmt.Fprintf(tw, "redis CPU\t%.0f µs per matched player\t(%.2f s)\n", *c.RedisUsPerPlayer, *c.RedisSec)
			}
		}
	}
	fmt.Fprintf(tw, "\nlatency (ms)\tcount\tp50\tp90\tp99\tmax\n")
	row := func(name string, p percentiles) {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\n", name, p.Count, p.P50, p.P90, p.P99, p.Max)
	}
	row("connect", r.Latency.Connect)
	if !r.ConnectOnly {
		row("queue.join→reply", r.Latency.JoinReply)
		row("queue.join→match.ready", r.Latency.JoinToReady)
	}
	if len(r.URLs) > 1 {
		fmt.Fprintf(tw, "\nper URL\tplayers\tconnected\treconnects to it\tsockets lost\tfailed connects\tmatched on it\n")
		for _, u := range r.URLs {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", u.URL, u.Players, u.Connected, u.Reconnects, u.SocketsLost, u.ConnectFailures, u.Matched)
		}
	}
	if r.Back != nil {
		r.Back.writeText(tw)
	}
	if len(r.Workers) > 0 {
		fmt.Fprintf(tw, "\nworker (-procs %d)\tplayers\tconnected\tmatched\tfailed\tlost\tCPU s\n", r.Procs)
		for _, w := range r.Workers {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%.2f\n", w.Worker, w.Players, w.Connected, w.Matched, w.Failed, w.Lost, w.CPUSec)
		}
	}
	writeCounts(tw, "errors", r.Errors)
	writeCounts(tw, "violations", r.Violations)
	for _, d := range r.ViolationDetails {
		fmt.Fprintf(tw, "  %s\n", d)
	}
	if len(r.Failures) > 0 {
		fmt.Fprintf(tw, "\nfirst failed or lost players:\n")
		for _, f := range r.Failures {
			fmt.Fprintf(tw, "  %s\n", f)
		}
	}
	if r.VsBaseline != nil {
		r.VsBaseline.writeText(tw)
	}
	verdict := "OK"
	if err := r.verdict(); err != nil {
		verdict = "FAILED: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	fmt.Fprintf(tw, "\nresult: %s\n", verdict)
	return tw.Flush()
}

func writeCounts(w io.Writer, title string, counts map[string]int) {
	if len(counts) == 0 {
		fmt.Fprintf(w, "\n%s: none\n", title)
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s\t%d\n", k, counts[k])
	}
}
