package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCaseIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, sc := range catalogue() {
		for _, tl := range sc.tools {
			id := sc.caseID(tl)
			if seen[id] {
				t.Errorf("case %s is defined twice", id)
			}
			seen[id] = true
			if tl.run == nil {
				t.Errorf("case %s has nothing to run", id)
			}
		}
	}
	if len(seen) < 20 {
		t.Fatalf("the catalogue lists %d cases; the suites define more", len(seen))
	}
}

// Every target of the repository's file names cases a suite measures, and
// has a bound.
func TestTargetsFile(t *testing.T) {
	tg, err := loadTargets("targets.json")
	if err != nil {
		t.Fatal(err)
	}
	if tg.SizeMiB <= 0 || tg.Runs < 1 || len(tg.Targets) < 10 {
		t.Fatalf("targets.json: size %d MiB, %d runs, %d targets", tg.SizeMiB, tg.Runs, len(tg.Targets))
	}
	ids := map[string]bool{}
	for _, x := range tg.Targets {
		if ids[x.ID] {
			t.Errorf("target %s is defined twice", x.ID)
		}
		ids[x.ID] = true
	}
}

func TestTargetsFileRejectsUnknownCases(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.json")
	os.WriteFile(p, []byte(`{"size_mib": 1, "runs": 1, "targets": [{"id": "x", "value": ["push/nope/hoist"], "max": 1}]}`), 0o644)
	_, err := loadTargets(p)
	if err == nil || !strings.Contains(err.Error(), "push/nope/hoist") {
		t.Fatalf("loadTargets = %v, want an error naming the unknown case", err)
	}
}

func results(cases map[string]sample) *Results {
	r := &Results{}
	for id, s := range cases {
		size := 512
		if strings.HasPrefix(id, "cache/") {
			size = 0
		}
		r.Cases = append(r.Cases, CaseResult{ID: id, SizeMiB: size, Tool: id[strings.LastIndex(id, "/")+1:], Median: s})
	}
	return r
}

func TestJudge(t *testing.T) {
	one, two := 1.0, 2.0
	tg := &Targets{SizeMiB: 512, Targets: []Target{
		{ID: "slower", Value: []string{"push/gzip-1reg/hoist"}, Over: "push/gzip-1reg/crane", Max: &one},
		{ID: "faster", Value: []string{"push/save-1reg/crane"}, Over: "push/save-1reg/hoist", Min: &two},
		{ID: "rss", Value: []string{"push/gzip-1reg/hoist", "push/save-1reg/hoist"}, Metric: "rss", Max: &two},
		{ID: "sizeless", Value: []string{"cache/rebuild/hoist-cached"}, Over: "cache/rebuild/hoist-cold", Max: &one},
		{ID: "later", Value: []string{"push/gzip-1reg/hoist"}, Over: "push/gzip-1reg/crane", Max: &one, Pending: "issue 99"},
		{ID: "scaled", Value: []string{"push/save-1reg/crane"}, Minus: "push/save-1reg/hoist", Scale: 1.0 / 3, Max: &one},
	}}
	r := results(map[string]sample{
		"push/gzip-1reg/hoist":       {Wall: 1.1, RSS: 1},
		"push/gzip-1reg/crane":       {Wall: 1.0},
		"push/save-1reg/hoist":       {Wall: 1.0, RSS: 3},
		"push/save-1reg/crane":       {Wall: 2.5},
		"cache/rebuild/hoist-cached": {Wall: 1},
		"cache/rebuild/hoist-cold":   {Wall: 10},
	})
	vs, err := tg.judge(r)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.ID+" "+v.Bound+" "+map[bool]string{true: "pass", false: "fail"}[v.Pass])
	}
	want := []string{"slower ≤ 1.00 fail", "faster ≥ 2.00 pass", "rss ≤ 2.00 fail", "sizeless ≤ 1.00 pass", "later ≤ 1.00 fail", "scaled ≤ 1.00 pass"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("verdicts (-want +got):\n%s", d)
	}
	if vs[0].Measured < 1.09 || vs[0].Measured > 1.11 || vs[1].Measured != 2.5 || vs[2].Measured != 3 || math.Abs(vs[5].Measured-0.5) > 1e-9 || !strings.HasSuffix(vs[5].Expr, " × 1/3") {
		t.Errorf("measured values: %+v", vs)
	}
	var buf bytes.Buffer
	if printVerdicts(&buf, vs) {
		t.Error("printVerdicts reports all passed")
	}
	for _, w := range []string{"FAIL  slower", "PASS  faster", "MISS  later", "[pending: issue 99]"} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("printed verdicts lack %q:\n%s", w, buf.String())
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != 6 {
		t.Errorf("printed %d lines for 6 targets:\n%s", n, buf.String())
	}
	// A pending target's miss alone does not fail the check.
	buf.Reset()
	if !printVerdicts(&buf, vs[3:]) {
		t.Errorf("a pending miss failed the check:\n%s", buf.String())
	}

	// A case that was not measured is never judged.
	r.Cases = r.Cases[1:]
	if _, err := tg.judge(r); err == nil || !strings.Contains(err.Error(), "lack") {
		t.Errorf("judge with a case missing = %v, want an error", err)
	}
}

