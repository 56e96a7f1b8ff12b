package main

import (
	"encoding/json"
	"fmt"
	"io"
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
	Metric string   `json:"metric,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	Min    *float64 `json:"min,omitempty"`
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
	Pass     bool    `json:"pass"`
	Pending  string  `json:"pending,omitempty"`
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
		if len(x.Value) == 0 || (x.Max == nil) == (x.Min == nil) || (x.Over != "" && x.Minus != "") || (x.Metric != "" && x.Metric != "wall" && x.Metric != "rss" && x.Metric != "cpu") {
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
		metric := func(c *CaseResult) float64 {
			switch x.Metric {
			case "rss":
				return c.Median.RSS
			case "cpu":
				return c.Median.CPU
			}
			return c.Median.Wall
		}
		var v float64
		var names []string
		for _, id := range x.Value {
			c, err := find(id)
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", x.ID, err)
			}
			v = max(v, metric(c))
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
		if x.Minus != "" {
			c, err := find(x.Minus)
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", x.ID, err)
			}
			v -= metric(c)
			expr += " − `" + x.Minus + "`"
		}
		if x.Over != "" {
			c, err := find(x.Over)
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", x.ID, err)
			}
			if metric(c) <= 0 {
				return nil, fmt.Errorf("target %s: case %s measured 0", x.ID, x.Over)
			}
			v /= metric(c)
			expr += " ÷ `" + x.Over + "`"
		}
		vd := Verdict{ID: x.ID, Issue: x.Issue, Text: x.Text, Expr: expr, Measured: v, Pending: x.Pending}
		if x.Max != nil {
			vd.Bound, vd.Pass = fmt.Sprintf("≤ %.2f", *x.Max), v <= *x.Max
		} else {
			vd.Bound, vd.Pass = fmt.Sprintf("≥ %.2f", *x.Min), v >= *x.Min
		}
		out = append(out, vd)
	}
	return out, nil
}

// printVerdicts prints one line per target and reports whether every
// target that is not pending passed.
func printVerdicts(w io.Writer, vs []Verdict) bool {
	ok := true
	for _, v := range vs {
		mark, note := "PASS", ""
		switch {
		case !v.Pass && v.Pending != "":
			mark, note = "MISS", " [pending: "+v.Pending+"]"
		case !v.Pass:
			mark, ok = "FAIL", false
		}
		fmt.Fprintf(w, "%s  %-20s %7.2f  target %-7s  %s  (%s)%s\n", mark, v.ID, v.Measured, v.Bound, v.Text, strings.ReplaceAll(v.Expr, "`", ""), note)
	}
	return ok
}
