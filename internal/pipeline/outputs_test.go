package pipeline

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/mask"
)

// outputsPipeline has two stages run one after the other, the second a
// parallel group of two, and steps that name other steps' outputs in
// each of the forms Harness documents.
const outputsPipeline = `pipeline:
  identifier: p
  stages:
    - stage:
        identifier: one
        type: CI
        spec:
          cloneCodebase: true
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: build, type: BuildAndPushDockerRegistry, spec: {connectorRef: c, repo: app, tags: ["1"], envVariables: {PLUGIN_NO_PUSH: "true"}}}
              - step: {identifier: show, type: Run, spec: {command: 'echo <+steps.build.output.outputVariables.digest> <+execution.steps.build.output.outputVariables.IMAGE>'}}
              - step:
                  identifier: retag
                  type: BuildAndPushDockerRegistry
                  spec:
                    connectorRef: c
                    repo: app
                    tags: ["<+steps.show.output.outputVariables.TAG>"]
                    envVariables: {PLUGIN_PUSH_ONLY: "true", PLUGIN_SOURCE_IMAGE: "<+steps.build.output.outputVariables.IMAGE>"}
    - parallel:
        - stage:
            identifier: two
            type: CI
            spec:
              runtime: {type: Cloud, spec: {}}
              execution:
                steps:
                  - step: {identifier: use, type: Run, spec: {command: 'echo <+pipeline.stages.one.spec.execution.steps.build.output.outputVariables.digest> <+stages.one.spec.execution.steps.show.output.outputVariables.TAG>'}}
        - stage:
            identifier: three
            type: CI
            spec:
              runtime: {type: Cloud, spec: {}}
              execution:
                steps:
                  - step: {identifier: other, type: Run, spec: {command: echo}}
`

// A step's spec may name the outputs of the steps that run before it, in
// the forms Harness documents: the plan checks each reference (the step
// is there and runs before) and keeps it for the run, the value a
// placeholder until then. Before, each was an unknown expression.
func TestOutputReferencesArePlanned(t *testing.T) {
	pl, probs := validate(t, "x.yaml", []byte(outputsPipeline))
	if probs != nil {
		t.Fatalf("%v", probs)
	}
	got := map[string]string{}
	for s, pd := range pl.Steps {
		var refs []string
		for _, r := range pd.Outputs {
			refs = append(refs, r.Stage+"/"+r.Step+"/"+r.Name)
		}
		got[s.Identifier] = strings.Join(refs, " ")
		if s.Identifier == "show" && pd.Run.Command != "echo "+OutputPlaceholder+" "+OutputPlaceholder {
			t.Errorf("show's command before the run: %q", pd.Run.Command)
		}
		if s.Identifier == "retag" && (pd.Settings == nil || !pd.Settings.PushOnly) {
			t.Errorf("retag's settings %+v: a setting from an output is checked at run time, the rest now", pd.Settings)
		}
	}
	for id, want := range map[string]string{"build": "", "show": "/build/digest /build/IMAGE", "retag": "/show/TAG /build/IMAGE", "use": "one/build/digest one/show/TAG", "other": ""} {
		if got[id] != want {
			t.Errorf("step %s names outputs %q, want %q", id, got[id], want)
		}
	}
}

