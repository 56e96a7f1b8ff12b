package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// validate parses and plans a pipeline file as hoist pipeline validate
// does.
func validate(t *testing.T, file string, content []byte) (*Plan, *Problems) {
	t.Helper()
	p, err := ParseBytes(file, content)
	if p != nil {
		var pl *Plan
		pl, err = MakePlan(context.Background(), p, PlanOptions{Seq: 1, Codebase: Codebase{Branch: "main", CommitSha: "0123456789abcdef"}})
		if err == nil {
			return pl, nil
		}
	}
	var probs *Problems
	if !errors.As(err, &probs) {
		t.Fatalf("%s: %v is not a list of problems", file, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("problems do not mark the pipeline invalid")
	}
	return nil, probs
}

// expect checks that problems hold exactly the wanted ones: each at its
// line:col, with its message and hint parts.
type want struct {
	pos  string
	msg  string
	hint string
}

func expect(t *testing.T, probs *Problems, wants ...want) {
	t.Helper()
	if probs == nil {
		t.Fatalf("no problems, want %d", len(wants))
	}
	text := probs.Error()
	if len(probs.Items) != len(wants) {
		t.Errorf("%d problems, want %d:\n%s", len(probs.Items), len(wants), text)
	}
	for _, w := range wants {
		found := false
		for _, it := range probs.Items {
			if it.Pos.String() == w.pos && strings.Contains(it.Msg, w.msg) && strings.Contains(it.Hint, w.hint) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem at %s with %q (hint %q):\n%s", w.pos, w.msg, w.hint, text)
		}
	}
}

// The document's nine pipelines as it prints them: the ones with the
// document's own mistakes (../spec §5) get them named where they are,
// with the fix; every placeholder (REPO_NAME, REGION, ...) is named.
func TestDocumentPipelines(t *testing.T) {
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "document", n+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// §5.9: - step: directly under execution:.
	_, probs := validate(t, "build-only-k8s.yaml", read("build-only-k8s"))
	expect(t, probs, want{"26:17", "execution holds a list directly; the steps belong under execution.steps", "put steps: above it"})

	// §5.1: the -buildx suffix names an image no step builds.
	for _, n := range []string{"multi-registry-cloud", "multi-registry-k8s"} {
		_, probs := validate(t, n+".yaml", read(n))
		expect(t, probs,
			want{"39:48", "PLUGIN_SOURCE_IMAGE myorg/myapp:new-no-push-1-buildx is not an image an earlier step of stage build_push_stage builds (they build myorg/myapp:new-no-push-1)", "write PLUGIN_SOURCE_IMAGE: myorg/myapp:new-no-push-1"},
			want{"53:48", "step BuildAndPushECR_1: PLUGIN_SOURCE_IMAGE myorg/myapp:new-no-push-1-buildx", "myorg/myapp:new-no-push-1 (the build step's repo and tag)"})
	}

	// The placeholders, at the value.
	_, probs = validate(t, "build-only-cloud.yaml", read("build-only-cloud"))
	expect(t, probs, want{"29:31", `PLUGIN_REPO "REPO_NAME"`, "replace the placeholder REPO_NAME"})

	// The Build, Scan and Push pipeline is valid as written.
	pl, probs := validate(t, "build-scan-push.yaml", read("build-scan-push"))
	if probs != nil {
		t.Fatalf("build-scan-push: %v", probs)
	}
	var kinds []string
	for _, pd := range pl.Steps {
		kinds = append(kinds, pd.Step.Identifier+"="+pd.Kind+"/"+pd.Tool)
	}
	for _, k := range []string{"BuildOnly=build/kaniko", "AquaTrivy_1=scan/", "push_only=build/kaniko"} {
		if !strings.Contains(strings.Join(kinds, " "), k) {
			t.Errorf("steps %v lack %s", kinds, k)
		}
	}
	for _, ig := range []string{"pipeline.projectIdentifier", "pipeline.orgIdentifier", "pipeline.stages[0].stage.spec.execution.steps[1].contextType", "step AquaTrivy_1.spec.privileged"} {
		if !slices.Contains(pl.Pipeline.Ignored, ig) {
			t.Errorf("ignored fields %v lack %s", pl.Pipeline.Ignored, ig)
		}
	}
}

// Every example pipeline is valid.
func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob("../../examples/pipelines/*.yaml")
	if len(files) < 7 {
		t.Fatalf("%d example pipelines, want one per workflow of the document", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, probs := validate(t, f, b); probs != nil {
			t.Errorf("%v", probs)
		}
	}
}

const badPipeline = `pipeline:
  identifier: bad
  stages:
    - stage:
        identifier: s1
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: b
                  type: BuildAndPushDockerRegistry
                  spec:
                    repo: reg.example.com/app
                    tags: [a-<+pipeline.sequenceID>]
              - step:
                  identifier: b
                  type: BuildAndPushECR
                  spec:
                    connectorRef: aws
                    account: "123456789012"
                    imageName: app
                    tags: [x]
                    envVariable:
                      PLUGIN_NO_PUSH: "true"
              - step:
                  identifier: c
                  type: BuildAndPushGCS
                  spec: {}
              - step:
                  identifier: d
                  type: BuildAndPushDockerRegistry
                  when:
                    stageStatus: Sometimes
                    condition: <+codebase.branch> = "main"
                  spec:
                    connectorRef: docker
                    repo: reg.example.com/app
                    tags: [x]
                    envVariables:
                      PLUGIN_NO_PUSH: "true"
                      PLUGIN_PUSH_ONLY: "true"
              - step:
                  identifier: e
                  type: AquaTrivy
                  spec:
                    mode: ingestion
                    config: default
                    target: {type: container, name: app, variant: x}
                    image: {type: local_archive}
              - step:
                  identifier: f
                  type: Run
                  timeout: 10 minutes
                  spec:
                    shell: Pwsh
`

// Every problem of a pipeline at once, each where it is.
func TestValidateProblems(t *testing.T) {
	_, probs := validate(t, "bad.yaml", []byte(badPipeline))
	expect(t, probs,
		want{"15:21", "step b.spec.connectorRef is required", ""},
		want{"16:30", "step b.spec.tags[0]: unknown expression <+pipeline.sequenceID>: hoist resolves <+pipeline.sequenceId>", ""},
		want{"18:19", `step identifier "b" is used twice in stage s1 (first at 12:19)`, "its own identifier"},
		want{"12:19", "step b: stage s1 does not clone the codebase", "set spec.cloneCodebase: true on stage s1"},
		want{"18:19", "step b: stage s1 does not clone the codebase (cloneCodebase is false or left out), so its workspace starts empty: the build's context . and Dockerfile Dockerfile are not there", "set spec.cloneCodebase: true on stage s1"},
		want{"21:21", "step b.spec.region is required", ""},
		want{"25:21", "envVariable is not a field hoist knows; did you mean envVariables?", "write envVariables"},
		want{"29:25", "BuildAndPushGCS is not a step type hoist runs", "use one of BuildAndPushDockerRegistry, BuildAndPushECR"},
		want{"35:34", `stageStatus "Sometimes": want Success, Failure or All`, ""},
		want{"36:32", `"= \"main\"" at offset 19 is not in the supported subset`, "documented subset"},
		want{"43:41", "step d: inputs no-push and push-only cannot be used together", ""},
		want{"48:27", `mode "ingestion"`, "use mode: orchestration"},
		want{"50:29", "target.workspace is required with image.type local_archive", "/harness/image.tar"},
		want{"55:28", `timeout unit "minutes"`, "10m"},
		want{"57:21", "step f.spec.command is required", ""},
		want{"57:28", `shell "Pwsh"`, "Sh or Bash"},
	)
}

func TestYAMLErrors(t *testing.T) {
	_, probs := validate(t, "x.yaml", []byte("pipeline:\n  identifier: x\n  stages:\n    - stage: {\n"))
	if probs == nil || !strings.Contains(probs.Error(), "x.yaml:4:1: YAML: did not find expected node content") {
		t.Errorf("%v", probs)
	}
	_, probs = validate(t, "x.yaml", []byte("stages: []\n"))
	expect(t, probs, want{"1:1", "no pipeline: at the top of the file", "start the file with pipeline:"})
	_, probs = validate(t, "x.yaml", []byte(""))
	expect(t, probs, want{"1:1", "the file is empty", ""})
}

// A stage's variables reach every step of the stage as a Harness runner
// sends them (../spec/settings.md §4.2): the stage's first, then what
// the step's spec gives, the step's envVariables last; the step wins a
// name both set and nothing is dropped. A stage-level PLUGIN_NO_PUSH thus
// reaches a push-only step, and the plan says what the plugin says of
// the pair (the plugin refuses it, exit 2): before the fix the runner
// dropped the stage's PLUGIN_NO_PUSH on that step and ran a push the
// plugin, given what Harness sends, refuses.
func TestStageVariablesAsHarnessSendsThem(t *testing.T) {
	pipe := func(stageVars, stepSpec string) []byte {
		return []byte(`pipeline:
  identifier: x
  stages:
    - stage:
        identifier: s
        type: CI
        variables:
` + stageVars + `
        spec:
          cloneCodebase: true
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: build
                  type: BuildAndPushDockerRegistry
                  spec: {connectorRef: c, repo: app, tags: [a], envVariables: {PLUGIN_TAR_PATH: app.tar}}
              - step:
                  identifier: push
                  type: BuildAndPushDockerRegistry
                  spec: ` + stepSpec + `
`)
	}
	type env map[string]string
	for _, c := range []struct {
		name, stageVars, stepSpec string
		// want is what the push step's environment holds ("" absent).
		want env
		// problem is the plan's problem (the plugin's refusal), if any.
		problem string
	}{{
		name:      "stage no-push and a push-only step: both sent, refused as the plugin refuses them",
		stageVars: `          - {name: PLUGIN_NO_PUSH, type: String, value: "true"}`,
		stepSpec:  `{connectorRef: c, repo: app, tags: [a], envVariables: {PLUGIN_PUSH_ONLY: "true", PLUGIN_SOURCE_TAR_PATH: app.tar}}`,
		want:      env{"PLUGIN_NO_PUSH": "true", "PLUGIN_PUSH_ONLY": "true"},
		problem:   "step push: inputs no-push and push-only cannot be used together",
	}, {
		name:      "the push step resets the stage's no-push: the step wins",
		stageVars: `          - {name: PLUGIN_NO_PUSH, type: String, value: "true"}`,
		stepSpec:  `{connectorRef: c, repo: app, tags: [a], envVariables: {PLUGIN_NO_PUSH: "false", PLUGIN_PUSH_ONLY: "true", PLUGIN_SOURCE_TAR_PATH: app.tar}}`,
		want:      env{"PLUGIN_NO_PUSH": "false", "PLUGIN_PUSH_ONLY": "true"},
	}, {
		name:      "a stage variable and a step envVariable of one name: the step's",
		stageVars: `          - {name: PLUGIN_BUILD_ARGS, type: String, value: "A=stage"}`,
		stepSpec:  `{connectorRef: c, repo: app, tags: [a], envVariables: {PLUGIN_BUILD_ARGS: "A=step"}}`,
		want:      env{"PLUGIN_BUILD_ARGS": "A=step"},
	}, {
		name:      "a stage variable and a spec field of one name: the spec's",
		stageVars: `          - {name: PLUGIN_TAGS, type: String, value: "from-stage"}`,
		stepSpec:  `{connectorRef: c, repo: app, tags: [from-spec]}`,
		want:      env{"PLUGIN_TAGS": "from-spec"},
	}, {
		name:      "stage dry-run and step no-push: both names sent as they are",
		stageVars: `          - {name: PLUGIN_DRY_RUN, type: String, value: "false"}`,
		stepSpec:  `{connectorRef: c, repo: app, tags: [a], envVariables: {PLUGIN_NO_PUSH: "true"}}`,
		want:      env{"PLUGIN_DRY_RUN": "false", "PLUGIN_NO_PUSH": "true"},
	}, {
		name:      "a stage variable the step does not set reaches it",
		stageVars: `          - {name: PLUGIN_LABELS_EXTRA, type: String, value: "kept"}`,
		stepSpec:  `{connectorRef: c, repo: app, tags: [a]}`,
		want:      env{"PLUGIN_LABELS_EXTRA": "kept", "PLUGIN_NO_PUSH": ""},
	}} {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseBytes("x.yaml", pipe(c.stageVars, c.stepSpec))
			if err != nil {
				t.Fatal(err)
			}
			pl, err := MakePlan(context.Background(), p, PlanOptions{Seq: 1})
			var probs *Problems
			switch {
			case c.problem == "" && err != nil:
				t.Fatalf("problems: %v", err)
			case c.problem != "" && (!errors.As(err, &probs) || len(probs.Items) != 1 || !strings.Contains(probs.Items[0].Msg, c.problem)):
				t.Fatalf("problems %v, want one: %q", err, c.problem)
			}
			var push *Planned
			for _, pd := range pl.Steps {
				if pd.Step.Identifier == "push" {
					push = pd
				}
			}
			if push == nil {
				t.Fatal("no push step planned")
			}
			for k, want := range c.want {
				got, ok := push.Lookup(k)
				if got != want || ok != (want != "") {
					t.Errorf("%s=%q (set %v), want %q", k, got, ok, want)
				}
			}
			if len(push.Notes) > 0 {
				t.Errorf("notes %q: the runner sends what Harness sends, without overriding", push.Notes)
			}
			if c.problem != "" {
				return
			}
			// What the step gets is what the plugin reads from it.
			s, err := loadSettings(push.Lookup, "/harness")
			if err != nil || push.Settings == nil || s.NoPush != push.Settings.NoPush || s.PushOnly != push.Settings.PushOnly {
				t.Errorf("settings %+v %v, plan's %+v", s, err, push.Settings)
			}
		})
	}
}

func TestParseTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{"10m": 10 * time.Minute, "1h 30m": 90 * time.Minute, "1d": 24 * time.Hour, "90s": 90 * time.Second, "1w2d": 9 * 24 * time.Hour, "500ms": 500 * time.Millisecond} {
		if got, err := ParseTimeout(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "10", "10 minutes", "1.5h"} {
		if _, err := ParseTimeout(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}