func TestMedian(t *testing.T) {
	got := median([]sample{{Wall: 3, CPU: 1, Extra: map[string]float64{"x": 5}}, {Wall: 1, CPU: 9}, {Wall: 2, CPU: 4, Extra: map[string]float64{"x": 7}}})
	want := sample{Wall: 2, CPU: 4, Extra: map[string]float64{"x": 7}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("median (-want +got):\n%s", d)
	}
}

// A failing command stops the scenario with the case, the command and its
// output, and nothing of the scenario is recorded; so does a run that
// ends without error but did not do its job.
func TestFailedMeasurementRecordsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		tl   tool
		want []string
	}{
		{"command fails", tool{id: "bad", title: "bad", run: func(m *meas) error {
			return m.exec("sh", "-c", "echo the-tool-said-this >&2; exit 3")
		}}, []string{"case test/s/bad", "run 1 of 2", "command failed: sh -c 'echo the-tool-said-this >&2; exit 3'", "exit status 3", "the-tool-said-this"}},
		{"verify fails", tool{id: "lazy", title: "lazy", run: func(m *meas) error { return m.exec("true") },
			verify: func(*meas) error { return errors.New("no tarball") }}, []string{"case test/s/lazy", "did not do its job: no tarball", "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &bench{dir: t.TempDir(), runs: 2, want: func(string) bool { return true }, res: &Results{}}
			good := tool{id: "good", title: "good", run: func(m *meas) error { return m.exec("true") }}
			err := b.measure(scenario{suite: "test", id: "s", title: "test", tools: []tool{good, tc.tl}})
			if err == nil {
				t.Fatal("measure succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if len(b.res.Cases) != 0 {
				t.Errorf("recorded %d case(s) of a failed scenario", len(b.res.Cases))
			}
		})
	}
}

func TestMeasureRecordsEveryRun(t *testing.T) {
	b := &bench{dir: t.TempDir(), runs: 3, want: func(id string) bool { return id != "test/s/skipped" }, res: &Results{}}
	var order []string
	mk := func(id string) tool {
		return tool{id: id, title: id, run: func(m *meas) error {
			order = append(order, id)
			return m.exec("true")
		}}
	}
	if err := b.measure(scenario{suite: "test", id: "s", title: "test", size: 7, tools: []tool{mk("a"), mk("b"), mk("skipped")}}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"a", "b", "b", "a", "a", "b"}, order); d != "" {
		t.Errorf("order of the runs, rotated (-want +got):\n%s", d)
	}
	if len(b.res.Cases) != 2 {
		t.Fatalf("recorded %d cases, want 2", len(b.res.Cases))
	}
	for _, c := range b.res.Cases {
		if len(c.Runs) != 3 || c.SizeMiB != 7 || c.Command != "true" || c.Median.Wall <= 0 {
			t.Errorf("case %+v", c)
		}
	}
}

// renderDoc renders the repository's template with its targets.
func renderDoc(t *testing.T, res *Results) []byte {
	doc, _ := renderDocPics(t, res)
	return doc
}

