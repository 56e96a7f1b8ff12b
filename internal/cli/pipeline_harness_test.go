package cli

import (
	"context"
	"encoding/json"
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

// A Build and Push step's outputs (its DRONE_OUTPUT: digest, IMAGE, ...)
// reach the later steps through <+steps.ID.output.outputVariables.NAME>
// and the other forms Harness documents, resolved when the consuming step
// is about to run: a Run step echoes the digest, which is the one crane
// reads from the registry. A Run step's own DRONE_OUTPUT and
// HARNESS_OUTPUT_SECRET_FILE reach the next stage; a secret output, and
// an output holding a secret, are masked where a later step prints them.
// A Run step's declared outputVariables are read from its shell, as
// Harness reads them (a Secret one masked).
// A reference to a name the step did not write fails the step that
// names it, with the expression and its line:col. Before, every such
// expression was an unknown expression, and the pipeline did not run.
func TestPipelineStepOutputs(t *testing.T) {
	const fresh = "fresh-4711" // made at run time: the file does not hold it
	dir := checkout(t, map[string]string{"outputs.yaml": `pipeline:
  identifier: outputs
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
          cloneCodebase: true
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: base
                  type: Run
                  spec: {command: 'mkdir -p examples/pipelines/app/rootfs/bin && cp "$(command -v busybox)" examples/pipelines/app/rootfs/bin/busybox'}
              - step:
                  identifier: build
                  type: BuildAndPushDockerRegistry
                  spec: {connectorRef: c, repo: myorg/app, tags: ["1"], context: examples/pipelines/app, dockerfile: examples/pipelines/app/Dockerfile}
              - step:
                  identifier: show
                  type: Run
                  spec:
                    command: |
                      echo "digest=<+steps.build.output.outputVariables.digest> image=<+execution.steps.build.output.outputVariables.IMAGE>"
                      echo "TAG=v2" >> "$DRONE_OUTPUT"
                      echo 'TOKEN=<+secrets.getValue("tok")>' >> "$DRONE_OUTPUT"
                      echo "FRESH=fresh-$((4000+711))" >> "$HARNESS_OUTPUT_SECRET_FILE"
                      export DECL="declared value"
                      HIDDEN="hidden-$((1000+234))"
                    outputVariables: [{name: DECL}, {name: HIDDEN, type: Secret}]
    - stage:
        identifier: t
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - parallel:
                  - step:
                      identifier: use
                      type: Run
                      spec:
                        envVariables: {TAG: "<+stages.s.spec.execution.steps.show.output.outputVariables.TAG>"}
                        command: echo "got <+pipeline.stages.s.spec.execution.steps.build.output.outputVariables.digest> tag=$TAG fresh=<+pipeline.stages.s.spec.execution.steps.show.output.outputVariables.FRESH> token=<+pipeline.stages.s.spec.execution.steps.show.output.outputVariables.TOKEN> decl=<+pipeline.stages.s.spec.execution.steps.show.output.outputVariables.DECL> hidden=<+pipeline.stages.s.spec.execution.steps.show.output.outputVariables.HIDDEN>"
                  - step:
                      identifier: miss
                      type: Run
                      spec: {command: 'echo <+pipeline.stages.s.spec.execution.steps.show.output.outputVariables.MISSING>'}
`})
	const token = "tok-secret-value-5521"
	r, rep := pipelineRun(t, dir, pipelineEnv(t), "outputs.yaml", "--local", "--keep", "--secrets", secretsFile(t, "tok="+token+"\n"))
	if r.code != ExitSettings || stepOf(t, rep, "miss").ExitCode != ExitSettings || stepOf(t, rep, "use").Status != "Success" {
		t.Fatalf("exit %d (miss %+v, use %+v), want %d from the step that names a missing output:\n%s", r.code, stepOf(t, rep, "miss"), stepOf(t, rep, "use"), ExitSettings, r)
	}
	reg := localRegistry(t, rep, "index.docker.io")
	want := reg.Digest(t, reg.Host+"/myorg/app:1")
	if !strings.HasPrefix(want, "sha256:") {
		t.Fatalf("the registry's digest %q", want)
	}
	assertContains(t, r, "[s.show] digest="+want+" image=index.docker.io/myorg/app:1\n",
		"[t.use] got "+want+" tag=v2 fresh=**** token=**** decl=declared value hidden=****\n",
		"outputs.yaml:49:39: step miss.spec.command: <+pipeline.stages.s.spec.execution.steps.show.output.outputVariables.MISSING>: step show of stage s wrote no MISSING to its DRONE_OUTPUT (it wrote: DECL, FRESH, HIDDEN, TAG, TOKEN)")
	assertNotContains(t, r, fresh, token, "hidden-1234")
	b, _ := json.Marshal(rep)
	if strings.Contains(string(b), fresh) || strings.Contains(string(b), token) {
		t.Errorf("the report holds a secret output")
	}
}
