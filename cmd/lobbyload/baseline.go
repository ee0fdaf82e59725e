package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// comparison is this run next to -baseline's: the headline figures of
// both and their difference.
type comparison struct {
	File      string    `json:"file"`
	Label     string    `json:"label,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	Scenario  string    `json:"scenario"`
	// SameScenario says both runs had the same players, rate, shares and
	// phases: otherwise their figures are not comparable.
	SameScenario bool            `json:"sameScenario"`
	Rows         []comparisonRow `json:"rows"`
}

type comparisonRow struct {
	Metric   string  `json:"metric"`
	Unit     string  `json:"unit"`
	Baseline float64 `json:"baseline"`
	Run      float64 `json:"run"`
	// Diff is Run - Baseline; DiffPct the same in percent of Baseline
	// (absent when Baseline is 0).
	Diff    float64  `json:"difference"`
	DiffPct *float64 `json:"differencePercent,omitempty"`
	// Better is 1 when the run is better than the baseline by more than
	// 1%, -1 when it is worse by more than 1%, and 0 otherwise or for a
	// figure that is neither better high nor low.
	Better int `json:"better"`
}

// readBaseline reads a report written by -json (or -json-file).
func readBaseline(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: not a lobbyload -json report: %w", path, err)
	}
	if r.Players == 0 || r.StartedAt.IsZero() {
		return nil, fmt.Errorf("%s: not a lobbyload -json report (no players, no startedAt)", path)
	}
	return &r, nil
}

// Directions of a figure.
const (
	higherBetter = 1
	neutral      = 0
	lowerBetter  = -1
)

// compare sets r.VsBaseline from base.
func (r *report) compare(base *report, file string) {
	r.baseline = base
	c := &comparison{File: file, Label: base.Label, StartedAt: base.StartedAt, Scenario: base.Scenario,
		SameScenario: base.Scenario == r.Scenario}
	add := func(metric, unit string, b, v float64, dir int) {
		row := comparisonRow{Metric: metric, Unit: unit, Baseline: b, Run: v, Diff: v - b}
		if b != 0 {
			pct := (v - b) / math.Abs(b) * 100
			row.DiffPct = &pct
			if math.Abs(pct) > 1 {
				row.Better = dir
				if pct < 0 {
					row.Better = -dir
				}
			}
		}
		c.Rows = append(c.Rows, row)
	}
	add("players matched", "", float64(base.Matched), float64(r.Matched), neutral)
	if !r.ConnectOnly && !base.ConnectOnly {
		add("throughput", "players/s", base.ThroughputPerSec, r.ThroughputPerSec, higherBetter)
	}
	if base.CPU != nil && r.CPU != nil {
		add("lobbyd CPU per matched player", "µs", base.CPU.ServerUsPerPlayer, r.CPU.ServerUsPerPlayer, lowerBetter)
		if base.CPU.RedisUsPerPlayer != nil && r.CPU.RedisUsPerPlayer != nil {
			add("Redis CPU per matched player", "µs", *base.CPU.RedisUsPerPlayer, *r.CPU.RedisUsPerPlayer, lowerBetter)
		}
	}
	if b, ok := base.peakRSS(); ok {
		if v, ok := r.peakRSS(); ok {
			add("lobbyd peak RSS", "MiB", b/(1<<20), v/(1<<20), lowerBetter)
		}
	}
	latency := func(name string, b, v percentiles) {
		if b.Count == 0 || v.Count == 0 {
			return
		}
		add(name+" p50", "ms", b.P50, v.P50, lowerBetter)
		add(name+" p90", "ms", b.P90, v.P90, lowerBetter)
		add(name+" p99", "ms", b.P99, v.P99, lowerBetter)
		add(name+" max", "ms", b.Max, v.Max, lowerBetter)
	}
	latency("queue.join→match.ready", base.Latency.JoinToReady, r.Latency.JoinToReady)
	latency("queue.join→reply", base.Latency.JoinReply, r.Latency.JoinReply)
	latency("connect", base.Latency.Connect, r.Latency.Connect)
	r.VsBaseline = c
}

// peakRSS is lobbyd's highest resident memory in the series, in bytes.
func (r *report) peakRSS() (float64, bool) {
	peak, ok := 0.0, false
	for _, s := range r.Series.Samples {
		if s.ServerRSS != nil {
			peak, ok = max(peak, *s.ServerRSS), true
		}
	}
	return peak, ok
}

// writeComparison prints the comparison as text.
func (c *comparison) writeText(w io.Writer) {
	name := c.File
	if c.Label != "" {
		name += " (" + c.Label + ")"
	}
	fmt.Fprintf(w, "\nvs baseline %s, started %s:\n", name, c.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	if !c.SameScenario {
		fmt.Fprintf(w, "  (a different scenario: %s)\n", c.Scenario)
	}
	for _, row := range c.Rows {
		fmt.Fprintf(w, "  %s\t%s → %s %s\t%s\n", row.Metric, fmtNum(row.Baseline), fmtNum(row.Run), row.Unit, row.DiffText())
	}
}

// DiffText is the difference as "+12.3 (+4.5%)".
func (row comparisonRow) DiffText() string {
	s := fmtNum(row.Diff)
	switch {
	case row.Diff == 0:
		s = "±0"
	case row.Diff > 0:
		s = "+" + s
	}
	if row.DiffPct != nil {
		s += fmt.Sprintf(" (%+.1f%%)", *row.DiffPct)
	}
	return s
}

// fmtNum prints a figure with at most one decimal, or as an integer.
func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
