package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The secrets of the hostile pipelines (testdata/hostile): every one is
// in the secrets file, so every one is masked wherever a run prints it.
var hostileSecrets = map[string]string{
	"tok":    "SuperSecretTok3n_value42",
	"quoted": `Qu0ted"Secret\Tok3n_v4lue`,
	"branch": "release-Br4nchSecret-77",
	"name":   "repo-s3cretname-5521",
	"host":   "reg-s3crethost-8831.example.com",
}

// hostileLeaks are what must appear nowhere: each secret, and a part of
// each that survives any quoting (the quoted secret escaped by %q
// still holds "Tok3n_v4lue").
var hostileLeaks = []string{"SuperSecretTok3n_value42", "Tok3n_v4lue", "Br4nchSecret", "s3cretname", "s3crethost"}

// hostileCheckout is a checkout holding testdata/hostile under hostile/,
// and the secrets file of its pipelines, outside it.
func hostileCheckout(t *testing.T) (dir, secrets string) {
	t.Helper()
	extra := map[string]string{}
	entries, err := os.ReadDir(filepath.Join("testdata", "hostile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", "hostile", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		extra["hostile/"+e.Name()] = string(b)
	}
	var lines strings.Builder
	for k, v := range hostileSecrets {
		lines.WriteString(k + "=" + v + "\n")
	}
	secrets = filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(secrets, []byte(lines.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return checkout(t, extra), secrets
}

// assertNoLeak checks that nothing a run wrote (its output, its report
// file when there is one) holds a secret of the hostile pipelines.
func assertNoLeak(t *testing.T, r result, report string) {
	t.Helper()
	assertNotContains(t, r, hostileLeaks...)
	b, err := os.ReadFile(report)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, l := range hostileLeaks {
		if strings.Contains(string(b), l) {
			t.Errorf("the report holds %q:\n%s", l, b)
		}
	}
}

// Issue 24, item 4: a Build and Push step whose repo, or whose
// PLUGIN_NO_PUSH, is a secret fails planning with a problem that quotes
// the value. hoist pipeline run prints it masked, a secret with a quote
// and a backslash (escaped by the message's %q) too, and writes no
// report (nothing ran); hoist pipeline validate, which reads no secret,
// prints the placeholder, also when the secret is in its environment.
func TestPipelineSecretInStepSettingsIsMasked(t *testing.T) {
	t.Parallel()
	dir, secrets := hostileCheckout(t)
	report := filepath.Join(t.TempDir(), "report.json")
	r := hoistIn(t, dir, pipelineEnv(t), "pipeline", "run", "hostile/secret-settings.yaml", "--local", "--secrets", secrets, "--report", report)
	if r.code != ExitSettings {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, "3 problem(s)",
		`step repo: invalid destination: PLUGIN_REPO "****": repository can only contain`,
		`step nopush: PLUGIN_NO_PUSH="****": want true or false`,
		`step quoted: PLUGIN_NO_PUSH="****": want true or false`)
	assertNoLeak(t, r, report)
	if _, err := os.Stat(report); !os.IsNotExist(err) {
		t.Errorf("a report was written for a run that ran nothing: %v", err)
	}

	env := pipelineEnv(t)
	for k, v := range hostileSecrets {
		env[k] = v
	}
	r = hoistIn(t, dir, env, "pipeline", "validate", "hostile/secret-settings.yaml")
	if r.code != ExitSettings {
		t.Errorf("validate: exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, `step nopush: PLUGIN_NO_PUSH="secret-placeholder": want true or false`,
		`step quoted: PLUGIN_NO_PUSH="secret-placeholder": want true or false`)
	assertNoLeak(t, r, "")
}

// Issue 24, item 4, once steps run: a step skipped by auto-tag says which
// ref it skips, and a step pushes to a repository whose name is a
// secret. The log, the summary, the report's pushed references and the
// local registry's contents name them masked. The push landed under the
// secret's name: crane reads that reference back from the local
// registry, with the digest the report gives.
func TestPipelineRunOutputAndReportAreMasked(t *testing.T) {
	t.Parallel()
	dir, secrets := hostileCheckout(t)
	r, rep := pipelineRun(t, dir, pipelineEnv(t), "hostile/secret-run.yaml", "--local", "--keep", "--secrets", secrets)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r)
	}
	assertContains(t, r, "[s.skip] skipping automated docker build for refs/heads/****: it is neither a tag nor the default branch",
		"[s.push] pushed index.docker.io/myorg/****:1 sha256:", "index.docker.io/myorg/****:1\n", "docker.io/myorg/****:1  sha256:")
	push := stepOf(t, rep, "push")
	if len(push.Pushed) != 1 || push.Pushed[0].Ref != "index.docker.io/myorg/****:1" {
		t.Errorf("the report's pushed references: %+v", push.Pushed)
	}
	reg := localRegistry(t, rep, "index.docker.io")
	if got := reg.Digest(t, reg.Host+"/myorg/"+hostileSecrets["name"]+":1"); got != push.Digest || got == "" {
		t.Errorf("the local registry holds %s, the report says %s", got, push.Digest)
	}
	b, _ := json.Marshal(rep)
	for _, l := range hostileLeaks {
		if strings.Contains(string(b), l) {
			t.Errorf("the report holds %q:\n%s", l, b)
		}
	}
	assertNotContains(t, r, hostileLeaks...)
}

// Issue 24, item 4, an error of the run itself: the local registry for a
// host that is a secret does not start, and the error that says so
// names the host masked.
func TestPipelineRunErrorIsMasked(t *testing.T) {
	t.Parallel()
	dir, secrets := hostileCheckout(t)
	bin := filepath.Join(t.TempDir(), "registry")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'refusing to serve' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "report.json")
	r := hoistIn(t, dir, pipelineEnv(t), "pipeline", "run", "hostile/secret-host.yaml", "--local", "--registry-binary", bin, "--secrets", secrets, "--report", report)
	if r.code == 0 {
		t.Errorf("exit 0:\n%s", r)
	}
	assertContains(t, r, "the registry for **** did not start: it exited", "refusing to serve")
	assertNoLeak(t, r, report)
}

// A secret that holds a list (tags: one secret "v1,part") fails the
// step's settings on its second part; the message quotes the part, masked.
func TestPipelineListSecretIsMaskedByPart(t *testing.T) {
	t.Parallel()
	dir := checkout(t, map[string]string{"leak.yaml": oneStage("leak",
		`{identifier: b, type: BuildAndPushDockerRegistry, spec: {connectorRef: d, repo: org/app, tags: <+secrets.getValue("TOK")>}}`)})
	secrets := secretsFile(t, "TOK=v1,Sup3r$ecret!Part\n")
	r := hoistIn(t, dir, map[string]string{"HOME": t.TempDir()}, "pipeline", "run", "leak.yaml", "--local", "--secrets", secrets)
	if r.code != ExitSettings {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, `tag "****"`)
	assertNotContains(t, r, "Sup3r", "ecret!Part")
}
