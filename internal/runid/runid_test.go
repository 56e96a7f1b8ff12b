package runid

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	for k, v := range map[string]string{"DRONE_BUILD_NUMBER": "13", "DRONE_REPO": "acme/other", "DRONE_COMMIT_SHA": "ffff", "DRONE_BUILD_STARTED": "1700000000"} {
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
}

// With a run identity the stamp must be this run's; without one, the
// stamp must be empty and git must not track the file.
func TestMade(t *testing.T) {
	this := FromEnv(lookup(map[string]string{"DRONE_BUILD_NUMBER": "12", "DRONE_COMMIT_SHA": "abc"}))
	other := FromEnv(lookup(map[string]string{"DRONE_BUILD_NUMBER": "11", "DRONE_COMMIT_SHA": "abc"}))
	f := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(f, []byte("{}"), 0o644)
	if err := this.Made(this.ID, f); err != nil {
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
		err := c.run.Made(c.stamp, f)
		if !errors.Is(err, ErrNotThisRun) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("stamp %q for %q: %v, want %q", c.stamp, c.run.Name, err, c.want)
		}
	}

	// No run identity: outside a git work tree, trusted.
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git is needed: ", err)
	}
	local := Run{git: git}
	if err := local.Made("", f); err != nil {
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
	if err := local.Made("", untracked); err != nil {
		t.Errorf("untracked: %v", err)
	}
	if err := local.Made("", committed); !errors.Is(err, ErrNotThisRun) || !strings.Contains(err.Error(), "the repository "+repo+" tracks it") {
		t.Errorf("committed: %v", err)
	}
	if err := (Run{}).Made("", untracked); !errors.Is(err, ErrNotThisRun) || !strings.Contains(err.Error(), "git is not on PATH") {
		t.Errorf("no git: %v", err)
	}
	// FromEnv finds git on the step's PATH, not the process's.
	if r := FromEnv(lookup(map[string]string{"PATH": filepath.Dir(git)})); r.git != git {
		t.Errorf("git from PATH: %q", r.git)
	}
	if r := FromEnv(lookup(map[string]string{"PATH": t.TempDir()})); r.git != "" {
		t.Errorf("git from an empty PATH: %q", r.git)
	}
}
