package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/settings"
)

// modePipeline has, on one stage, a build-only step saying so with
// PLUGIN_DRY_RUN (the alias of PLUGIN_NO_PUSH the settings honour), a
// push-only step handing its image over, and a step that builds and
// pushes.
const modePipeline = `pipeline:
  identifier: x
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
                  identifier: dry
                  type: BuildAndPushDockerRegistry
                  spec: {connectorRef: c, repo: dry.example.com/app, tags: [a], envVariables: {PLUGIN_DRY_RUN: "true", PLUGIN_NETWORK: host}}
              - step:
                  identifier: push
                  type: BuildAndPushDockerRegistry
                  spec: {connectorRef: c, repo: push.example.com/app, tags: [a], envVariables: {PLUGIN_PUSH_ONLY: "true", PLUGIN_SOURCE_IMAGE: dry.example.com/app:a}}
              - step:
                  identifier: both
                  type: BuildAndPushDockerRegistry
                  spec: {connectorRef: c, repo: both.example.com/app, tags: [a], envVariables: {PLUGIN_NETWORK: host}}
`

// A step with PLUGIN_DRY_RUN=true is a no-push step everywhere the runner
// decides by mode: its typed settings say no-push, it pushes nothing, it
// builds (in the run's engine, so the engine is needed and the step's
// network counts), its image hands over to a push-only step, no local
// registry stands in for its registry, and the report lists nothing
// pushed even when its outputs name references.
func TestDryRunIsNoPush(t *testing.T) {
	pl, probs := validate(t, "x.yaml", []byte(modePipeline))
	if probs != nil {
		t.Fatal(probs)
	}
	steps := map[string]*Planned{}
	for _, pd := range pl.Steps {
		steps[pd.Step.Identifier] = pd
	}
	dry, push, both := steps["dry"], steps["push"], steps["both"]
	if dry.Settings == nil || !dry.Settings.NoPush || dry.Settings.Origin("no-push") != "PLUGIN_DRY_RUN" {
		t.Fatalf("dry: settings %+v", dry.Settings)
	}
	if dry.Pushes || !dry.Builds() || !dry.BuildsInEngine() || dry.PushOnly() {
		t.Errorf("dry: pushes %v, builds %v, in the engine %v, push-only %v", dry.Pushes, dry.Builds(), dry.BuildsInEngine(), dry.PushOnly())
	}
	if !push.PushOnly() || push.Builds() || !push.Pushes || !both.Pushes || !both.Builds() {
		t.Errorf("push: push-only %v builds %v pushes %v; both: pushes %v builds %v", push.PushOnly(), push.Builds(), push.Pushes, both.Pushes, both.Builds())
	}
	r := &runner{plan: pl}
	if !r.needsEngine() {
		t.Error("the dry-run step builds: the run needs its engine")
	}
	if got := r.engineNetwork(); got != "host" {
		t.Errorf("engine network %q: every building step asks for host", got)
	}
	if diff := cmp.Diff([]string{"both.example.com", "push.example.com"}, pl.localHosts()); diff != "" {
		t.Errorf("local registries (-want +got):\n%s", diff)
	}
	// Outputs naming references (as a file an earlier run left would):
	// a no-push step reports none of them pushed.
	out := map[string]string{"digest": "sha256:" + strings.Repeat("a", 64), "IMAGE_REFS": "dry.example.com/app:a"}
	rep := &StepReport{}
	containerReport(rep, dry, out, t.TempDir(), true)
	if len(rep.Pushed) != 0 || rep.Digest != out["digest"] {
		t.Errorf("dry: reported %+v", rep)
	}
	rep = &StepReport{}
	containerReport(rep, both, out, t.TempDir(), true)
	if len(rep.Pushed) != 1 {
		t.Errorf("both: reported %+v", rep)
	}
}