// A reference to a step that does not run before the one that names it,
// to a step or stage that is not there, in a form hoist does not
// resolve, or where no step's outputs can be had (a variable, a
// condition), is a problem at its line:col.
func TestOutputReferenceProblems(t *testing.T) {
	for _, c := range []struct {
		name, expr, pos, msg string
	}{
		{"itself", "steps.use.output.outputVariables.X", "", "a step cannot read its own outputs"},
		{"same parallel group", "steps.par.output.outputVariables.X", "", "step par runs in parallel with step use, not before it"},
		{"a later step", "steps.later.output.outputVariables.X", "", "step later runs after step use"},
		{"no such step", "steps.nope.output.outputVariables.X", "", "stage s has no step nope (it has: early, use, par, later)"},
		{"no such stage", "pipeline.stages.nope.spec.execution.steps.a.output.outputVariables.X", "", "the pipeline has no stage nope (it has: s, after)"},
		{"a later stage", "stages.after.spec.execution.steps.a.output.outputVariables.X", "", "stage after runs after stage s"},
		{"a step group", "execution.steps.g.steps.a.output.outputVariables.X", "", "is not a step output hoist resolves (step groups are not supported)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			y := `pipeline:
  identifier: p
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: early, type: Run, spec: {command: echo}}
              - parallel:
                  - step: {identifier: use, type: Run, spec: {command: 'echo <+` + c.expr + `>'}}
                  - step: {identifier: par, type: Run, spec: {command: echo}}
              - step: {identifier: later, type: Run, spec: {command: echo}}
    - stage:
        identifier: after
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: a, type: Run, spec: {command: echo}}
`
			_, probs := validate(t, "x.yaml", []byte(y))
			expect(t, probs, want{"13:72", c.msg, ""})
		})
	}
	// Where no step's outputs can be had: a pipeline or stage variable, a
	// condition.
	y := `pipeline:
  identifier: p
  variables:
    - {name: v, type: String, value: "<+steps.a.output.outputVariables.X>"}
  stages:
    - stage:
        identifier: s
        type: CI
        variables:
          - {name: w, type: String, value: "<+steps.a.output.outputVariables.X>"}
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: a, type: Run, spec: {command: echo}}
              - step: {identifier: b, type: Run, when: {stageStatus: Success, condition: '<+steps.a.output.outputVariables.X> == "1"'}, spec: {command: echo}}
