package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/pipeline"
)

// stageNoPush is a stage that sets PLUGIN_NO_PUSH for its steps (the
// document's "stage level"), with a build-only step and a push-only
// step whose envVariables are pushEnv.
func stageNoPush(pushEnv string) string {
	return `pipeline:
  identifier: stage_env
  stages:
    - stage:
        identifier: s
        type: CI
        variables:
          - {name: PLUGIN_NO_PUSH, type: String, value: "true"}
        spec:
          cloneCodebase: true
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: build
                  type: BuildAndPushDockerRegistry
                  spec: {connectorRef: c, repo: myorg/app, tags: ["1"], context: examples/pipelines/app, dockerfile: examples/pipelines/app/Dockerfile, envVariables: {PLUGIN_TAR_PATH: app.tar}}
              - step:
                  identifier: push
                  type: BuildAndPushDockerRegistry
                  spec: {connectorRef: c, repo: myorg/app, tags: ["1"], envVariables: {` + pushEnv + `}}
`
}

// A stage's PLUGIN_NO_PUSH reaches a push-only step of the stage as
// Harness sends it, and hoist pipeline run and the plugin, given what
// the runner sends that step, say the same: exit 2 with the peers'
// message, and how to fix it. Before, the runner dropped the stage's
// variable on that step and pushed, where the plugin refused.
func TestPipelineStageNoPushAsHarnessSendsIt(t *testing.T) {
	y := stageNoPush(`PLUGIN_PUSH_ONLY: "true", PLUGIN_SOURCE_TAR_PATH: app.tar`)
	dir := checkout(t, map[string]string{"stage.yaml": y})
	const msg = "inputs no-push and push-only cannot be used together"
	v := hoistIn(t, dir, map[string]string{"HOME": t.TempDir()}, "pipeline", "validate", "stage.yaml")
	if v.code != ExitSettings {
		t.Errorf("validate: exit %d, want %d:\n%s", v.code, ExitSettings, v)
	}
	assertContains(t, v, "stage.yaml:", "step push: "+msg, "set PLUGIN_NO_PUSH=false on the push step")
	r := hoistIn(t, dir, map[string]string{"HOME": t.TempDir()}, "pipeline", "run", "stage.yaml", "--local")
	if r.code != ExitSettings {
		t.Errorf("run: exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, "step push: "+msg)
	assertNotContains(t, r, ", sequence ")

	// The plugin, given exactly the environment the runner plans for
	// the push step (what Harness sends it), refuses the same way.
	p, err := pipeline.ParseBytes(filepath.Join(dir, "stage.yaml"), []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	pl, _ := pipeline.MakePlan(context.Background(), p, pipeline.PlanOptions{Seq: 1})
	var env map[string]string
	for s, pd := range pl.Steps {
		if s.Identifier == "push" {
			env = map[string]string{"HOME": t.TempDir()}
			for _, e := range pd.Environ() {
				k, v, _ := strings.Cut(e, "=")
				env[k] = v
			}
		}
	}
	if env == nil || env["PLUGIN_NO_PUSH"] != "true" || env["PLUGIN_PUSH_ONLY"] != "true" {
		t.Fatalf("the push step's environment %v: want the stage's PLUGIN_NO_PUSH and the step's PLUGIN_PUSH_ONLY", env)
	}
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "app.tar"), nil, 0o644)
	plug := hoistIn(t, ws, env)
	if plug.code != ExitSettings {
		t.Errorf("plugin: exit %d, want %d:\n%s", plug.code, ExitSettings, plug)
	}
	assertContains(t, plug, msg, "set PLUGIN_NO_PUSH=false on the push step")
}

// A build in a stage that does not clone the codebase finds no
// Dockerfile: hoist pipeline validate says so at the step, with the fix
// (it said ok, and only run failed). A build whose context an earlier Run
// step of the stage writes is valid: validate prints a warning, and run
// builds it.
func TestPipelineValidateBuildWithoutCodebase(t *testing.T) {
	const build = `{identifier: b, type: BuildAndPushDockerRegistry, spec: {connectorRef: c, repo: myorg/gen, tags: ["1"], context: gen, envVariables: {PLUGIN_NO_PUSH: "true", PLUGIN_TAR_PATH: gen.tar}}}`
	dir := checkout(t, map[string]string{
		"empty.yaml": oneStage("empty", build),
		"gen.yaml": oneStage("gen",
			`{identifier: write, type: Run, spec: {command: "mkdir -p gen && echo hi > gen/hello.txt && printf 'FROM scratch\nCOPY hello.txt /\n' > gen/Dockerfile"}}`,
			build),
	})
	v := hoistIn(t, dir, map[string]string{"HOME": t.TempDir()}, "pipeline", "validate", "empty.yaml")
	if v.code != ExitSettings {
		t.Errorf("validate: exit %d, want %d:\n%s", v.code, ExitSettings, v)
	}
	assertContains(t, v, "empty.yaml:11:23: step b: stage s does not clone the codebase (cloneCodebase is false or left out), so its workspace starts empty: the build's context gen and Dockerfile gen/Dockerfile are not there",
		"fix: set spec.cloneCodebase: true on stage s, or write the context in a Run step before this one")

	v = hoistIn(t, dir, map[string]string{"HOME": t.TempDir()}, "pipeline", "validate", "gen.yaml")
	if v.code != 0 {
		t.Errorf("validate: exit %d:\n%s", v.code, v)
	}
	assertContains(t, v, "gen.yaml: ok (1 stages, 2 steps)", "gen.yaml:12:23: warning: step b: stage s does not clone the codebase", "are there only if an earlier Run step of the stage writes them")
	r, rep := pipelineRun(t, dir, pipelineEnv(t), "gen.yaml", "--local")
	if r.code != 0 || stepOf(t, rep, "b").Status != "Success" || len(stepOf(t, rep, "b").Tarballs) != 1 {
		t.Fatalf("run: exit %d, report %+v:\n%s", r.code, stepOf(t, rep, "b"), r)
	}
	assertContains(t, r, "warning: step b: stage s does not clone the codebase", "[s.b] warning: step b")
}
