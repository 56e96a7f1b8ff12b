package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// bounded runs f, failing the test process (a panic, which a fuzzer
// records with its input) if f takes more than limit or the heap grows
// past 1 GiB while it runs.
func bounded(limit time.Duration, what string, f func()) {
	done := make(chan struct{})
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		deadline := time.NewTimer(limit)
		defer deadline.Stop()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-deadline.C:
				panic(fmt.Sprintf("%s took more than %s", what, limit))
			case <-tick.C:
				if metrics.Read(sample); sample[0].Value.Uint64() > 1<<30 {
					panic(fmt.Sprintf("%s: the heap holds %d MiB", what, sample[0].Value.Uint64()>>20))
				}
			}
		}
	}()
	defer close(done)
	f()
}

func hostile(t *testing.T, name string) (string, []byte) {
	t.Helper()
	file := filepath.Join("testdata", "hostile", name)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, b
}

// Pipeline variables that refer to each other in a cycle (of two, as in
// the report, or three) are a problem at each variable and at each use,
// naming every variable of the cycle at its line:col; before, validation
// died of a stack overflow.
func TestVariableCycles(t *testing.T) {
	t.Parallel()
	two := []byte(`pipeline:
  identifier: two
  variables:
    - name: x
      type: String
      value: <+pipeline.variables.y>
    - name: y
      type: String
      value: <+pipeline.variables.x>
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: echo
                  type: Run
                  spec: {command: "echo <+pipeline.variables.x>"}
`)
	var probs *Problems
	bounded(10*time.Second, "the cycle of two", func() { _, probs = validate(t, "two.yaml", two) })
	const xy = "variables refer to each other in a cycle: pipeline.variables.x (6:14) → pipeline.variables.y (9:14) → pipeline.variables.x (6:14)"
	expect(t, probs,
		want{"6:14", "pipeline.variables.x: expansion refused: " + xy, ""},
		want{"9:14", "pipeline.variables.y: expansion refused: " + xy, ""},
		want{"21:35", "step echo.spec.command: expansion refused: " + xy, ""},
	)

	file, three := hostile(t, "cycle.yaml")
	bounded(10*time.Second, "the cycle of three", func() { _, probs = validate(t, file, three) })
	if len(probs.Items) != 4 {
		t.Errorf("%d problems, want one per variable and one for the step:\n%s", len(probs.Items), probs)
	}
	for _, it := range probs.Items {
		for _, v := range []string{"pipeline.variables.x (6:14)", "pipeline.variables.y (9:14)", "pipeline.variables.z (12:14)"} {
			if !strings.Contains(it.Msg, "cycle: ") || !strings.Contains(it.Msg, v) {
				t.Errorf("%s: %s does not name %s in a cycle", it.Pos, it.Msg, v)
			}
		}
	}

	// A variable that refers to itself.
	self := strings.Replace(string(two), "<+pipeline.variables.y>", "a<+pipeline.variables.x>", 1)
	_, probs = validate(t, "self.yaml", []byte(self))
	if !strings.Contains(probs.Error(), "6:14: pipeline.variables.x: expansion refused: pipeline.variables.x (6:14) refers to itself") {
		t.Errorf("a variable that refers to itself:\n%s", probs)
	}
}

// v0 is 10 characters, each later variable its predecessor twice: v29
// would be 5 GiB. Validation stops at the first value past 1 MiB,
// reports each variable built on it and the step, and allocates
// nothing near the expansion (the heap bound of bounded).
func TestExpansionBomb(t *testing.T) {
	t.Parallel()
	file, b := hostile(t, "expansion-bomb.yaml")
	var probs *Problems
	bounded(20*time.Second, "the expansion bomb", func() { _, probs = validate(t, file, b) })
	text := probs.Error()
	for _, w := range []string{
		"57:14: pipeline.variables.v17: expansion refused: the value would hold more than 1 MiB with <+pipeline.variables.v16> (hoist's limit for one value: docs/pipelines.md, Limits)",
		"60:14: pipeline.variables.v18: expansion refused: pipeline.variables.v17 (57:14) would hold more than 1 MiB",
		"93:14: pipeline.variables.v29: expansion refused: pipeline.variables.v17 (57:14) would hold more than 1 MiB",
		"step echo.spec.command: expansion refused: pipeline.variables.v17 (57:14) would hold more than 1 MiB",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("no %q in:\n%s", w, text)
		}
	}
	if strings.Contains(text, "v16:") {
		t.Errorf("v16 (640 KiB) is within the limit:\n%s", text)
	}
}

