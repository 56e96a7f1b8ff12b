package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/runid"
)

// runIDOf is the run identity hoist gives a step with env.
func runIDOf(env map[string]string) string {
	return runid.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }).ID
}

// jenkins is what Jenkins sets for build 7 of job app: CI=true, and none
// of the run variables hoist knows.
func jenkins() map[string]string {
	return map[string]string{"CI": "true", "JENKINS_URL": "https://jenkins.example.com/", "BUILD_NUMBER": "7", "BUILD_TAG": "jenkins-app-7",
		"GIT_COMMIT": droneCommit, "PATH": "/usr/local/bin:/usr/bin:/bin"}
}

// A CI that hoist does not know (Jenkins, Buildkite, CircleCI, Azure
// Pipelines, ... set CI=true) gives no run identity, and untracked
// state there is a restored cache as likely as this run's: it counts for
// nothing, and the message says how to name the run (PLUGIN_RUN_ID).
// Named so, the run's own scan lets its push through, and another run's
// record (another PLUGIN_RUN_ID) does not; an env file cannot name it.
func TestUnlistedCIFailsClosed(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoArchive, "PLUGIN_DESTINATIONS": reg.Host + "/probe/app:1"})
	digest := digestOf(t, reg, reg.Host+"/probe/app:1")
	checkout := func() string {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "README"), []byte("app\n"), 0o644)
		for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"-c", "user.name=x", "-c", "user.email=x@example.com", "commit", "-q", "-m", "app"}} {
			harness.Run(t, nil, "git", append([]string{"-C", dir}, args...)...)
		}
		return dir
	}
	push := func(dir, repo string, env ...map[string]string) result {
		return hoistIn(t, dir, merged(append([]map[string]string{jenkins(), {"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REQUIRE_SCAN": "true",
			"PLUGIN_SOURCE_TAR_PATH": f.SkopeoArchive, "PLUGIN_REPO": reg.Host + "/" + repo, "PLUGIN_TAGS": "1"}}, env...)...))
	}

	// The restored cache's record: untracked, naming no run.
	for _, ci := range []string{"true", "1", "yes", "TRUE"} {
		dir := checkout()
		plantRecord(t, dir, digest)
		r := push(dir, "unscanned/app", map[string]string{"CI": ci})
		if r.code != ExitScan {
			t.Errorf("CI=%s, a restored record: exit %d, want %d\n%s", ci, r.code, ExitScan, r)
		}
		assertContains(t, r, "is not this run's", "this step runs in a CI (CI="+ci+") that gives hoist no run identity",
			"set PLUGIN_RUN_ID (--run-id) to a value unique to this pipeline run", "nothing was pushed")
	}
	if tags := tagsOf(t, reg, "unscanned/app"); len(tags) > 0 {
		t.Errorf("pushed: %v", tags)
	}

	// Named by PLUGIN_RUN_ID (with the commit): the restored record names
	// no run; the run's own scan counts; another run's does not.
	dir := checkout()
	plantRecord(t, dir, digest)
	named := map[string]string{"PLUGIN_RUN_ID": "jenkins-app-7", "DRONE_COMMIT_SHA": droneCommit}
	r := push(dir, "named/app", named)
	if r.code != ExitScan {
		t.Errorf("PLUGIN_RUN_ID, a restored record: exit %d, want %d\n%s", r.code, ExitScan, r)
	}
	assertContains(t, r, "it names no run", "run jenkins-app-7 (PLUGIN_RUN_ID) at commit "+droneCommit[:12])
	if r := hoistIn(t, dir, merged(jenkins(), named, scanEnv(t, k)), "scan", f.SkopeoArchive); r.code != 0 {
		t.Fatalf("the run's scan:\n%s", r)
	}
	r = push(dir, "named/app", named)
	if r.code != 0 {
		t.Fatalf("the run's push after its scan:\n%s", r)
	}
	if got := digestOf(t, reg, reg.Host+"/named/app:1"); got != digest {
		t.Errorf("pushed %s, scanned %s", got, digest)
	}
	r = push(dir, "next/app", map[string]string{"PLUGIN_RUN_ID": "jenkins-app-8", "DRONE_COMMIT_SHA": droneCommit})
	if r.code != ExitScan {
		t.Errorf("another run's record: exit %d, want %d\n%s", r.code, ExitScan, r)
	}
	assertContains(t, r, "made by another run than this one (run jenkins-app-8 (PLUGIN_RUN_ID)")

	// An env file (the repository's) cannot name the run.
	os.WriteFile(filepath.Join(dir, "ci.env"), []byte("PLUGIN_RUN_ID=jenkins-app-7\n"), 0o644)
	r = push(dir, "envfile/app", map[string]string{"PLUGIN_ENV_FILE": "ci.env", "DRONE_COMMIT_SHA": droneCommit})
	if r.code != ExitSettings {
		t.Errorf("an env file that names the run: exit %d, want %d\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, "line 1 sets PLUGIN_RUN_ID, which an env file may not set")
	if tags := tagsOf(t, reg, "envfile/app"); len(tags) > 0 {
		t.Errorf("pushed: %v", tags)
	}
}

// The git hoist asks whether the repository tracks its state comes
// from an absolute directory of PATH: a relative entry (bin, or
// node_modules/.bin, as a developer's PATH may have) names the
// repository's own files, and its "git" never runs; the committed record
// is found tracked by the real git and refused. Not parallel: it changes
// the working directory, as a shell in the checkout has it.
func TestRepositoryGitIsNeverRun(t *testing.T) {
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoArchive, "PLUGIN_DESTINATIONS": reg.Host + "/probe/app:1"})
	digest := digestOf(t, reg, reg.Host+"/probe/app:1")

	dir := t.TempDir()
	plantRecord(t, dir, digest)
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	marker := filepath.Join(t.TempDir(), "ran")
	os.WriteFile(filepath.Join(dir, "bin", "git"), []byte("#!/bin/sh\necho \"$@\" > "+marker+"\nexit 1\n"), 0o755)
	gitCommitAll(t, dir) // the record and bin/git are committed
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	r := hoistIn(t, dir, map[string]string{"PATH": "bin:/usr/local/bin:/usr/bin:/bin", "PLUGIN_PUSH_ONLY": "true", "PLUGIN_REQUIRE_SCAN": "true",
		"PLUGIN_SOURCE_TAR_PATH": f.SkopeoArchive, "PLUGIN_REPO": reg.Host + "/unscanned/app", "PLUGIN_TAGS": "1"})
	if r.code != ExitScan {
		t.Errorf("a committed record: exit %d, want %d\n%s", r.code, ExitScan, r)
	}
	assertContains(t, r, "the repository "+dir+" tracks it")
	if ran, err := os.ReadFile(marker); err == nil {
		t.Errorf("the repository's bin/git ran: %q", strings.TrimSpace(string(ran)))
	}
	if tags := tagsOf(t, reg, "unscanned/app"); len(tags) > 0 {
		t.Errorf("pushed: %v", tags)
	}
}