`
	_, probs := validate(t, "x.yaml", []byte(y))
	const msg = "<+steps.a.output.outputVariables.X> is a step's output, known once that step has run: hoist resolves it in a step's spec"
	expect(t, probs, want{"4:38", msg, ""}, want{"10:44", msg, ""}, want{"16:90", msg, ""})
}

// What the run resolves a reference to: the value the step wrote, or an
// error that names the expression and why (the step did not run, did not
// succeed, wrote no such name, or its outputs could not be read).
func TestOutputResolver(t *testing.T) {
	st := &Stage{Identifier: "s"}
	var o outputStore
	o.set("s", "ok", stepOutputs{status: "Success", vars: map[string]string{"digest": "sha256:abc", "IMAGE": "app:1"}})
	o.set("s", "bad", stepOutputs{status: "Failed"})
	o.set("s", "big", stepOutputs{status: "Success", err: errors.New("output.env holds more than 1 MiB")})
	o.set("t", "other", stepOutputs{status: "Success", vars: map[string]string{"X": "from t"}})
	res := o.resolver(st)
	ref := func(e string) OutputRef {
		r, ok, err := parseOutputRef(e)
		if !ok || err != nil {
			t.Fatalf("%s: %v %v", e, ok, err)
		}
		return r
	}
	if v, err := res(ref("steps.ok.output.outputVariables.digest")); v != "sha256:abc" || err != nil {
		t.Errorf("digest: %q %v", v, err)
	}
	if v, err := res(ref("pipeline.stages.t.spec.execution.steps.other.output.outputVariables.X")); v != "from t" || err != nil {
		t.Errorf("another stage's: %q %v", v, err)
	}
	for e, want := range map[string]string{
		"steps.ok.output.outputVariables.TAG":          "<+steps.ok.output.outputVariables.TAG>: step ok of stage s wrote no TAG to its DRONE_OUTPUT (it wrote: IMAGE, digest)",
		"steps.never.output.outputVariables.X":         "<+steps.never.output.outputVariables.X>: step never of stage s did not run",
		"execution.steps.bad.output.outputVariables.X": "step bad of stage s did not succeed (Failed): a step's outputs are read only when it succeeds",
		"steps.big.output.outputVariables.X":           "the outputs of step big of stage s: output.env holds more than 1 MiB",
	} {
		if _, err := res(ref(e)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", e, err, want)
		}
	}
}

// A step's output files are read as the runners read them (godotenv),
// bounded, through no link out of the step's output directory; what it
// writes to HARNESS_OUTPUT_SECRET_FILE joins the run's mask.
func TestReadOutputs(t *testing.T) {
	r := &runner{mask: mask.NewSet(), root: t.TempDir()}
	pd := &Planned{Step: &Step{Identifier: "a", Stage: &Stage{Identifier: "s"}}}
	of, err := r.outputFiles(pd, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(of.Env, []byte("digest=sha256:abc\nQUOTED=\"two words\\nline\"\nexport EXP='x y'\n"), 0o644)
	os.WriteFile(of.Secret, []byte("TOKEN=fresh-secret-4711\n"), 0o644)
	so := r.readOutputs(of, nil)
	if so.err != nil || so.vars["digest"] != "sha256:abc" || so.vars["QUOTED"] != "two words\nline" || so.vars["EXP"] != "x y" || so.vars["TOKEN"] != "fresh-secret-4711" {
		t.Errorf("%+v", so)
	}
	if got := r.mask.String("echo fresh-secret-4711"); got != "echo ****" {
		t.Errorf("the secret output is not masked: %q", got)
	}

	// An earlier run's files are gone when the step starts again.
	if of, _ = r.outputFiles(pd, t.TempDir()); r.readOutputs(of, nil).vars["digest"] != "" {
		t.Errorf("an earlier run's outputs are read")
	}
	// Too large.
	os.WriteFile(of.Env, []byte("X="+strings.Repeat("a", MaxOutputFile)+"\n"), 0o644)
	if so := r.readOutputs(of, nil); so.err == nil || !strings.Contains(so.err.Error(), "output.env holds more than 1 MiB, hoist's limit for a step's outputs") {
		t.Errorf("too large: %+v", so.err)
	}
	// A link out of the output directory (a step in a container made it)
	// is not followed.
	outside := filepath.Join(t.TempDir(), "host-file")
	os.WriteFile(outside, []byte("HOST=secret-of-the-host\n"), 0o600)
	os.Remove(of.Env)
	if err := os.Symlink(outside, of.Env); err != nil {
		t.Fatal(err)
	}
	if so := r.readOutputs(of, nil); so.err == nil || so.vars["HOST"] != "" {
		t.Errorf("a link out was followed: %+v", so)
	}
}

// A step's outputs are bounded in number (each secret output joins the
// mask every later log line goes through), and an output declared Secret
// is masked wherever its value was found (a Run step's DRONE_OUTPUT too).
func TestReadOutputsBoundsAndDeclaredSecrets(t *testing.T) {
	r := &runner{mask: mask.NewSet(), root: t.TempDir()}
	pd := &Planned{Step: &Step{Identifier: "a", Stage: &Stage{Identifier: "s"}}}
	for _, f := range []func(outputFiles) string{func(of outputFiles) string { return of.Env }, func(of outputFiles) string { return of.Secret }} {
		of, err := r.outputFiles(pd, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i := range MaxOutputVars + 1 {
			fmt.Fprintf(&b, "K%d=value-%05d\n", i, i)
		}
		os.WriteFile(f(of), []byte(b.String()), 0o644)
		so := r.readOutputs(of, nil)
		if so.err == nil || !strings.Contains(so.err.Error(), "its outputs hold more than 256 variables, hoist's limit") || so.vars != nil {
			t.Errorf("%s: %+v, want the limit", filepath.Base(f(of)), so)
		}
	}
	if got := r.mask.String("value-00042"); got != "value-00042" {
		t.Errorf("a refused file's values joined the mask: %q", got)
	}
	// 256 in two files are also too many.
	of, _ := r.outputFiles(pd, t.TempDir())
	var env, sec strings.Builder
	for i := range MaxOutputVars/2 + 1 {
		fmt.Fprintf(&env, "E%d=x\n", i)
		fmt.Fprintf(&sec, "S%d=y\n", i)
	}
	os.WriteFile(of.Env, []byte(env.String()), 0o644)
	os.WriteFile(of.Secret, []byte(sec.String()), 0o644)
	if so := r.readOutputs(of, nil); so.err == nil {
		t.Errorf("%d outputs in two files were taken", MaxOutputVars+2)
	}

	of, _ = r.outputFiles(pd, t.TempDir())
	os.WriteFile(of.Env, []byte("TOKEN=declared-secret-9931\nPLAIN=plain-value-77\n"), 0o644)
	so := r.readOutputs(of, []outputVar{{Name: "TOKEN", Var: "TOKEN", Secret: true}, {Name: "PLAIN", Var: "PLAIN"}})
	if so.err != nil || so.vars["TOKEN"] != "declared-secret-9931" {
		t.Fatalf("%+v", so)
	}
	if got := r.mask.String("echo declared-secret-9931 plain-value-77"); got != "echo **** plain-value-77" {
		t.Errorf("masked %q, want the declared Secret only", got)
	}
}

// A Run step's declared outputVariables are read from its shell when the
// command is done (Harness's "export myVar=varValue" with outputVariables:
// [- name: myVar]): the lines hoist appends write each set variable,
// any value, and keep the command's status; a command that fails writes
// none. A declared name that is no shell variable's is a problem.
func TestRunStepOutputVariables(t *testing.T) {
	r := &runner{mask: mask.NewSet(), root: t.TempDir()}
	pd := &Planned{Step: &Step{Identifier: "a", Stage: &Stage{Identifier: "s"}}}
	decl := []outputVar{{Name: "myVar", Var: "myVar"}, {Name: "ALIAS", Var: "src"}, {Name: "KEY", Var: "KEY", Secret: true}, {Name: "UNSET", Var: "UNSET"}}
	for _, sh := range []string{"sh", "bash"} {
		for _, c := range []struct {
			cmd  string
			code int
			want map[string]string
		}{
			{"export myVar=varValue; src=\"two\nlines 'and' \\\"quotes\\\" \\$HOME\"; KEY=secret-out-2231; true", 0,
				map[string]string{"myVar": "varValue", "ALIAS": "two\nlines 'and' \"quotes\" $HOME", "KEY": "secret-out-2231"}},
			{"export myVar=varValue; false", 1, map[string]string{}},
		} {
			of, err := r.outputFiles(pd, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(sh, "-c", c.cmd+outputVarsScript(decl))
			cmd.Env = []string{"HOIST_OUTPUT_VARIABLES=" + of.Vars, "PATH=" + os.Getenv("PATH")}
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code {
				t.Errorf("%s: exit %d, want %d: %s", sh, code, c.code, out)
			}
			so := r.readOutputs(of, decl)
			if so.err != nil || len(so.vars) != len(c.want) {
				t.Errorf("%s %q: outputs %q %v, want %q", sh, c.cmd, so.vars, so.err, c.want)
			}
			for k, v := range c.want {
				if so.vars[k] != v {
					t.Errorf("%s: %s=%q, want %q", sh, k, so.vars[k], v)
				}
			}
		}
	}
	if got := r.mask.String("secret-out-2231"); got != "****" {
		t.Errorf("a Secret output variable is not masked: %q", got)
	}

	_, probs := validate(t, "x.yaml", []byte(`pipeline:
  identifier: p
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: a, type: Run, spec: {command: echo, outputVariables: [{name: "x; rm -rf /"}, {name: ok, type: Number}]}}
`))
	expect(t, probs, want{"11:90", `"x; rm -rf /" is not a shell variable's name`, "letters, digits and _"}, want{"11:130", `type "Number": want String or Secret`, ""})
}