// renderDocPics is renderDoc with the pictures the document shows.
func renderDocPics(t *testing.T, res *Results) ([]byte, map[string][]byte) {
	t.Helper()
	tg, err := loadTargets("targets.json")
	if err != nil {
		t.Fatal(err)
	}
	check, err := readCheck("../docs/bench-check.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, pics, err := render("benchmarks.md.tmpl", res, check, tg)
	if err != nil {
		t.Fatal(err)
	}
	return doc, pics
}

// The template renders from the results of a full run: every case of the
// catalogue at 32 and 512 MiB (the sizeless scenarios at no size).
func TestTemplateRendersAFullRun(t *testing.T) {
	res := &Results{Command: "make bench", Runs: 1, Commit: "abc", Tools: []ToolVersion{{"hoist", "v1"}}}
	for _, sc := range catalogue() {
		sizes := []int{32, 512}
		if sc.sizeless {
			sizes = []int{0}
		}
		for _, size := range sizes {
			for _, tl := range sc.tools {
				s := sample{Wall: 2, CPU: 1, RSS: 30, Extra: map[string]float64{"build_s": 0.5, "export_s": 0.5}}
				res.Cases = append(res.Cases, CaseResult{ID: sc.caseID(tl), SizeMiB: size, Scenario: sc.title, Tool: tl.title, Runs: []sample{s}, Median: s})
			}
		}
	}
	doc := renderDoc(t, res)
	for _, c := range res.Cases {
		if !strings.Contains(string(doc), "| "+c.Tool+" |") {
			t.Errorf("the document has no row for %s", c.ID)
		}
	}
	tg, err := loadTargets("targets.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range tg.Targets {
		if !strings.Contains(string(doc), v.Text) {
			t.Errorf("the document does not list target %s", v.ID)
		}
	}
}

// docs/benchmarks.md is what `make bench-docs` renders from the committed
// results: no figure in it is copied by hand.
func TestBenchmarksDocIsGenerated(t *testing.T) {
	res, err := readResults("../docs/benchmarks.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cases) == 0 || len(res.Tools) == 0 || res.Commit == "" || res.Date.IsZero() {
		t.Fatalf("docs/benchmarks.json lacks cases, tools, commit or date")
	}
	for _, c := range res.Cases {
		// A case measured again (bench merge) has that run's count.
		runs := res.Runs
		for _, u := range res.Updates {
			if slices.Contains(u.Suites, strings.SplitN(c.ID, "/", 2)[0]) {
				runs = u.Runs
			}
		}
		if len(c.Runs) != runs {
			t.Errorf("case %s has %d runs, the run made %d each", c.ID, len(c.Runs), runs)
		}
	}
	doc, pics := renderDocPics(t, res)
	have, err := os.ReadFile("../docs/benchmarks.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, have) {
		t.Errorf("docs/benchmarks.md differs from its rendering; run make bench-docs:\n%s", cmp.Diff(string(doc), string(have)))
	}
	// Its pictures too, each shown by the document.
	if len(pics) == 0 {
		t.Error("the document shows no chart")
	}
	for name, b := range pics {
		have, err := os.ReadFile(filepath.Join("../docs", name))
		if err != nil || !bytes.Equal(b, have) {
			t.Errorf("docs/%s differs from its drawing (%v); run make bench-docs", name, err)
		}
		if !bytes.Contains(doc, []byte("]("+name+")")) {
			t.Errorf("docs/benchmarks.md does not show %s", name)
		}
	}
}

// Every subcommand's flags register (a flag defined twice panics).
func TestFlags(t *testing.T) {
	for _, name := range []string{"run", "check"} {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		addMeasureFlags(fs, 1, "x.json")
		if fs.Lookup("buildctl") == nil || fs.Lookup("runs") == nil {
			t.Errorf("%s: flags missing", name)
		}
	}
}

func TestShellLine(t *testing.T) {
	got := shellLine([]string{"sh", "-c", "a 'b' && c", "plain", ""})
	if want := `sh -c 'a '\''b'\'' && c' plain ''`; got != want {
		t.Errorf("shellLine = %s, want %s", got, want)
	}
}

// merge replaces a run's cases with a later run's, adds the new ones,
// keeps the rest, and records the later run; runs of two machines do not
// merge.
func TestMerge(t *testing.T) {
	m := Machine{CPU: "x", Cores: 2}
	c := func(id string, size int, wall float64) CaseResult {
		return CaseResult{ID: id, SizeMiB: size, Runs: []sample{{Wall: wall}}, Median: sample{Wall: wall}}
	}
	base := &Results{Command: "full", Commit: "a", Machine: m, Runs: 1, Cases: []CaseResult{c("push/x/hoist", 32, 1), c("sign/1reg/hoist", 32, 2), c("sign/1reg/hoist", 512, 3)}}
	later := &Results{Command: "sign only", Commit: "b", Machine: m, Runs: 1, Cases: []CaseResult{c("sign/1reg/hoist", 512, 4), c("sign/4reg/hoist", 512, 5)}}
	got, err := merge(base, later)
	if err != nil {
		t.Fatal(err)
	}
	var walls []float64
	for _, cr := range got.Cases {
		walls = append(walls, cr.Median.Wall)
	}
	if fmt.Sprint(walls) != "[1 2 4 5]" || got.Command != "full" || len(got.Updates) != 1 ||
		got.Updates[0].Commit != "b" || fmt.Sprint(got.Updates[0].Suites) != "[sign]" {
		t.Errorf("merged: walls %v, command %q, updates %+v", walls, got.Command, got.Updates)
	}
	if len(base.Cases) != 3 || base.Cases[2].Median.Wall != 3 {
		t.Errorf("merge changed the base run: %+v", base.Cases)
	}
	later.Machine.Cores = 4
	if _, err := merge(base, later); err == nil || !strings.Contains(err.Error(), "different machines") {
		t.Errorf("runs of two machines merged: %v", err)
	}
}

// A verdict carries its run-by-run spread, run i of each case with run i
// of the others, and says when its bound lies inside it.
func TestJudgeSpread(t *testing.T) {
	one := 1.0
	tg := &Targets{SizeMiB: 512, Targets: []Target{
		{ID: "ratio", Value: []string{"push/gzip-1reg/hoist"}, Over: "push/gzip-1reg/crane", Max: &one},
		{ID: "clear", Value: []string{"push/save-1reg/hoist"}, Over: "push/gzip-1reg/crane", Max: &one},
	}}
	r := &Results{Cases: []CaseResult{
		{ID: "push/gzip-1reg/hoist", SizeMiB: 512, Median: sample{Wall: 1.0}, Runs: []sample{{Wall: 0.9}, {Wall: 1.0}, {Wall: 1.3}}},
		{ID: "push/gzip-1reg/crane", SizeMiB: 512, Median: sample{Wall: 1.0}, Runs: []sample{{Wall: 1.0}, {Wall: 1.0}, {Wall: 1.0}}},
		{ID: "push/save-1reg/hoist", SizeMiB: 512, Median: sample{Wall: 0.5}, Runs: []sample{{Wall: 0.5}, {Wall: 0.4}, {Wall: 0.6}}},
	}}
	vs, err := tg.judge(r)
	if err != nil {
		t.Fatal(err)
	}
	if v := vs[0]; !v.Pass || !v.Noise || v.Low != 0.9 || v.High != 1.3 {
		t.Errorf("ratio: %+v, want a pass inside the noise, 0.90–1.30", v)
	}
	if v := vs[1]; !v.Pass || v.Noise || v.Low != 0.4 || v.High != 0.6 {
		t.Errorf("clear: %+v, want a pass outside the noise, 0.40–0.60", v)
	}
	var buf bytes.Buffer
	printVerdicts(&buf, vs)
	for _, w := range []string{"1.00 [0.90–1.30]", "[inside the noise: some runs pass, some miss]", "0.50 [0.40–0.60]"} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("printed verdicts lack %q:\n%s", w, buf.String())
		}
	}
	if strings.Count(buf.String(), "inside the noise") != 1 {
		t.Errorf("a clear verdict is said to be in the noise:\n%s", buf.String())
	}
}

