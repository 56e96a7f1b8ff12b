package runid

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/gitcmd"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Each CI's run variables name the run; the commit and every run
// variable change the identity; the first CI present wins.
func TestFromEnv(t *testing.T) {
	drone := map[string]string{"DRONE_REPO": "acme/app", "DRONE_BUILD_NUMBER": "12", "DRONE_COMMIT_SHA": "1a2b3c4d5e6f7a8b9c0d"}
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"none", map[string]string{"CI": "true", "DRONE_COMMIT_SHA": "abc"}, ""},
		{"harness", map[string]string{"HARNESS_EXECUTION_ID": "Xy12", "DRONE_BUILD_NUMBER": "3", "DRONE_COMMIT_SHA": "abc"}, "Harness execution Xy12 at commit abc"},
		{"drone", drone, "Drone build acme/app#12 at commit 1a2b3c4d5e6f"},
		{"woodpecker", map[string]string{"CI_REPO": "acme/app", "CI_PIPELINE_NUMBER": "7"}, "Woodpecker pipeline acme/app#7"},
		{"github", map[string]string{"GITHUB_RUN_ID": "99", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_REPOSITORY": "acme/app", "GITHUB_SHA": "ffff"}, "GitHub Actions run acme/app#99 attempt 2 at commit ffff"},
		{"gitlab", map[string]string{"CI_PIPELINE_ID": "5", "CI_PROJECT_PATH": "g/p", "CI_COMMIT_SHA": "eeee"}, "GitLab CI pipeline g/p#5 at commit eeee"},
	}
	for _, c := range cases {
		r := FromEnv(lookup(c.env))
		if r.Name != c.want || (c.want == "") != (r.ID == "") || (r.ID != "" && !strings.HasPrefix(r.ID, "sha256:")) {
			t.Errorf("%s: %q %q, want %q", c.name, r.Name, r.ID, c.want)
		}
	}
	base := FromEnv(lookup(drone)).ID
	for k, v := range map[string]string{"DRONE_BUILD_NUMBER": "13", "DRONE_REPO": "acme/other", "DRONE_COMMIT_SHA": "ffff", "DRONE_BUILD_CREATED": "1700000000"} {
		m := map[string]string{}
		for a, b := range drone {
			m[a] = b
		}
		m[k] = v
		if id := FromEnv(lookup(m)).ID; id == base {
			t.Errorf("%s=%s gives the same identity", k, v)
		}
	}
	if again := FromEnv(lookup(drone)).ID; again != base {
		t.Errorf("the same variables give %s and %s", base, again)
	}
	// Drone's runner sets DRONE_BUILD_STARTED to the time each step
	// starts while the build's own start is unset (the first stage of a
	// build; every drone-runner-docker exec): the steps of one build see
	// different values, and are one run. DRONE_BUILD_CREATED is the
	// build's and the same in every step (TestDroneRunner).
	step := func(started string) map[string]string {
		return map[string]string{"DRONE_REPO": "acme/app", "DRONE_BUILD_NUMBER": "12", "DRONE_COMMIT_SHA": "1a2b3c4d5e6f7a8b9c0d",
			"DRONE_BUILD_CREATED": "1796441795", "DRONE_BUILD_STARTED": started}
	}
	if first, second := FromEnv(lookup(step("1796441795"))).ID, FromEnv(lookup(step("1796441798"))).ID; first != second {
		t.Errorf("two steps of one Drone build are two runs (DRONE_BUILD_STARTED differs): %s, %s", first, second)
	}
}

