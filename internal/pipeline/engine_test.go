package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hoist-build/hoist/internal/engine"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----"

// The run's engine is configured for what its BuildKit steps ask of it,
// from their typed settings: one entry a registry, its access merged
// across steps (plain HTTP, no TLS verification, the CAs: PEM content
// written into the engine's directory, a file the checkout's), the base
// images' registry marked, the mirrors of every step. A push-only step and
// a Kaniko step ask nothing of it.
func TestEngineNeedsOfTheSteps(t *testing.T) {
	checkout := t.TempDir()
	os.WriteFile(filepath.Join(checkout, "ca.pem"), []byte("file CA"), 0o644)
	pl, probs := validate(t, "x.yaml", []byte(`pipeline:
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
                  identifier: insecure
                  type: BuildAndPushDockerRegistry
                  spec: {connectorRef: c, repo: reg.example.com/app, tags: [a], envVariables: {PLUGIN_INSECURE: "true", PLUGIN_REGISTRY_MIRRORS: "m1.example.com,m2.example.com"}}
              - step:
                  identifier: pem
                  type: BuildAndPushDockerRegistry
                  spec:
                    connectorRef: c
                    repo: reg.example.com/other
                    tags: [a]
                    envVariables: {PLUGIN_REGISTRY_CERTIFICATE: "`+strings.ReplaceAll(testCA, "\n", `\n`)+`", PLUGIN_BASE_IMAGE_REGISTRY: base.example.com, PLUGIN_REGISTRY_MIRRORS: m2.example.com}
              - step:
                  identifier: file
                  type: BuildAndPushDockerRegistry
                  spec: {connectorRef: c, repo: file.example.com/app, tags: [a], envVariables: {PLUGIN_REGISTRY_CERTIFICATE: /harness/ca.pem, PLUGIN_SKIP_TLS_VERIFY: "true"}}
              - step:
                  identifier: push
                  type: BuildAndPushDockerRegistry
                  spec: {connectorRef: c, repo: pushonly.example.com/app, tags: [a], envVariables: {PLUGIN_PUSH_ONLY: "true", PLUGIN_SOURCE_TAR_PATH: /harness/x.tar, PLUGIN_INSECURE: "true", PLUGIN_REGISTRY_MIRRORS: m3.example.com}}
`))
	if probs != nil {
		t.Fatal(probs)
	}
	dir := filepath.Join(t.TempDir(), "engine")
	r := &runner{plan: pl, o: RunOptions{Codebase: checkout, Lookup: func(string) (string, bool) { return "", false }}}
	regs, mirrors, err := r.engineNeeds(dir)
	if err != nil {
		t.Fatal(err)
	}
	pem := engine.CAFile(dir, testCA)
	if b, err := os.ReadFile(pem); err != nil || string(b) != testCA {
		t.Errorf("the PEM CA in the engine's directory: %q %v", b, err)
	}
	want := []engine.Registry{
		{Host: "base.example.com", CAFiles: []string{pem}, Base: true},
		{Host: "file.example.com", Insecure: true, CAFiles: []string{filepath.Join(checkout, "ca.pem")}},
		{Host: "reg.example.com", HTTP: true, CAFiles: []string{pem}},
	}
	if diff := cmp.Diff(want, regs); diff != "" {
		t.Errorf("registries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"m1.example.com", "m2.example.com"}, mirrors); diff != "" {
		t.Errorf("mirrors (-want +got):\n%s", diff)
	}
}
