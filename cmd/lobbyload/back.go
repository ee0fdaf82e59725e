package main

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// backReport is how the players whose socket was lost (a node killed or
// stopped, a reset) came back: for each lost socket, the time from its
// loss, as the player's reader saw it, to the player's next welcome, on
// whichever URL gave it and after however many attempts; when the first
// socket was lost and the last player was back; the reconnections per
// second at each URL; and the players who never came back. A drop of
// -reconnect-share is not a loss (the player closed its socket itself).
type backReport struct {
	// Reconnections counts the welcomes after a lost socket.
	Reconnections int `json:"reconnections"`
	// NeverBack counts the players whose socket was lost and who got no
	// welcome after it by the end of the run: any fails the run.
	NeverBack int `json:"neverBack"`
	// LossToWelcome is the time from a socket's loss to the next welcome.
	LossToWelcome percentiles `json:"lossToWelcomeMs"`
	// FirstLossSec is when the first socket was lost and LastWelcomeSec
	// when the last welcome after a loss came, in seconds since the start
	// of the run; AllBackSec is the span between them: with one node
	// killed, from its death to the moment every one of its players was
	// back (with several losses apart in time, it spans them all).
	FirstLossSec   float64 `json:"firstLossSeconds"`
	LastWelcomeSec float64 `json:"lastWelcomeSeconds"`
	AllBackSec     float64 `json:"allBackSeconds"`
	// Last is the reconnection whose welcome came last.
	Last *backPlayer `json:"last,omitempty"`
	// FromSec is the second of the run the per-second counts of URLs
	// start at: that of the first loss, rounded down.
	FromSec int `json:"fromSecond"`
	// URLs are the same figures by the URL that gave the welcome, in the
	// order of -url (a URL nobody came back to has zeros).
	URLs []urlBack `json:"urls"`
}

// backPlayer is one player's way back.
type backPlayer struct {
	Player string `json:"player"`
	URL    string `json:"url"`
	// LostSec and WelcomeSec are seconds since the start of the run; Ms
	// is the time between them.
	LostSec    float64 `json:"lostSeconds"`
	WelcomeSec float64 `json:"welcomeSeconds"`
	Ms         float64 `json:"ms"`
}

// urlBack is the way back of the players who came back to one URL.
type urlBack struct {
	URL           string      `json:"url"`
	Reconnections int         `json:"reconnections"`
	LossToWelcome percentiles `json:"lossToWelcomeMs"`
	Last          *backPlayer `json:"last,omitempty"`
	// PerSecond counts the welcomes after a lost socket in each second of
	// the run from the report's FromSec: element i is second FromSec+i.
	PerSecond []int `json:"perSecond"`
	// PeakPerSec is the largest of PerSecond; MeanPerSec is
	// Reconnections over the span from the first loss (at any URL) to the
	// last welcome at this URL.
	PeakPerSec int     `json:"peakPerSecond"`
	MeanPerSec float64 `json:"meanPerSecond"`
}

// newBackReport sums the reconnections up, by URL of urls, with times
// counted from start; nil when no socket was lost.
func newBackReport(backs []reconnection, neverBack int, urls []string, start time.Time) *backReport {
	if len(backs) == 0 && neverBack == 0 {
		return nil
	}
	sec := func(t time.Time) float64 { return t.Sub(start).Seconds() }
	r := &backReport{Reconnections: len(backs), NeverBack: neverBack, URLs: make([]urlBack, len(urls))}
	for u := range urls {
		r.URLs[u].URL = urls[u]
	}
	if len(backs) == 0 {
		return r
	}
	backs = slices.Clone(backs)
	slices.SortFunc(backs, func(a, b reconnection) int { return a.Back.Compare(b.Back) })
	firstLoss := backs[0].Lost
	for _, b := range backs {
		if b.Lost.Before(firstLoss) {
			firstLoss = b.Lost
		}
	}
	last := backs[len(backs)-1]
	r.FirstLossSec, r.LastWelcomeSec = sec(firstLoss), sec(last.Back)
	r.AllBackSec = last.Back.Sub(firstLoss).Seconds()
	r.FromSec = int(math.Floor(r.FirstLossSec))
	bins := int(math.Floor(r.LastWelcomeSec)) - r.FromSec + 1
	player := func(b reconnection) *backPlayer {
		url := ""
		if b.URL >= 0 && b.URL < len(urls) {
			url = urls[b.URL]
		}
		return &backPlayer{Player: b.Player, URL: url, LostSec: sec(b.Lost), WelcomeSec: sec(b.Back), Ms: ms(b.Back.Sub(b.Lost))}
	}
	r.Last = player(last)
	all := make([]time.Duration, 0, len(backs))
	byURL := make([][]time.Duration, len(urls))
	for u := range r.URLs {
		r.URLs[u].PerSecond = make([]int, bins)
	}
	for _, b := range backs {
		d := b.Back.Sub(b.Lost)
		all = append(all, d)
		if b.URL < 0 || b.URL >= len(urls) {
			continue
		}
		ub := &r.URLs[b.URL]
		byURL[b.URL] = append(byURL[b.URL], d)
		ub.Reconnections++
		ub.Last = player(b) // backs are in welcome order: the last one stays
		if i := int(math.Floor(sec(b.Back))) - r.FromSec; i >= 0 && i < bins {
			ub.PerSecond[i]++
		}
	}
	r.LossToWelcome = newPercentiles(all)
	for u := range r.URLs {
		ub := &r.URLs[u]
		ub.LossToWelcome = newPercentiles(byURL[u])
		ub.PeakPerSec = slices.Max(ub.PerSecond)
		if ub.Last != nil {
			if span := ub.Last.WelcomeSec - r.FirstLossSec; span > 0 {
				ub.MeanPerSec = math.Round(float64(ub.Reconnections)/span*10) / 10
			}
		}
	}
	return r
}