// The base-image connector is a typed field of the planned step; no
// entry of the environment a runner sends is anything but a variable.
func TestBaseConnectorIsTyped(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte(`connectors:
  hub: {type: docker, url: https://index.docker.io/v1/, username: me, password: "<+secrets.getValue(\"pw\")>"}
  base: {type: docker, url: https://base.example.com, username: bu, password: "<+secrets.getValue(\"bp\")>"}
`), 0o644)
	conns, err := ReadConnectors(file)
	if err != nil {
		t.Fatal(err)
	}
	env, pd := stepEnv(t, cloud, "identifier: b\ntype: BuildAndPushDockerRegistry\nspec: {connectorRef: hub, repo: app, tags: [\"1\"], baseImageConnectorRefs: [base]}", conns)
	if pd.BaseConnector != "base" {
		t.Errorf("base connector %q", pd.BaseConnector)
	}
	for _, e := range pd.Env {
		if !envName.MatchString(e.Name) {
			t.Errorf("environment entry %q is not a variable name", e.Name)
		}
	}
	if !slices.Contains(env, "PLUGIN_BASE_IMAGE_REGISTRY=https://base.example.com") || !slices.Contains(env, "PLUGIN_BASE_IMAGE_USERNAME=bu") {
		t.Errorf("the base connector's credentials are not in the environment: %q", env)
	}
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// An AquaTrivy step's spec is set on its typed settings: what it scans
// and its fail_on_severity, over hoist's own PLUGIN_SCAN_* values.
func TestScanSettingsFromSpec(t *testing.T) {
	ws := t.TempDir()
	load := func() *settings.Settings {
		s, err := loadSettings(func(k string) (string, bool) {
			v, ok := map[string]string{"PLUGIN_SCAN_SEVERITY": "LOW", "PLUGIN_SOURCE_IMAGE": "left/over:1"}[k]
			return v, ok
		}, ws)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := load()
	scanSettings(s, scanSpec{ImageType: "local_archive", Archive: "/harness/image.tar", Severity: "HIGH,CRITICAL"}, ws)
	if s.SourceTarPath != ws+"/image.tar" || s.SourceImage != "" || !slices.Equal(s.ScanSeverity, []string{"HIGH", "CRITICAL"}) || s.ScanExitCode != 7 || s.Progress != "plain" {
		t.Errorf("local_archive: %q %q %q %d %q", s.SourceTarPath, s.SourceImage, s.ScanSeverity, s.ScanExitCode, s.Progress)
	}
	s = load()
	scanSettings(s, scanSpec{ImageType: "docker_v2", Image: "reg.example.com/app:1", Severity: "none"}, ws)
	if s.SourceTarPath != "" || s.SourceImage != "reg.example.com/app:1" || s.ScanExitCode != 0 || !slices.Equal(s.ScanSeverity, []string{"LOW"}) {
		t.Errorf("docker_v2: %q %q %q %d", s.SourceTarPath, s.SourceImage, s.ScanSeverity, s.ScanExitCode)
	}
}

// A Build and Push step that skips (auto_tag on a branch that is neither
// a tag nor the default one, as the peers skip) ends successfully in a
// run, saying why, and reports nothing pushed.
func TestBuildStepThatSkips(t *testing.T) {
	r := &runner{mask: mask.NewSet(), temp: t.TempDir()}
	pd := &Planned{Step: &Step{Identifier: "a", Stage: &Stage{Identifier: "s"}}, Env: []kv{
		{Name: "PLUGIN_REPO", Value: "r.example/app"}, {Name: "PLUGIN_AUTO_TAG", Value: "true"},
		{Name: "DRONE_COMMIT_REF", Value: "refs/heads/feature"}, {Name: "DRONE_REPO_BRANCH", Value: "main"}}}
	var log strings.Builder
	rep := &StepReport{}
	if err := r.buildStep(context.Background(), pd, t.TempDir(), outputFiles{}, &log, rep); err != nil {
		t.Fatalf("a skipped step failed: %v", err)
	}
	if want := "skipping automated docker build for refs/heads/feature: it is neither a tag nor the default branch"; !strings.Contains(log.String(), want) {
		t.Errorf("log %q does not say %q", log.String(), want)
	}
	if len(rep.Pushed) != 0 || rep.Digest != "" {
		t.Errorf("reported %+v", rep)
	}
}