// Values each within MaxValueSize, used by many steps, exceed the
// plan's total: that is reported once, where it ran out.
func TestExpansionBudget(t *testing.T) {
	t.Parallel()
	var y strings.Builder
	y.WriteString("pipeline:\n  identifier: wide\n  variables:\n    - name: big\n      type: String\n      value: " + strings.Repeat("x", 1000) + "\n")
	y.WriteString("    - name: v\n      type: String\n      value: " + strings.Repeat("<+pipeline.variables.big>", 900) + "\n")
	y.WriteString("  stages:\n    - stage:\n        identifier: s\n        type: CI\n        spec:\n          runtime: {type: Cloud, spec: {}}\n          execution:\n            steps:\n")
	for i := range 40 {
		fmt.Fprintf(&y, "              - step:\n                  identifier: s%d\n                  type: Run\n                  spec: {command: \"echo <+pipeline.variables.v>\"}\n", i)
	}
	var probs *Problems
	bounded(20*time.Second, "the wide pipeline", func() { _, probs = validate(t, "wide.yaml", []byte(y.String())) })
	if probs == nil || len(probs.Items) != 1 || !strings.Contains(probs.Items[0].Msg, "expansion refused: the pipeline's expressions would produce more than 16 MiB in all, hoist's limit (docs/pipelines.md, Limits)") {
		t.Errorf("want one problem for the plan's expansion limit:\n%v", probs)
	}
}

