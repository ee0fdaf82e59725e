package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// maxViolationLines bounds the violations printed; all are counted.
const maxViolationLines = 40

// err returns an error naming the broken invariants, or nil.
func (res *result) err() error {
	if len(res.verdict.Violations) == 0 {
		return nil
	}
	return errors.New("invariants broken: " + res.verdict.summary())
}

// faultFigures is what one fault did, as measured.
type faultFigures struct {
	event faultEvent
	// Sockets that ended within the fault's window, by close code, and
	// their reconnect gaps.
	closes       map[int]int
	gaps         []time.Duration
	errors       map[string]int // errors players saw in the window
	inFlight     int            // matches formed before the fault, ready after it
	longestDelay time.Duration  // longest of those, from the fault to match.ready
	firstReady   time.Duration  // from the process being up to the next match.ready
}

// measureFault gathers the figures of e from the records. Its window runs
// from the fault to five seconds after every node was ready again.
func measureFault(e faultEvent, players []*playerRecord, matches map[string]*matchView) faultFigures {
	f := faultFigures{event: e, closes: map[int]int{}, errors: map[string]int{}}
	end := e.ReadyAt.Add(5 * time.Second)
	for _, p := range players {
		for _, d := range p.Disconnects {
			if d.At.Before(e.At) || d.At.After(end) || d.Node < 0 {
				continue
			}
			if e.Node >= 0 && d.Node != e.Node {
				continue
			}
			f.closes[d.Code]++
			if !d.ReconnectedAt.IsZero() {
				f.gaps = append(f.gaps, d.ReconnectedAt.Sub(d.At))
			}
		}
		for _, te := range p.TimedErrors {
			if !te.At.Before(e.At) && !te.At.After(end) {
				f.errors[te.Kind]++
			}
		}
	}
	f.firstReady = -1
	for _, m := range matches {
		if m.FirstReady.IsZero() {
			continue
		}
		if m.LastJoin.Before(e.At) && m.FirstReady.After(e.At) {
			f.inFlight++
			f.longestDelay = max(f.longestDelay, m.FirstReady.Sub(e.At))
		}
		if m.FirstReady.After(e.UpAt) {
			if d := m.FirstReady.Sub(e.UpAt); f.firstReady < 0 || d < f.firstReady {
				f.firstReady = d
			}
		}
	}
	return f
}

// percentile returns the p-th percentile (0-100) of ds, or 0.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func ms(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	if d < 10*time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func codesText(m map[int]int) string {
	s := map[string]int{}
	for code, n := range m {
		s[fmt.Sprint(code)] = n
	}
	return countsText(s)
}

// playFabGroups sorts the delivered matches by what the fake did to their
// calls, and times each group from the last member's queue.join to the
// first match.ready.
func playFabGroups(matches map[string]*matchView) map[string][]time.Duration {
	out := map[string][]time.Duration{}
	for _, m := range matches {
		if m.FirstReady.IsZero() || m.LastJoin.IsZero() {
			continue
		}
		var g string
		switch {
		case m.fakeDropped > 0:
			g = "dropped reply"
		case m.fakeErrors > 0:
			g = "5xx"
		case m.fakeThrottled > 0:
			g = "429"
		default:
			g = "no PlayFab fault"
		}
		out[g] = append(out[g], m.FirstReady.Sub(m.LastJoin))
	}
	return out
}

