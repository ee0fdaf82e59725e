package main

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// The charts are inline SVG drawn here from numbers only: no scripts, no
// fonts or styles from elsewhere. Every chart has the same size in SVG
// units and is scaled to the page's width by CSS, so its text stays
// readable on a phone.
const (
	chartW, chartH                       = 480, 300
	padLeft, padRight, padTop, padBottom = 72, 26, 26, 52
	plotW, plotH                         = chartW - padLeft - padRight, chartH - padTop - padBottom
	tickFont, labelFont, tagFont         = 17, 16, 15
)

// pt is one point of a line; a NaN Y breaks the line (a figure not read).
type pt struct{ X, Y float64 }

// plotLine is one series of a chart.
type plotLine struct {
	Name  string
	Color string
	Dash  bool
	Pts   []pt
}

// guide is a dashed line across the plot with a short tag: vertical at X
// (Vertical) or horizontal at Y.
type guide struct {
	Vertical bool
	At       float64
	Tag      string
}

// chart is one plot: lines, or dots, on linear axes from 0.
type chart struct {
	Label          string // what the chart shows, for screen readers
	XLabel, YLabel string
	Lines          []plotLine
	Dots           []pt
	DotColor       string
	Guides         []guide
	// XMax and YMax fix the axes' ends (rounded up to a tick); 0 fits
	// them to the data.
	XMax, YMax float64
	// YPercent labels the y axis 0–100% for values 0–1.
	YPercent bool
	// Marks are points called out on a line (a CDF's percentiles): a
	// dashed guide from each axis to the point, tagged on the left.
	Marks []mark
}

type mark struct {
	X, Y float64
	Tag  string
}

// niceScale returns the end of an axis holding values up to v and its tick
// step: 1, 2, 2.5 or 5 times a power of ten, at most five steps, the end
// less than one step past v (so the plot is not half empty).
func niceScale(v float64) (end, step float64) {
	if !(v > 0) || math.IsInf(v, 0) {
		return 1, 0.2
	}
	raw := v / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw*(1-1e-9) {
			step = m * mag
			break
		}
	}
	n := math.Ceil(v/step - 1e-9)
	return n * step, step
}

// svg draws the chart.
func (c chart) svg() template.HTML {
	maxX, maxY := c.XMax, c.YMax
	for _, l := range c.Lines {
		for _, p := range l.Pts {
			if !math.IsNaN(p.Y) {
				maxX, maxY = math.Max(maxX, p.X), math.Max(maxY, p.Y)
			}
		}
	}
	for _, p := range c.Dots {
		maxX, maxY = math.Max(maxX, p.X), math.Max(maxY, p.Y)
	}
	for _, g := range c.Guides {
		if g.Vertical {
			maxX = math.Max(maxX, g.At)
		} else {
			maxY = math.Max(maxY, g.At)
		}
	}
	endX, stepX := niceScale(maxX)
	endY, stepY := niceScale(maxY)
	if c.YPercent {
		endY, stepY = 1, 0.25
	}
	x := func(v float64) float64 { return padLeft + v/endX*plotW }
	y := func(v float64) float64 { return padTop + plotH - v/endY*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s" font-family="system-ui,sans-serif">`,
		chartW, chartH, template.HTMLEscapeString(c.Label))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#fff" stroke="#999"/>`, padLeft, padTop, plotW, plotH)
	for i := range int(math.Round(endX/stepX)) + 1 {
		v := float64(i) * stepX
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`, x(v), padTop, x(v), padTop+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="%d" text-anchor="middle">%s</text>`, x(v), padTop+plotH+20, tickFont, tickText(v))
	}
	for i := range int(math.Round(endY/stepY)) + 1 {
		v := float64(i) * stepY
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`, padLeft, y(v), padLeft+plotW, y(v))
		tick := tickText(v)
		if c.YPercent {
			tick = trimFloat(v*100) + "%"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="%d" text-anchor="end">%s</text>`, padLeft-5, y(v)+6, tickFont, tick)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="%d" text-anchor="middle">%s</text>`,
		padLeft+plotW/2, chartH-8, labelFont, template.HTMLEscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text x="14" y="%d" font-size="%d" text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>`,
		padTop+plotH/2, labelFont, padTop+plotH/2, template.HTMLEscapeString(c.YLabel))
	for _, g := range c.Guides {
		if g.Vertical {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#666" stroke-dasharray="5 4"/>`, x(g.At), padTop, x(g.At), padTop+plotH)
			anchor := "middle"
			switch f := g.At / endX; {
			case f > 0.8:
				anchor = "end"
			case f < 0.2:
				anchor = "start"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="%d" text-anchor="%s" fill="#444">%s</text>`, x(g.At), padTop-7, tagFont, anchor, template.HTMLEscapeString(g.Tag))
		} else {
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#666" stroke-dasharray="5 4"/>`, padLeft, y(g.At), padLeft+plotW, y(g.At))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="%d" text-anchor="end" fill="#444">%s</text>`, padLeft+plotW-4, y(g.At)-4, tagFont, template.HTMLEscapeString(g.Tag))
		}
	}
	for _, m := range c.Marks {
		fmt.Fprintf(&b, `<path d="M%d %.1fH%.1fV%d" fill="none" stroke="#888" stroke-dasharray="3 3"/>`, padLeft, y(m.Y), x(m.X), padTop+plotH)
	}
	for _, l := range c.Lines {
		dash := ""
		if l.Dash {
			dash = ` stroke-dasharray="6 4"`
		}
		for _, run := range splitNaN(l.Pts) {
			if len(run) == 1 {
				// A lone point: a short stroke, so it shows.
				p := run[0]
				fmt.Fprintf(&b, `<path d="M%.1f %.1fh1.5" stroke="%s" stroke-width="3"/>`, x(p.X), y(p.Y), l.Color)
				continue
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round"%s points="`, l.Color, dash)
			for i, p := range run {
				if i > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%.1f,%.1f", x(p.X), y(p.Y))
			}
			b.WriteString(`"/>`)
		}
	}
	for _, p := range c.Dots {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2" fill="%s" fill-opacity="0.6"/>`, x(p.X), y(p.Y), c.DotColor)
	}
	for _, m := range c.Marks { // tags over the lines, on a white halo
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="%d" fill="#333" stroke="#fff" stroke-width="3" paint-order="stroke">%s</text>`, padLeft+4, y(m.Y)-4, tagFont, template.HTMLEscapeString(m.Tag))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built here from numbers and escaped text only
}

// splitNaN cuts a line where Y is NaN.
func splitNaN(pts []pt) [][]pt {
	var out [][]pt
	var cur []pt
	for _, p := range pts {
		if math.IsNaN(p.Y) {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, p)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// tickText is an axis value, thousands as k from 10,000 on, so that the
// labels stay short.
func tickText(v float64) string {
	if math.Abs(v) >= 10000 {
		return trimFloat(v/1000) + "k"
	}
	return trimFloat(v)
}

func trimFloat(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}