// maxTextSeconds bounds the per-second counts the text report lists.
const maxTextSeconds = 60

// writeText writes the report's lines of the text report.
func (b *backReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "\nback after a lost socket\t%d reconnection(s) got welcome; %d player(s) never came back\n", b.Reconnections, b.NeverBack)
	if b.Reconnections == 0 {
		return
	}
	fmt.Fprintf(w, "all back\t%.2f s after the first loss\t(first loss at %.2f s, last welcome at %.2f s since the start)\n", b.AllBackSec, b.FirstLossSec, b.LastWelcomeSec)
	if l := b.Last; l != nil {
		fmt.Fprintf(w, "last back\t%s on %s, %.0f ms after its loss\n", l.Player, l.URL, l.Ms)
	}
	fmt.Fprintf(w, "\nloss→welcome (ms)\tcount\tp50\tp90\tp99\tmax\tlast\n")
	row := func(name string, n int, p percentiles, last *backPlayer) {
		lastMs := "-"
		if last != nil {
			lastMs = fmt.Sprintf("%.1f", last.Ms)
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%s\n", name, n, p.P50, p.P90, p.P99, p.Max, lastMs)
	}
	row("all", b.Reconnections, b.LossToWelcome, b.Last)
	for _, u := range b.URLs {
		row(u.URL, u.Reconnections, u.LossToWelcome, u.Last)
	}
	fmt.Fprintf(w, "\nreconnections/s\tpeak\tmean\tper second from %d s\n", b.FromSec)
	for _, u := range b.URLs {
		counts := u.PerSecond
		more := ""
		if len(counts) > maxTextSeconds {
			counts, more = counts[:maxTextSeconds], fmt.Sprintf(" … (%d s more in the JSON report)", len(u.PerSecond)-maxTextSeconds)
		}
		strs := make([]string, len(counts))
		for i, c := range counts {
			strs[i] = fmt.Sprint(c)
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%s%s\n", u.URL, u.PeakPerSec, u.MeanPerSec, strings.Join(strs, " "), more)
	}
}

// summaryRows are the report's rows of the HTML summary.
func (b *backReport) summaryRows() []row {
	rows := []row{{"back after a lost socket", fmt.Sprintf("%s reconnection(s) got welcome; %s player(s) never came back",
		fmtInt(b.Reconnections), fmtInt(b.NeverBack))}}
	if b.Reconnections > 0 {
		rows = append(rows, row{"all back", fmt.Sprintf("%.2f s after the first loss (first loss at %.2f s, last welcome at %.2f s since the start)",
			b.AllBackSec, b.FirstLossSec, b.LastWelcomeSec)})
		if l := b.Last; l != nil {
			rows = append(rows, row{"last back", fmt.Sprintf("%s on %s, %s ms after its loss", l.Player, l.URL, fmtMs(l.Ms))})
		}
		p := b.LossToWelcome
		rows = append(rows, row{"lost socket→welcome", fmt.Sprintf("p50 %s ms, p90 %s ms, p99 %s ms, max %s ms", fmtMs(p.P50), fmtMs(p.P90), fmtMs(p.P99), fmtMs(p.Max))})
	}
	return rows
}

// lineColors are the colours of the lines of a chart with one per URL.
var lineColors = []string{colBlue, colOrange, colGreen, colPurple, colGrey}

// figure is the chart of the reconnections per second at each URL; nil
// without any.
func (b *backReport) figure() *figure {
	if b.Reconnections == 0 {
		return nil
	}
	var lines []plotLine
	for u, ub := range b.URLs {
		var pts []pt
		for i, c := range ub.PerSecond {
			x := float64(b.FromSec + i)
			pts = append(pts, pt{x, float64(c)}, pt{x + 1, float64(c)})
		}
		lines = append(lines, plotLine{Name: fmt.Sprintf("%s: peak %s/s, mean %s/s", ub.URL, fmtInt(ub.PeakPerSec), fmtNum(ub.MeanPerSec)),
			Color: lineColors[u%len(lineColors)], Dash: u >= len(lineColors), Pts: pts})
	}
	guides := []guide{{Vertical: true, At: b.FirstLossSec, Tag: "first loss"}}
	return &figure{
		Title:  "Reconnections per second, by URL",
		SVG:    chart{Label: "reconnections per second by URL", XLabel: "seconds since start", YLabel: "welcomes/s", Lines: lines, Guides: guides}.svg(),
		Legend: legendOf(lines),
		Caption: template.HTML(fmt.Sprintf(`Players whose socket was lost, by the URL whose <code>welcome</code> brought them back, in each second of the run (the node that took the storm). `+
			`The last of the %s reconnection(s) got <code>welcome</code> %.2f s after the first loss; from loss to <code>welcome</code> p50 %s ms, p99 %s ms, max %s ms. `+
			`%s player(s) lost their socket and never got <code>welcome</code> again.`,
			fmtInt(b.Reconnections), b.AllBackSec, fmtMs(b.LossToWelcome.P50), fmtMs(b.LossToWelcome.P99), fmtMs(b.LossToWelcome.Max), fmtInt(b.NeverBack))),
	}
}