// writeText writes the report.
func (res *result) writeText(w io.Writer) error {
	cfg := res.cfg
	b := &strings.Builder{}
	fmt.Fprintf(b, "lobbychaos: %d nodes, %d players, play %v, a fault every %v (node down %v, Redis down %v), PlayFab %s mode: %.0f%% 5xx, %.0f%% 429, %.0f%% dropped replies\n",
		cfg.Nodes, cfg.Players, cfg.Duration, cfg.FaultEvery, cfg.NodeDown, cfg.RedisDown, cfg.FakeMode, cfg.ErrorRate*100, cfg.ThrottleRate*100, cfg.DropRate*100)
	fmt.Fprintf(b, "grace %v, allocation deadline %v; drain %v, leak check %v after the players left\n\n",
		cfg.Grace, cfg.AllocationDeadline, ms(res.timeline.drained.Sub(res.timeline.playEnd)), ms(res.timeline.scanned.Sub(res.timeline.left)))

	rounds, deliveries, disconnects := 0, 0, 0
	closes := map[int]int{}
	for _, p := range res.players {
		for _, r := range p.Rounds {
			if r.MatchID != "" {
				rounds++
			}
		}
		deliveries += len(p.Deliveries)
		for _, d := range p.Disconnects {
			if d.Node >= 0 {
				disconnects++
				closes[d.Code]++
			}
		}
	}
	delivered := 0
	for _, m := range res.verdict.Matches {
		if !m.FirstReady.IsZero() {
			delivered++
		}
	}
	fmt.Fprintf(b, "players: rounds ended by match.ready %d, match.ready frames %d, matches delivered %d, sockets lost %d (%s)\n",
		rounds, deliveries, delivered, disconnects, codesText(closes))
	st := res.fake
	fmt.Fprintf(b, "PlayFab: RequestPartyService %d, GetEntityToken %d, throttled %d, 5xx %d, dropped replies %d, parties created %d\n\n",
		st.RequestPartyService, st.GetEntityToken, st.Throttled, st.Errors, st.Dropped, st.PartiesCreated)

	tw := tabwriter.NewWriter(b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tat\tdown\tup → all ready\tsockets lost (close codes)\treconnect p50 / max\tmatches in flight: n, longest wait\tnext match.ready after up\terrors players saw")
	for _, e := range res.events {
		f := measureFault(e, res.players, res.verdict.Matches)
		fmt.Fprintf(tw, "%s %s\t+%.0fs\t%s\t%s\t%d (%s)\t%s / %s\t%d, %s\t%s\t%s\n",
			e.Kind, e.target(), e.At.Sub(res.timeline.start).Seconds(), ms(e.UpAt.Sub(e.At)), ms(e.ReadyAt.Sub(e.UpAt)),
			len(f.gaps), codesText(f.closes), ms(percentile(f.gaps, 50)), ms(percentile(f.gaps, 100)),
			f.inFlight, ms(f.longestDelay), ms(f.firstReady), countsText(f.errors))
	}
	tw.Flush()

	fmt.Fprintln(b, "\nlast queue.join → match.ready, by what PlayFab did to the match's calls:")
	groups := playFabGroups(res.verdict.Matches)
	for _, g := range []string{"no PlayFab fault", "429", "5xx", "dropped reply"} {
		ds := groups[g]
		fmt.Fprintf(b, "  %-17s %4d matches  p50 %-8s p90 %-8s max %s\n", g, len(ds), ms(percentile(ds, 50)), ms(percentile(ds, 90)), ms(percentile(ds, 100)))
	}

	kinds := map[string]int{}
	for _, k := range res.keys {
		if r := ruleFor(k.Key); r != nil {
			kinds[r.what]++
		} else {
			kinds["unknown"]++
		}
	}
	fmt.Fprintf(b, "\nRedis after everyone left: %d keys (%s); allocation jobs pending %d\n", len(res.keys), countsText(kinds), res.pending)
	if len(res.injected) > 0 {
		fmt.Fprintf(b, "injected a second RequestPartyService for %d match(es): %v\n", len(res.injected), res.injected)
	}

	fmt.Fprintln(b, "\nnoted (not failures):")
	var notes []string
	for k := range res.verdict.Notes {
		notes = append(notes, k)
	}
	sort.Strings(notes)
	for _, k := range notes {
		fmt.Fprintf(b, "  %-90s %d\n", k, res.verdict.Notes[k])
	}

	if len(res.verdict.Violations) == 0 {
		fmt.Fprintln(b, "\nPASS: every invariant held")
	} else {
		fmt.Fprintf(b, "\nFAIL: %d violation(s): %s\n", len(res.verdict.Violations), res.verdict.summary())
		for i, v := range res.verdict.Violations {
			if i == maxViolationLines {
				fmt.Fprintf(b, "  … and %d more\n", len(res.verdict.Violations)-i)
				break
			}
			fmt.Fprintf(b, "  %s: %s\n", v.Invariant, v.Detail)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