// With a run identity the stamp must be this run's; without one, the
// stamp must be empty and git must not track the file.
func TestMade(t *testing.T) {
	this := FromEnv(lookup(map[string]string{"DRONE_BUILD_NUMBER": "12", "DRONE_COMMIT_SHA": "abc"}))
	other := FromEnv(lookup(map[string]string{"DRONE_BUILD_NUMBER": "11", "DRONE_COMMIT_SHA": "abc"}))
	f := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(f, []byte("{}"), 0o644)
	if err := this.Made(context.Background(), this.ID, f); err != nil {
		t.Errorf("this run's stamp: %v", err)
	}
	for _, c := range []struct {
		run   Run
		stamp string
		want  string
	}{
		{this, other.ID, "made by another run than this one (Drone build #12 at commit abc)"},
		{this, "", "it names no run"},
		{Run{}, this.ID, "made by a CI run, and this step has no run identity"},
	} {
		err := c.run.Made(context.Background(), c.stamp, f)
		if !errors.Is(err, ErrNotThisRun) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("stamp %q for %q: %v, want %q", c.stamp, c.run.Name, err, c.want)
		}
	}

	// No run identity: outside a git work tree, trusted.
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git is needed: ", err)
	}
	local := Run{git: gitcmd.Git(git)}
	if err := local.Made(context.Background(), "", f); err != nil {
		t.Errorf("outside a work tree: %v", err)
	}
	// Inside one: trusted when untracked, not when committed, not when
	// git is missing.
	repo := t.TempDir()
	gitIn := func(args ...string) {
		cmd := exec.Command(git, append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitIn("init", "-q")
	state := filepath.Join(repo, ".hoist", "scans", "sha256")
	os.MkdirAll(state, 0o755)
	committed, untracked := filepath.Join(state, "a.json"), filepath.Join(state, "b.json")
	os.WriteFile(committed, []byte("{}"), 0o644)
	gitIn("add", ".hoist")
	gitIn("commit", "-q", "-m", "state")
	os.WriteFile(untracked, []byte("{}"), 0o644)
	if err := local.Made(context.Background(), "", untracked); err != nil {
		t.Errorf("untracked: %v", err)
	}
	if err := local.Made(context.Background(), "", committed); !errors.Is(err, ErrNotThisRun) || !strings.Contains(err.Error(), "the repository "+repo+" tracks it") {
		t.Errorf("committed: %v", err)
	}
	if err := (Run{}).Made(context.Background(), "", untracked); !errors.Is(err, ErrNotThisRun) || !strings.Contains(err.Error(), "git is not in an absolute directory of PATH") {
		t.Errorf("no git: %v", err)
	}
	// FromEnv finds git on the step's PATH, not the process's.
	if r := FromEnv(lookup(map[string]string{"PATH": filepath.Dir(git)})); string(r.git) != git {
		t.Errorf("git from PATH: %q", r.git)
	}
	if r := FromEnv(lookup(map[string]string{"PATH": t.TempDir()})); r.git != "" {
		t.Errorf("git from an empty PATH: %q", r.git)
	}
	// A relative file is in the step's workspace, not the process's
	// working directory.
	ws := New(Config{Lookup: lookup(map[string]string{"PATH": filepath.Dir(git)}), Dir: repo})
	if err := ws.Made(context.Background(), "", filepath.Join(".hoist", "scans", "sha256", "a.json")); !errors.Is(err, ErrNotThisRun) || !strings.Contains(err.Error(), "tracks it") {
		t.Errorf("a relative committed file: %v", err)
	}
	if err := ws.Made(context.Background(), "", filepath.Join(".hoist", "scans", "sha256", "b.json")); err != nil {
		t.Errorf("a relative untracked file: %v", err)
	}
}

// A CI that gives no identity hoist knows (CI=true, 1 or yes, as Jenkins,
// Buildkite, CircleCI, ... set it) fails closed: nothing counts, untracked
// or not, and the message says how to name the run. PLUGIN_RUN_ID names
// it, with the commit, before any CI's variables.
func TestUnlistedCI(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git is needed: ", err)
	}
	f := filepath.Join(t.TempDir(), "state.json") // outside a work tree
	os.WriteFile(f, []byte("{}"), 0o644)
	for _, v := range []string{"true", "1", "yes", "True"} {
		r := FromEnv(lookup(map[string]string{"CI": v, "JENKINS_URL": "https://ci/", "BUILD_TAG": "jenkins-app-7", "PATH": filepath.Dir(git)}))
		err := r.Made(context.Background(), "", f)
		if !errors.Is(err, ErrNotThisRun) || !strings.Contains(err.Error(), "this step runs in a CI (CI="+v+") that gives hoist no run identity") ||
			!strings.Contains(err.Error(), "set PLUGIN_RUN_ID (--run-id)") {
			t.Errorf("CI=%s: %v", v, err)
		}
	}
	for _, v := range []string{"", "false", "0"} {
		if err := FromEnv(lookup(map[string]string{"CI": v, "PATH": filepath.Dir(git)})).Made(context.Background(), "", f); err != nil {
			t.Errorf("CI=%q: %v", v, err)
		}
	}

	env := lookup(map[string]string{"CI": "true", "DRONE_BUILD_NUMBER": "12", "DRONE_COMMIT_SHA": "abc"})
	named := New(Config{Lookup: env, RunID: "jenkins-app-7", Commit: "1a2b3c4d5e6f7a8b"})
	if named.Name != "run jenkins-app-7 (PLUGIN_RUN_ID) at commit 1a2b3c4d5e6f" || !strings.HasPrefix(named.ID, "sha256:") || named.ID == FromEnv(env).ID {
		t.Errorf("PLUGIN_RUN_ID: %q %q", named.Name, named.ID)
	}
	for _, c := range []Config{{Lookup: env, RunID: "jenkins-app-8", Commit: "1a2b3c4d5e6f7a8b"}, {Lookup: env, RunID: "jenkins-app-7", Commit: "ffff"}, {Lookup: env, RunID: "jenkins-app-7"}} {
		if New(c).ID == named.ID {
			t.Errorf("%q at %q gives the same identity", c.RunID, c.Commit)
		}
	}
	if err := named.Made(context.Background(), named.ID, f); err != nil {
		t.Errorf("the named run's own state: %v", err)
	}
}

// git is taken from an absolute directory of PATH only: a relative entry
// (the repository's bin/) is skipped, whatever the working directory.
func TestGitFromAbsolutePathOnly(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git is needed: ", err)
	}
	repo := t.TempDir()
	os.MkdirAll(filepath.Join(repo, "bin"), 0o755)
	os.WriteFile(filepath.Join(repo, "bin", "git"), []byte("#!/bin/sh\nexit 1\n"), 0o755)
	t.Chdir(repo)
	for _, p := range []string{"bin:" + filepath.Dir(git), ":" + filepath.Dir(git), ".:bin:" + filepath.Dir(git)} {
		if r := FromEnv(lookup(map[string]string{"PATH": p})); string(r.git) != git {
			t.Errorf("PATH=%s: git %q, want %s", p, r.git, git)
		}
	}
	if r := FromEnv(lookup(map[string]string{"PATH": "bin"})); r.git != "" {
		t.Errorf("PATH=bin: git %q", r.git)
	}
}
