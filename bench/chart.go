package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
)

// targetsChart draws every target as a bar: the value over its bound, so
// that 1 is the bound for every target whatever its unit, left of it met
// and right of it missed (a lower bound is turned over: the bound over
// the value). A whisker is the run-by-run spread. An SVG, written by the
// bench program from the results, never by hand.
func targetsChart(title string, all []Verdict) []byte {
	var vs []Verdict
	for _, v := range all {
		if !v.Unmeasured {
			vs = append(vs, v)
		}
	}
	const (
		left, right = 190.0, 250.0 // label columns
		plot        = 420.0        // the plot's width
		row         = 22.0
		top         = 40.0
		maxScale    = 2.0 // values past twice the bound are drawn at its edge
	)
	width := left + plot + right
	height := top + row*float64(len(vs)) + 30
	x := func(f float64) float64 { return left + plot*math.Max(0, math.Min(f, maxScale))/maxScale }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="8" y="18" font-size="14" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%.0f" y="34" fill="#555555">value ÷ bound (1 = the bound; a lower bound turned over); whisker: run by run</text>`+"\n", left)
	for _, tick := range []float64{0, 0.5, 1, 1.5, 2} {
		stroke, w := "#dddddd", 1
		if tick == 1 {
			stroke, w = "#333333", 2
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="%s" stroke-width="%d"/>`+"\n", x(tick), top-4, x(tick), height-26, stroke, w)
		label := fmt.Sprintf("%g", tick)
		if tick == maxScale {
			label += "+"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555555">%s</text>`+"\n", x(tick), height-12, label)
	}
	for i, v := range vs {
		y := top + row*float64(i)
		f, lo, hi := v.share(v.Measured), v.share(v.Low), v.share(v.High)
		if lo > hi {
			lo, hi = hi, lo
		}
		color := "#2e7d32" // met
		switch {
		case !v.Pass && v.Pending != "":
			color = "#9e9e9e"
		case !v.Pass:
			color = "#c62828"
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-8, y+row/2+4, html.EscapeString(v.ID))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.85"><title>%s</title></rect>`+"\n",
			left, y+4, x(f)-left, row-8, color, html.EscapeString(v.Text))
		if v.Low != 0 || v.High != 0 {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000000" stroke-width="1.5"/>`+"\n", x(lo), y+row/2, x(hi), y+row/2)
		}
		verdict := "met"
		switch {
		case !v.Pass && v.Pending != "":
			verdict = "missed (pending)"
		case !v.Pass:
			verdict = "missed"
		}
		if v.Noise {
			verdict += ", in the noise"
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f">%.2f (%s) %s</text>`+"\n", left+plot+8, y+row/2+4, v.Measured, html.EscapeString(v.Bound), verdict)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// share is a value of the verdict over its bound: 1 at the bound, under 1
// on the side that meets it.
func (v Verdict) share(val float64) float64 {
	switch {
	case v.AtLeast && val <= 0:
		return math.Inf(1)
	case v.AtLeast:
		return v.Limit / val
	case v.Limit <= 0:
		return 0
	}
	return val / v.Limit
}

// curve is one line of a line chart: its points, in order of x.
type curve struct {
	name, color string
	dashed      bool
	pts         [][2]float64
}

// lineChart draws curves over a log2 x axis (the growth suite's sizes,
// registries and tags double), y from 0: an SVG, written by the bench
// program from the results.
func lineChart(title, xlabel, ylabel string, curves []curve) []byte {
	const (
		left, right, top, bottom = 60.0, 200.0, 40.0, 46.0
		plotW, plotH             = 460.0, 220.0
	)
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	for _, c := range curves {
		for _, p := range c.pts {
			xmin, xmax, ymax = math.Min(xmin, p[0]), math.Max(xmax, p[0]), math.Max(ymax, p[1])
		}
	}
	if xmin >= xmax {
		xmin, xmax = xmin/2, xmax*2
	}
	if xmin <= 0 || math.IsInf(xmin, 0) {
		xmin, xmax = 1, 2
	}
	step := niceStep(ymax / 4)
	ymax = step * math.Ceil(ymax/step)
	if ymax <= 0 {
		ymax, step = 1, 0.25
	}
	x := func(v float64) float64 {
		return left + plotW*(math.Log2(v)-math.Log2(xmin))/(math.Log2(xmax)-math.Log2(xmin))
	}
	y := func(v float64) float64 { return top + plotH*(1-v/ymax) }
	width, height := left+plotW+right, top+plotH+bottom
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="8" y="18" font-size="14" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	for v := 0.0; v <= ymax+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#dddddd"/>`+"\n", left, y(v), left+plotW, y(v))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end" fill="#555555">%s</text>`+"\n", left-6, y(v)+4, strconv.FormatFloat(v, 'g', 4, 64))
	}
	var ticks []float64
	for _, c := range curves {
		for _, p := range c.pts {
			if !slices.Contains(ticks, p[0]) {
				ticks = append(ticks, p[0])
			}
		}
	}
	for _, v := range ticks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#eeeeee"/>`+"\n", x(v), top, x(v), top+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555555">%g</text>`+"\n", x(v), top+plotH+16, v)
	}
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#333333"/>`+"\n", left, top+plotH, left+plotW, top+plotH)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#333333">%s</text>`+"\n", left+plotW/2, height-8, html.EscapeString(xlabel))
	fmt.Fprintf(&b, `<text x="14" y="%.0f" text-anchor="middle" fill="#333333" transform="rotate(-90 14 %.0f)">%s</text>`+"\n", top+plotH/2, top+plotH/2, html.EscapeString(ylabel))
	for i, c := range curves {
		var pts []string
		for _, p := range c.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		dash := ""
		if c.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), c.color, dash)
		for _, p := range c.pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %g → %.3g</title></circle>`+"\n", x(p[0]), y(p[1]), c.color, html.EscapeString(c.name), p[0], p[1])
		}
		ly := top + 10 + 18*float64(i)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"%s/>`+"\n", left+plotW+12, ly, left+plotW+32, ly, c.color, dash)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", left+plotW+38, ly+4, html.EscapeString(c.name))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// niceStep rounds a grid step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}
