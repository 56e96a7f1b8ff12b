package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The document's two tarball pipelines build in a stage that does not
// clone the codebase (cloneCodebase: false): each build finds no
// Dockerfile in the empty workspace. validate says so at each build step
// (it said ok, and run failed), with the fix; the push-only steps build
// nothing and are no problem.
func TestDocumentTarPipelinesCloneNoCodebase(t *testing.T) {
	for n, want := range map[string][]string{
		"tar-push-cloud": {"23:23 BuildGAR", "36:23 BuildECR", "51:23 BuildDocker", "64:23 BuildACR"},
		"tar-push-k8s":   {"25:23 BuildGAR", "39:23 BuildECR", "55:23 BuildDocker", "69:23 BuildACR"},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", "document", n+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		_, probs := validate(t, n+".yaml", b)
		if probs == nil {
			t.Fatalf("%s: no problems", n)
		}
		var got []string
		for _, it := range probs.Items {
			if strings.Contains(it.Msg, "does not clone the codebase") {
				id, _, _ := strings.Cut(strings.TrimPrefix(it.Msg, "step "), ":")
				got = append(got, it.Pos.String()+" "+id)
				stage := strings.TrimPrefix(strings.TrimPrefix(n, "tar-push-"), "")
				if !strings.Contains(it.Msg, "stage build_push_tar_"+stage+" does not clone the codebase (cloneCodebase is false or left out), so its workspace starts empty: the build's context . and Dockerfile Dockerfile are not there") ||
					it.Hint != "set spec.cloneCodebase: true on stage build_push_tar_"+stage+", or write the context in a Run step before this one" {
					t.Errorf("%s: %q (fix %q)", n, it.Msg, it.Hint)
				}
			}
		}
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("%s: the builds without a codebase %q, want %q:\n%v", n, got, want, probs)
		}
	}
}

// noClone is a stage without cloneCodebase (Harness's default: false)
// whose steps are the given flow mappings, each a group of its own, or a
// parallel group when one holds several lines.
func noClone(clone string, groups ...[]string) []byte {
	y := "pipeline:\n  identifier: p\n  stages:\n    - stage:\n        identifier: s\n        type: CI\n        spec:\n" + clone +
		"          runtime: {type: Cloud, spec: {}}\n          execution:\n            steps:\n"
	for _, g := range groups {
		if len(g) == 1 {
			y += "              - step: " + g[0] + "\n"
			continue
		}
		y += "              - parallel:\n"
		for _, s := range g {
			y += "                  - step: " + s + "\n"
		}
	}
	return []byte(y)
}

// A build in a stage that clones nothing: a problem when nothing before
// it can write its context, a warning (validate prints it, the step's
// log says it) when an earlier Run step can; a Run step in the same
// parallel group runs beside it, not before. A context that is not in
// the workspace, a push-only step and a stage that clones are none of
// it.
func TestBuildWithoutCodebase(t *testing.T) {
	const (
		build  = `{identifier: b, type: BuildAndPushDockerRegistry, spec: {connectorRef: c, repo: app, tags: ["1"], envVariables: {PLUGIN_NO_PUSH: "true"}}}`
		gen    = `{identifier: gen, type: Run, spec: {command: "printf 'FROM scratch\n' > Dockerfile"}}`
		remote = `{identifier: b, type: BuildAndPushDockerRegistry, spec: {connectorRef: c, repo: app, tags: ["1"], context: "https://github.com/example/app.git", envVariables: {PLUGIN_NO_PUSH: "true"}}}`
		abs    = `{identifier: b, type: BuildAndPushDockerRegistry, spec: {connectorRef: c, repo: app, tags: ["1"], context: /srv/app, envVariables: {PLUGIN_NO_PUSH: "true"}}}`
		push   = `{identifier: b, type: BuildAndPushDockerRegistry, spec: {connectorRef: c, repo: app, tags: ["1"], envVariables: {PLUGIN_PUSH_ONLY: "true", PLUGIN_SOURCE_TAR_PATH: /tmp/app.tar}}}`
	)
	// Nothing before it: a problem at the step.
	_, probs := validate(t, "x.yaml", noClone("", []string{build}))
	expect(t, probs, want{"11:23", "step b: stage s does not clone the codebase (cloneCodebase is false or left out), so its workspace starts empty: the build's context . and Dockerfile Dockerfile are not there (no earlier Run step of the stage writes them)",
		"set spec.cloneCodebase: true on stage s, or write the context in a Run step before this one"})
	_, probs = validate(t, "x.yaml", noClone("          cloneCodebase: false\n", []string{build}))
	expect(t, probs, want{"12:23", "step b: stage s does not clone the codebase", ""})
	// A Run step beside it, in its parallel group, runs at the same time.
	_, probs = validate(t, "x.yaml", noClone("", []string{gen, build}))
	expect(t, probs, want{"13:27", "step b: stage s does not clone the codebase", ""})

	// An earlier Run step may write the context: a warning, no problem.
	pl, probs := validate(t, "x.yaml", noClone("", []string{gen}, []string{build}))
	if probs != nil {
		t.Fatalf("a build after a Run step is refused: %v", probs)
	}
	lines := pl.WarningLines()
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "x.yaml:12:23: warning: step b: stage s does not clone the codebase") ||
		!strings.Contains(lines[0], "are there only if an earlier Run step of the stage writes them") || !strings.Contains(lines[0], "fix: set spec.cloneCodebase: true on stage s") {
		t.Errorf("warnings %q", lines)
	}
	for s, pd := range pl.Steps {
		if s.Identifier == "b" && (len(pd.Notes) != 1 || !strings.HasPrefix(pd.Notes[0], "warning: step b: stage s does not clone the codebase")) {
			t.Errorf("the step's notes %q lack the warning", pd.Notes)
		}
	}

	// None of it.
	for name, y := range map[string][]byte{
		"remote context":  noClone("", []string{remote}),
		"context outside": noClone("", []string{abs}),
		"push-only":       noClone("", []string{push}),
		"cloned":          noClone("          cloneCodebase: true\n", []string{build}),
	} {
		pl, probs := validate(t, "x.yaml", y)
		if probs != nil || len(pl.Warnings) > 0 {
			t.Errorf("%s: %v %q", name, probs, pl.WarningLines())
		}
	}
}
