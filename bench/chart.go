package main

import (
	"fmt"
	"html"
	"math"
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