// A pending target whose cases a run did not measure is listed as such,
// never judged; a target that is not pending still needs its cases.
func TestJudgeUnmeasuredPending(t *testing.T) {
	one := 1.0
	r := results(map[string]sample{"push/gzip-1reg/hoist": {Wall: 1}, "push/gzip-1reg/crane": {Wall: 1}})
	tg := &Targets{SizeMiB: 512, Targets: []Target{
		{ID: "new", Value: []string{"push/gzip-1reg/hoist"}, Over: "push/gzip-1reg/limit", Max: &one, Pending: "issue 27"},
	}}
	vs, err := tg.judge(r)
	if err != nil || len(vs) != 1 || !vs[0].Unmeasured || vs[0].Pass {
		t.Fatalf("verdicts %+v, %v", vs, err)
	}
	var buf bytes.Buffer
	if !printVerdicts(&buf, vs) || !strings.Contains(buf.String(), "NONE  new") || !strings.Contains(buf.String(), "not measured by this run") {
		t.Errorf("printed:\n%s", buf.String())
	}
	tg.Targets[0].Pending = ""
	if _, err := tg.judge(r); err == nil || !strings.Contains(err.Error(), "lack") {
		t.Errorf("a target that is not pending was judged without its case: %v", err)
	}
}

// A growth case names what it varies and the image it pushes.
func TestGrowthOf(t *testing.T) {
	for id, want := range map[string][2]int{
		"growth/size-50l-4096/hoist": {4096, 4096},
		"growth/size-1l-64/crane":    {64, 64},
		"growth/registries-16/hoist": {16, growthFanoutMiB},
		"growth/tags-500/limit":      {500, growthTagsMiB},
	} {
		if n, mb := growthOf(id); n != want[0] || mb != want[1] {
			t.Errorf("growthOf(%s) = %d, %d; want %v", id, n, mb, want)
		}
	}
	if got := growthImageOf("registries-4"); got != "50l-256" {
		t.Errorf("registries-4 pushes %s", got)
	}
}
