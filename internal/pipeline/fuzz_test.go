package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzExpand expands a value against pipeline and stage variables (one
// per line of vars, named v0, v1, ... with the pipeline's, s0, s1, ...
// with the stage's): it never panics, never takes more than 10 s or
// 1 GiB (bounded), and never produces more than MaxValueSize.
func FuzzExpand(f *testing.F) {
	const v = "<+pipeline.variables.v"
	for _, seed := range [][2]string{
		{"abcdefghij\n" + v + "0>" + v + "0>\n" + v + "1>" + v + "1>", v + "2>-<+stage.variables.s1>"},
		{v + "1>\n" + v + "0>", "x" + v + "0>"},
		{v + "1>\n" + v + "2>\n" + v + "0>", v + "1>"},
		{"a" + v + "0>", v + "0>"},
		{"<+pipeline.sequenceId>\n<+stage.variables.s0>", "<+stage.variables.s1><+codebase.shortCommitSha>"},
		{`<+secrets.getValue("tok")>`, v + `0><+ secrets.getValue('tok') >`},
		{"", "tag-<+pipeline.sequenceId"},
		{strings.Repeat("x", 4096), strings.Repeat(v+"0>", 300)},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, vars, value string) {
		p := &Pipeline{Identifier: "p", Name: "p"}
		st := &Stage{Identifier: "s", Name: "s"}
		for i, line := range strings.SplitN(vars, "\n", 64) {
			p.Variables = append(p.Variables, Var{Name: "v" + strconv.Itoa(i), Value: line, Pos: Pos{i + 1, 1}})
			st.Variables = append(st.Variables, Var{Name: "s" + strconv.Itoa(i), Value: line + "-s", Pos: Pos{i + 100, 1}})
		}
		sc := &Scope{Pipeline: p, Stage: st, Seq: 3, Codebase: Codebase{Branch: "main", CommitSha: "0123456789"},
			Secret: func(n string) (string, bool) { return "secret-" + n, n == "tok" }}
		bounded(10*time.Second, "Expand", func() {
			out, err := sc.Expand(value)
			if err == nil && len(out) > MaxValueSize {
				t.Fatalf("Expand produced %d bytes", len(out))
			}
		})
	})
}

// FuzzParse parses and plans a pipeline file as hoist pipeline validate
// does: it never panics, never takes more than 10 s or 1 GiB, and every
// problem is a *Problems naming the file.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/hostile", "testdata/document"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("pipeline:\n  identifier: p\n  stages:\n    - stage: {identifier: s, type: CI, timeout: 5w, spec: {runtime: {type: Cloud, spec: {}}, execution: {steps: [{step: {identifier: a, type: Run, timeout: 1h 30m, spec: {command: echo}}}]}}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		bounded(10*time.Second, "Parse and MakePlan", func() {
			p, err := ParseBytes("f.yaml", b)
			if p != nil {
				_, err = MakePlan(context.Background(), p, PlanOptions{Seq: 1, Codebase: Codebase{Branch: "main", CommitSha: "0123456789abcdef"}})
			}
			var probs *Problems
			if err != nil && (!errors.As(err, &probs) || !strings.HasPrefix(err.Error(), "f.yaml")) {
				t.Fatalf("not a list of problems in f.yaml: %v", err)
			}
			if p == nil && err == nil {
				t.Fatal("no pipeline and no problem")
			}
		})
	})
}