// A cancelled context stops planning: MakePlan says so, not a problem
// per value.
func TestPlanCancelled(t *testing.T) {
	t.Parallel()
	file, b := hostile(t, "expansion-bomb.yaml")
	p, err := ParseBytes(file, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = MakePlan(ctx, p, PlanOptions{Seq: 1})
	var probs *Problems
	if !errors.Is(err, context.Canceled) || errors.As(err, &probs) {
		t.Fatalf("MakePlan with a cancelled context: %v", err)
	}
}

// Timeouts past 35 days are an error at their line:col, however large
// (before, 18446744075s wrapped to 1.3 s and 30500w to no timeout).
func TestHostileTimeouts(t *testing.T) {
	t.Parallel()
	file, b := hostile(t, "timeouts.yaml")
	_, probs := validate(t, file, b)
	const long = "is longer than 35d, hoist's maximum (docs/pipelines.md, Limits)"
	expect(t, probs,
		want{"7:18", `pipeline.stages[0].stage.timeout: timeout "30500w" ` + long, ""},
		want{"15:28", `steps[0].step.timeout: timeout "18446744075s" ` + long, ""},
		want{"20:28", `steps[1].step.timeout: timeout "36d" ` + long, ""},
		want{"25:28", `steps[2].step.timeout: timeout "99999999999999999999m" ` + long, ""},
	)
	for in, d := range map[string]time.Duration{
		"35d": MaxTimeout, "5w": 35 * 24 * time.Hour, "4w 6d 23h 59m 59s 999ms": MaxTimeout - time.Millisecond,
		"1h 30m": 90 * time.Minute, "90s": 90 * time.Second, "250ms": 250 * time.Millisecond,
	} {
		if got, err := ParseTimeout(in); err != nil || got != d {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v", in, got, err, d)
		}
	}
	for _, in := range []string{"0s", "0m 0ms", "35d1ms", "5w 1s", "9223372036854775807ns", "9223372036854775808s", "2562047h", "1x", "m", "-1s", ""} {
		if got, err := ParseTimeout(in); err == nil {
			t.Errorf("ParseTimeout(%q) = %v, want an error", in, got)
		}
	}
}

// Empty lists, anchors, aliases and merge keys say what they are.
func TestHostileShapes(t *testing.T) {
	t.Parallel()
	const fix = "write the value out where it is used: hoist does not expand YAML anchors"
	for name, wants := range map[string][]want{
		"empty-stages.yaml": {{"3:11", "pipeline.stages: the list is empty: want at least one stage", "[- stage: ...]"}},
		"empty-lists.yaml": {
			{"4:17", "pipeline.stages[0].parallel: the list is empty: want at least one stage", ""},
			{"11:20", "pipeline.stages[1].stage.spec.execution.steps: the list is empty: want at least one step", "[- step: ...]"},
			{"19:27", "steps[0].parallel: the list is empty: want at least one step", ""},
		},
		"alias.yaml": {
			{"11:23", "YAML anchor &s: anchors and aliases are not supported", fix},
			{"15:23", "YAML alias *s: anchors and aliases are not supported", fix},
		},
		"merge-key.yaml": {
			{"14:25", "YAML anchor &run: anchors and aliases are not supported", fix},
			{"21:21", "YAML merge key <<: anchors, aliases and merge keys are not supported", fix},
			{"21:25", "YAML alias *run: anchors and aliases are not supported", fix},
		},
	} {
		t.Run(name, func(t *testing.T) {
			file, b := hostile(t, name)
			_, probs := validate(t, file, b)
			expect(t, probs, wants...)
			for _, bad := range []string{"found nothing", "found a list", "want a mapping"} {
				if strings.Contains(probs.Error(), bad) {
					t.Errorf("the problems say %q:\n%s", bad, probs)
				}
			}
		})
	}
}

// A pipeline file past MaxFileSize is refused before YAML reads it.
func TestPipelineFileTooLarge(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(file, []byte("pipeline:\n  identifier: big\n#"+strings.Repeat("x", MaxFileSize)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Parse(file)
	if err == nil || !strings.Contains(err.Error(), "is larger than 4 MiB, hoist's limit for a pipeline file") {
		t.Errorf("Parse of a 4 MiB file: %v", err)
	}
	if _, err := Parse("/dev/zero"); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("Parse(/dev/zero): %v", err)
	}
}

// A condition nested past MaxConditionDepth, or longer than
// MaxConditionSize, is a problem at its line:col; before, two million
// parentheses (4 MB, within the file limit) overflowed the parser's stack.
func TestHostileConditions(t *testing.T) {
	t.Parallel()
	pipe := func(cond string) []byte {
		return []byte(`pipeline:
  identifier: c
  stages:
    - stage:
        identifier: s
        type: CI
        when: {pipelineStatus: Success, condition: '` + cond + `'}
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: a, type: Run, spec: {command: echo}}
`)
	}
	nest := func(n int) string { return strings.Repeat("(", n) + "true" + strings.Repeat(")", n) }
	for cond, msg := range map[string]string{
		nest(MaxConditionDepth + 1):                       "the condition nests ! and ( more than 64 deep, hoist's limit (docs/pipelines.md, Limits)",
		strings.Repeat("!", MaxConditionDepth+1) + "true": "the condition nests ! and ( more than 64 deep",
		nest(2_000_000):                                   "the condition has 4000004 bytes, more than 16 KiB, hoist's limit",
		strings.Repeat("true && ", 3000) + "true":         "the condition has 24004 bytes, more than 16 KiB",
	} {
		var probs *Problems
		bounded(10*time.Second, "the condition", func() { _, probs = validate(t, "c.yaml", pipe(cond)) })
		expect(t, probs, want{"7:52", "pipeline.stages[0].stage.when.condition: " + msg, ""})
	}
	// At the limits, conditions parse and evaluate.
	for _, cond := range []string{nest(MaxConditionDepth), strings.Repeat("!", MaxConditionDepth) + "true", strings.Repeat("true && ", 2000) + "true"} {
		if pl, probs := validate(t, "c.yaml", pipe(cond)); probs != nil || pl == nil {
			t.Errorf("a condition of %d bytes at the limits: %v", len(cond), probs)
		}
		sc := &Scope{Pipeline: &Pipeline{}}
		if ok, err := sc.EvalCondition(cond); err != nil || !ok {
			t.Errorf("EvalCondition of %d bytes: %v, %v", len(cond), ok, err)
		}
	}
}

// Found by an attacker's read after the fixes above: each is refused at
// once, in bounded time and memory, with a message of bounded size.
func TestHostileSizes(t *testing.T) {
	t.Parallel()
	stage := func(vars, steps int, id string) string {
		var b strings.Builder
		b.WriteString("    - stage:\n        identifier: s\n        type: CI\n")
		if vars > 0 {
			b.WriteString("        variables:\n")
			for i := range vars {
				fmt.Fprintf(&b, "          - {name: v%d, type: String, value: x}\n", i)
			}
		}
		b.WriteString("        spec:\n          runtime: {type: Cloud, spec: {}}\n          execution:\n            steps:\n")
		for i := range steps {
			fmt.Fprintf(&b, "              - step: {identifier: %s%d, type: BuildAndPushDockerRegistry, spec: {connectorRef: d, repo: org/app, tags: [\"1\"]}}\n", id, i)
		}
		return b.String()
	}
	head := "pipeline:\n  identifier: p\n  stages:\n"
	var probs *Problems
	bounded(20*time.Second, "40,000 variables and 1,001 steps", func() {
		_, probs = validate(t, "many.yaml", []byte(head+stage(40000, 1001, "a")))
	})
	expect(t, probs,
		want{"1:1", "the pipeline has 1001 steps, more than 1000, hoist's limit (docs/pipelines.md, Limits)", "split the pipeline"},
		want{"1008:48", "stage s has 40000 variables, more than 1000, hoist's limit", ""})

	// A 1 MB identifier on a step with 20,000 tags: the problems are at
	// most MaxProblems, each clipped, the identifier too.
	tags := strings.Repeat("<+nope>, ", 20000)
	big := head + "    - stage:\n        identifier: s\n        type: CI\n        spec:\n          runtime: {type: Cloud, spec: {}}\n          execution:\n            steps:\n" +
		"              - step: {identifier: " + strings.Repeat("x-", 500000) + ", type: BuildAndPushDockerRegistry, spec: {connectorRef: d, repo: org/app, tags: [" + tags + "]}}\n"
	bounded(20*time.Second, "a 1 MB identifier", func() { _, probs = validate(t, "big.yaml", []byte(big)) })
	if len(probs.Items) != MaxProblems || probs.Omitted < 19000 {
		t.Errorf("%d problems listed, %d omitted", len(probs.Items), probs.Omitted)
	}
	if text := probs.Error(); len(text) > MaxProblems*3000 || !strings.Contains(text, "more (repeated, or past the first 200)") {
		t.Errorf("the problems' text has %d bytes:\n%.2000s", len(text), text)
	}

	// A second YAML document is not ignored.
	_, probs = validate(t, "two.yaml", []byte(head+stage(0, 1, "a")+"---\npipeline: {identifier: q}\n"))
	expect(t, probs, want{"12:1", "a second YAML document: hoist reads one pipeline per file", "one pipeline per file"})

	// Every <+ must open an expression, the second one too.
	_, probs = validate(t, "unterm.yaml", []byte(head+`    - stage:
        identifier: s
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: a, type: Run, spec: {command: 'echo <+pipeline.name> <+secrets.getValue("TOK")'}}
`))
	expect(t, probs, want{"11:66", `unterminated expression "<+secrets.getValue(\"TOK\")": want <+...>`, ""})
}

// A connectors file is read as a pipeline file is: bounded, a regular
// file, no anchors.
func TestHostileConnectors(t *testing.T) {
	t.Parallel()
	if _, err := ReadConnectors("/dev/zero"); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("/dev/zero: %v", err)
	}
	f := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(f, []byte("connectors:\n  a: &a {type: docker, username: u, password: p}\n  b: *a\n"), 0o644)
	_, err := ReadConnectors(f)
	var probs *Problems
	if !errors.As(err, &probs) || !strings.Contains(err.Error(), "YAML alias *a: anchors and aliases are not supported") {
		t.Errorf("anchors in a connectors file: %v", err)
	}
}

// A variable defined twice is a problem at the second, naming the first
// (expressions took the first, a Build step's settings the last).
func TestDuplicateVariables(t *testing.T) {
	t.Parallel()
	_, probs := validate(t, "dup.yaml", []byte(`pipeline:
  identifier: dup
  variables:
    - {name: x, type: String, value: a}
    - {name: x, type: String, value: b}
  stages:
    - stage:
        identifier: s
        type: CI
        variables:
          - {name: y, type: String, value: a}
          - {name: y, type: String, value: b}
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: a, type: Run, spec: {command: echo}}
`))
	expect(t, probs,
		want{"5:7", `pipeline.variables[1]: variable "x" is defined twice (first at 4:7)`, "give each variable its own name"},
		want{"12:13", `variables[1]: variable "y" is defined twice (first at 11:13)`, ""})
}
