package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// Targets is bench/targets.json: every performance target the issues set,
// and the image size and runs `make bench-check` measures them with.
type Targets struct {
	SizeMiB int      `json:"size_mib"`
	Runs    int      `json:"runs"`
	Targets []Target `json:"targets"`
}

// Target is one target: the median of a metric of one case (the largest of
// several cases, when Value lists more), optionally divided by another
// case's, compared with a bound.
type Target struct {
	ID    string   `json:"id"`
	Issue int      `json:"issue"`
	Text  string   `json:"text"`
	Value []string `json:"value"`          // case ids; the largest median counts
	Over  string   `json:"over,omitempty"` // a case id: the value is a ratio to it
	// Minus is a case id: the value is the difference from it (an
	// overhead, in seconds).
	Minus string `json:"minus,omitempty"`
	// Metric is "wall" (seconds, the default), "cpu" (client CPU seconds)
	// or "rss" (MiB).
	Metric string `json:"metric,omitempty"`
	// Scale multiplies the value (after over or minus): a per-unit cost
	// (1/499 of the difference that 499 more tags make), or a ratio of
	// rates (seconds per GiB from seconds at two sizes).
	Scale float64  `json:"scale,omitempty"`
	Max   *float64 `json:"max,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	// Pending says which later change the target waits for: it is measured
	// and printed, but a miss does not fail `make bench-check`.
	Pending string `json:"pending,omitempty"`
}

// Verdict is a target judged on one run's results.
type Verdict struct {
	ID       string  `json:"id"`
	Issue    int     `json:"issue"`
	Text     string  `json:"text"`
	Expr     string  `json:"expr"` // what was computed, e.g. "crane ÷ hoist"
	Measured float64 `json:"measured"`
	Bound    string  `json:"bound"` // e.g. "≤ 1.05"
	// Limit is the bound's value; AtLeast says it is a lower bound.
	Limit   float64 `json:"limit"`
	AtLeast bool    `json:"at_least,omitempty"`
	Pass    bool    `json:"pass"`
	Pending string  `json:"pending,omitempty"`
	// Low and High are the spread: the same value computed run by run
	// (run i of each case with run i of the others; the runs of the
	// cases of a scenario are interleaved). Noise says the bound lies
	// inside it: some runs pass and some miss, and the verdict on the
	// medians could flip in the next run.
	// Unmeasured says the results lack a case of this pending target:
	// it is listed, not judged.
	Unmeasured bool    `json:"unmeasured,omitempty"`
	Low        float64 `json:"low,omitempty"`
	High       float64 `json:"high,omitempty"`
	Noise      bool    `json:"noise,omitempty"`
}

func loadTargets(path string) (*Targets, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Targets
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	known := map[string]bool{}
	for _, sc := range catalogue() {
		for _, tl := range sc.tools {
			known[sc.caseID(tl)] = true
		}
	}
	for _, x := range t.Targets {
		for _, id := range t.casesOf(x) {
			if !known[id] {
				return nil, fmt.Errorf("%s: target %q names case %s, which no suite measures", path, x.ID, id)
			}
		}
		if len(x.Value) == 0 || x.Scale < 0 || (x.Max == nil) == (x.Min == nil) || (x.Over != "" && x.Minus != "") || (x.Metric != "" && x.Metric != "wall" && x.Metric != "rss" && x.Metric != "cpu") {
			return nil, fmt.Errorf("%s: target %q needs value, exactly one of max and min, at most one of over and minus, and metric wall, cpu or rss", path, x.ID)
		}
	}
	return &t, nil
}

// cases lists every case id the targets need.
func (t *Targets) cases() []string {
	var ids []string
	for _, x := range t.Targets {
		ids = append(ids, t.casesOf(x)...)
	}
	return ids
}

func (t *Targets) casesOf(x Target) []string {
	ids := slices.Clone(x.Value)
	if x.Over != "" {
		ids = append(ids, x.Over)
	}
	if x.Minus != "" {
		ids = append(ids, x.Minus)
	}
	return ids
}

// judge computes every target on the results at the targets' image size
// (cases of a suite without sizes are found at size 0). A case the results
// lack is an error: a target is never judged on a measurement that did not
// run.
func (t *Targets) judge(r *Results) ([]Verdict, error) {
	find := func(id string) (*CaseResult, error) {
		if c, ok := r.Find(id, t.SizeMiB); ok {
			return c, nil
		}
		if c, ok := r.Find(id, 0); ok {
			return c, nil
		}
		return nil, fmt.Errorf("the results lack case %s at %d MiB", id, t.SizeMiB)
	}
	var out []Verdict
	for _, x := range t.Targets {
		metric := func(m sample) float64 {
			switch x.Metric {
			case "rss":
				return m.RSS
			case "cpu":
				return m.CPU
			}
			return m.Wall
		}
		if x.Pending != "" && !t.measured(x, find) {
			vd := Verdict{ID: x.ID, Issue: x.Issue, Text: x.Text, Pending: x.Pending, Unmeasured: true}
			if x.Max != nil {
				vd.Bound, vd.Limit = fmt.Sprintf("≤ %.2f", *x.Max), *x.Max
			} else {
				vd.Bound, vd.Limit, vd.AtLeast = fmt.Sprintf("≥ %.2f", *x.Min), *x.Min, true
			}
			out = append(out, vd)
			continue
		}
		var vals []*CaseResult
		var names []string
		for _, id := range x.Value {
			c, err := find(id)
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", x.ID, err)
			}
			vals = append(vals, c)
			names = append(names, "`"+id+"`")
		}
		expr := strings.Join(names, ", ")
		if len(names) > 1 {
			expr = "largest of " + expr
		}
		if x.Metric == "rss" {
			expr = "peak RSS MiB, " + expr
		} else if x.Metric == "cpu" {
			expr = "client CPU, " + expr
		} else if x.Over == "" {
			expr = "wall s, " + expr
		}
		var other *CaseResult
		switch {
		case x.Minus != "":
			c, err := find(x.Minus)
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", x.ID, err)
			}
			other = c
			expr += " − `" + x.Minus + "`"
		case x.Over != "":
			c, err := find(x.Over)
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", x.ID, err)
			}
			if metric(c.Median) <= 0 {
				return nil, fmt.Errorf("target %s: case %s measured 0", x.ID, x.Over)
			}
			other = c
			expr += " ÷ `" + x.Over + "`"
		}
		scale := 1.0
		if x.Scale != 0 {
			scale = x.Scale
			expr += fmt.Sprintf(" × %s", scaleText(x.Scale))
		}
		// value computes the target from one sample of each case.
		value := func(pick func(*CaseResult) (sample, bool)) (float64, bool) {
			var v float64
			for _, c := range vals {
				m, ok := pick(c)
				if !ok {
					return 0, false
				}
				v = max(v, metric(m))
			}
			if other != nil {
				m, ok := pick(other)
				if !ok {
					return 0, false
				}
				if x.Minus != "" {
					v -= metric(m)
				} else if metric(m) <= 0 {
					return 0, false
				} else {
					v /= metric(m)
				}
			}
			return v * scale, true
		}
		v, _ := value(func(c *CaseResult) (sample, bool) { return c.Median, true })
		vd := Verdict{ID: x.ID, Issue: x.Issue, Text: x.Text, Expr: expr, Measured: v, Pending: x.Pending}
		pass := func(v float64) bool {
			if x.Max != nil {
				return v <= *x.Max
			}
			return v >= *x.Min
		}
		if x.Max != nil {
			vd.Bound, vd.Limit = fmt.Sprintf("≤ %.2f", *x.Max), *x.Max
		} else {
			vd.Bound, vd.Limit, vd.AtLeast = fmt.Sprintf("≥ %.2f", *x.Min), *x.Min, true
		}
		vd.Pass = pass(v)
		var passed, missed int
		for i := 0; ; i++ {
			rv, ok := value(func(c *CaseResult) (sample, bool) {
				if i < len(c.Runs) {
					return c.Runs[i], true
				}
				return sample{}, false
			})
			if !ok {
				break
			}
			if i == 0 {
				vd.Low, vd.High = rv, rv
			}
			vd.Low, vd.High = min(vd.Low, rv), max(vd.High, rv)
			if pass(rv) {
				passed++
			} else {
				missed++
			}
		}
		vd.Noise = passed > 0 && missed > 0
		out = append(out, vd)
	}
	return out, nil
}

// measured reports whether the results hold every case of x.
func (t *Targets) measured(x Target, find func(string) (*CaseResult, error)) bool {
	for _, id := range t.casesOf(x) {
		if _, err := find(id); err != nil {
			return false
		}
	}
	return true
}

// printVerdicts prints one line per target and reports whether every
// target that is not pending passed.
func printVerdicts(w io.Writer, vs []Verdict) bool {
	ok := true
	for _, v := range vs {
		if v.Unmeasured {
			fmt.Fprintf(w, "NONE  %-20s %7s %-13s target %-7s  %s  [pending: %s; not measured by this run]\n", v.ID, "-", "", v.Bound, v.Text, v.Pending)
			continue
		}
		mark, note := "PASS", ""
		switch {
		case !v.Pass && v.Pending != "":
			mark, note = "MISS", " [pending: "+v.Pending+"]"
		case !v.Pass:
			mark, ok = "FAIL", false
		}
		if v.Noise {
			note += " [inside the noise: some runs pass, some miss]"
		}
		fmt.Fprintf(w, "%s  %-20s %7.2f %-13s target %-7s  %s  (%s)%s\n", mark, v.ID, v.Measured, v.spread(), v.Bound, v.Text, strings.ReplaceAll(v.Expr, "`", ""), note)
	}
	return ok
}

// spread is the run-by-run range of a verdict's value, "" when the runs
// do not give one.
func (v Verdict) spread() string {
	if v.Low == 0 && v.High == 0 {
		return ""
	}
	return fmt.Sprintf("[%.2f–%.2f]", v.Low, v.High)
}

// scaleText writes a scale as the fraction it usually is (1/16), else as
// a number.
func scaleText(f float64) string {
	if f > 0 && f < 1 {
		if n := math.Round(1 / f); math.Abs(1/n-f) < 1e-9 {
			return fmt.Sprintf("1/%g", n)
		}
	}
	return fmt.Sprintf("%g", f)
}
