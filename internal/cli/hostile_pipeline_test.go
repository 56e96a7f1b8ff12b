package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Issue 24, items 1 to 3, as a user meets them: hoist pipeline validate
// and hoist pipeline run of a pipeline whose variables refer to each
// other in a cycle, of an expansion bomb (v29 would be 5 GiB) and of
// timeouts that overflowed exit 2 at once, with each problem at its
// line:col, and run nothing. Before, the first two died of a stack
// overflow or ran for more than ten minutes.
func TestHostilePipelinesAreInvalid(t *testing.T) {
	t.Parallel()
	extra := map[string]string{}
	for _, name := range []string{"cycle.yaml", "expansion-bomb.yaml", "timeouts.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "pipeline", "testdata", "hostile", name))
		if err != nil {
			t.Fatal(err)
		}
		extra[name] = string(b)
	}
	dir := checkout(t, extra)
	for name, want := range map[string][]string{
		"cycle.yaml": {"cycle.yaml: 4 problem(s)",
			"cycle.yaml:25:30: step echo.spec.command: expansion refused: variables refer to each other in a cycle: pipeline.variables.x (6:14) → pipeline.variables.y (9:14) → pipeline.variables.z (12:14) → pipeline.variables.x (6:14)"},
		"expansion-bomb.yaml": {"expansion-bomb.yaml:57:14: pipeline.variables.v17: expansion refused: the value would hold more than 1 MiB",
			"expansion-bomb.yaml:106:30: step echo.spec.command: expansion refused: pipeline.variables.v17 (57:14) would hold more than 1 MiB"},
		"timeouts.yaml": {"timeouts.yaml: 4 problem(s)", `timeouts.yaml:15:28: pipeline.stages[0].stage.spec.execution.steps[0].step.timeout: timeout "18446744075s" is longer than 35d, hoist's maximum`},
	} {
		for _, cmd := range []string{"validate", "run"} {
			start := time.Now()
			args := []string{"pipeline", cmd, name}
			if cmd == "run" {
				args = append(args, "--local")
			}
			r := hoistIn(t, dir, map[string]string{"HOME": t.TempDir()}, args...)
			if r.code != ExitSettings {
				t.Errorf("%s %s: exit %d, want %d:\n%s", cmd, name, r.code, ExitSettings, r)
			}
			assertContains(t, r, append(want, "hoist: invalid settings: ")...)
			assertNotContains(t, r, "goroutine ", ", sequence ")
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("%s %s took %s", cmd, name, d)
			}
		}
	}
}

// A condition that cannot be evaluated (a secret that is nowhere) is an
// error before anything runs, not a skipped step in a run that succeeds.
func TestConditionThatCannotBeEvaluated(t *testing.T) {
	t.Parallel()
	dir := checkout(t, map[string]string{"cond.yaml": oneStage("cond",
		`{identifier: gated, type: Run, when: {stageStatus: Success, condition: '<+secrets.getValue("MISSING_TOKEN_X")> != ""'}, spec: {command: echo gated-ran}}`)})
	secrets := secretsFile(t, "OTHER=x\n")
	r := hoistIn(t, dir, map[string]string{"HOME": t.TempDir()}, "pipeline", "run", "cond.yaml", "--local", "--secrets", secrets)
	if r.code != ExitSettings {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, `cond.yaml:11:94: when.condition: secret "MISSING_TOKEN_X" is neither in the secrets file (--secrets) nor in the environment`)
	assertNotContains(t, r, "gated-ran", ", sequence ")
	// validate reads no secret: the condition is checked, not evaluated.
	if v := hoistIn(t, dir, map[string]string{"HOME": t.TempDir()}, "pipeline", "validate", "cond.yaml"); v.code != 0 {
		t.Errorf("validate: exit %d:\n%s", v.code, v)
	}
}

// oneStage is a pipeline of one Cloud stage, s, whose steps are the given
// flow mappings, in order.
func oneStage(id string, steps ...string) string {
	y := "pipeline:\n  identifier: " + id + "\n  stages:\n    - stage:\n        identifier: s\n        type: CI\n        spec:\n" +
		"          runtime: {type: Cloud, spec: {}}\n          execution:\n            steps:\n"
	for _, s := range steps {
		y += "              - step: " + s + "\n"
	}
	return y
}

// secretsFile is a --secrets file (NAME=value lines) outside any checkout.
func secretsFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
