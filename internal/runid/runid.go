// Package runid names the CI pipeline run a step belongs to, and says
// whether state found in the workspace (a scan record, a compressed layer
// of the cache, an entry of the image store) was made by that run.
//
// The state directory (.hoist) lies in the checkout: a repository can
// commit it, and a restored cache can bring it from another branch's run.
// So state vouches for something only when hoist stamped it with this
// run's identity: the CI's per-run variables and, when the CI gives it,
// the commit. A file committed to the repository cannot hold the hash of
// its own commit, and a cache restored from another run has another run
// number. Without a run identity (a person's command line, outside CI),
// state is trusted only when the repository does not track it (git
// ls-files).
//
// Nothing here reads the process environment: FromEnv takes the step's.
package runid

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Run is one pipeline run. The zero Run is "no run identity".
type Run struct {
	// ID is what hoist stores: the digest of the CI's name, its per-run
	// variables and the commit ("" outside CI).
	ID string
	// Name says the same for people: "Drone build acme/app#12 at commit
	// 1a2b3c4d5e6f".
	Name string
	// git is the git executable from the step's PATH ("" when absent).
	git string
}

// Variables are the CI's per-run variables, in the order they are looked
// for (the first CI whose run variable is set names the run), for docs and
// messages.
var Variables = []struct {
	CI string
	// Run are the variables that name the run: the first is required,
	// the others are added when set.
	Run []string
	// Commit names the commit when it is set.
	Commit string
}{
	{"Harness", []string{"HARNESS_EXECUTION_ID"}, "DRONE_COMMIT_SHA"},
	{"Drone", []string{"DRONE_BUILD_NUMBER", "DRONE_REPO", "DRONE_BUILD_STARTED"}, "DRONE_COMMIT_SHA"},
	{"Woodpecker", []string{"CI_PIPELINE_NUMBER", "CI_REPO"}, "CI_COMMIT_SHA"},
	{"GitHub Actions", []string{"GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_REPOSITORY"}, "GITHUB_SHA"},
	{"GitLab CI", []string{"CI_PIPELINE_ID", "CI_PROJECT_PATH"}, "CI_COMMIT_SHA"},
}

// Known is the list of the variables that give a run identity, for
// messages: HARNESS_EXECUTION_ID, DRONE_BUILD_NUMBER, ...
func Known() string {
	var names []string
	for _, v := range Variables {
		names = append(names, v.Run[0])
	}
	return strings.Join(names, ", ")
}

// FromEnv is the run of a step whose environment lookup gives: the first
// CI of Variables whose run variable is set. The git executable is looked
// for on the step's PATH.
func FromEnv(lookup func(string) (string, bool)) Run {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	path, _ := lookup("PATH")
	r := Run{git: findGit(path)}
	for _, v := range Variables {
		if get(v.Run[0]) == "" {
			continue
		}
		h := sha256.New()
		fmt.Fprintf(h, "hoist run\nci=%s\n", v.CI)
		for _, k := range v.Run {
			fmt.Fprintf(h, "%s=%s\n", k, get(k))
		}
		commit := get(v.Commit)
		fmt.Fprintf(h, "%s=%s\n", v.Commit, commit)
		r.ID = fmt.Sprintf("sha256:%x", h.Sum(nil))
		r.Name = v.CI + " " + runName(v.CI, get)
		if commit != "" {
			r.Name += " at commit " + short(commit)
		}
		return r
	}
	return r
}

// runName is how each CI names a run.
func runName(ci string, get func(string) string) string {
	switch ci {
	case "Harness":
		return "execution " + get("HARNESS_EXECUTION_ID")
	case "Drone":
		return "build " + withRepo(get("DRONE_REPO"), get("DRONE_BUILD_NUMBER"))
	case "Woodpecker":
		return "pipeline " + withRepo(get("CI_REPO"), get("CI_PIPELINE_NUMBER"))
	case "GitHub Actions":
		n := "run " + withRepo(get("GITHUB_REPOSITORY"), get("GITHUB_RUN_ID"))
		if a := get("GITHUB_RUN_ATTEMPT"); a != "" {
			n += " attempt " + a
		}
		return n
	}
	return "pipeline " + withRepo(get("CI_PROJECT_PATH"), get("CI_PIPELINE_ID"))
}

func withRepo(repo, n string) string {
	if repo == "" {
		return "#" + n
	}
	return repo + "#" + n
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// Known reports whether the step has a run identity.
func (r Run) Known() bool { return r.ID != "" }

// String is the run for people.
func (r Run) String() string {
	if r.ID == "" {
		return "no run identity (none of " + Known() + " is set)"
	}
	return r.Name
}

// ErrNotThisRun marks state that this run did not make.
var ErrNotThisRun = errors.New("not made by this run")

// Reason is why Made refused state, without ErrNotThisRun's words.
func Reason(err error) string {
	return strings.TrimPrefix(err.Error(), ErrNotThisRun.Error()+": ")
}

// Made says whether state stamped with id (the ID of the run that wrote
// it, "" for none) in file was made by this run: nil when it was, else an
// error wrapping ErrNotThisRun that says why not. With a run identity the
// stamp must be this run's. Without one, the stamp must be empty too, and
// the repository must not track file: outside a git work tree it is
// trusted; inside one, git must be on the step's PATH to tell.
func (r Run) Made(id, file string) error {
	switch {
	case r.ID != "" && id == "":
		return fmt.Errorf("%w: it names no run (it was made outside CI, by an older hoist, or not by hoist), and this is %s", ErrNotThisRun, r.Name)
	case r.ID != "" && id != r.ID:
		return fmt.Errorf("%w: it was made by another run than this one (%s): an earlier build, another branch's cache, or not by hoist", ErrNotThisRun, r.Name)
	case r.ID == "" && id != "":
		return fmt.Errorf("%w: it was made by a CI run, and this step has no run identity (none of %s is set)", ErrNotThisRun, Known())
	case r.ID != "":
		return nil
	}
	return r.untracked(file)
}

// gitWait bounds one git ls-files.
const gitWait = 10 * time.Second

// untracked checks that the repository whose work tree holds file (if
// any) does not track it.
func (r Run) untracked(file string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotThisRun, err)
	}
	root := workTree(filepath.Dir(abs))
	if root == "" {
		return nil
	}
	why := "this step has no run identity (none of " + Known() + " is set)"
	if r.git == "" {
		return fmt.Errorf("%w: it lies in the git work tree %s, git is not on PATH to tell whether the repository tracks it, and %s", ErrNotThisRun, root, why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), gitWait)
	defer cancel()
	// No configuration of the repository's or the user's runs anything:
	// only the index is read.
	cmd := exec.CommandContext(ctx, r.git, "-c", "safe.directory=*", "-c", "core.fsmonitor=false",
		"-C", filepath.Dir(abs), "ls-files", "--error-unmatch", "--", filepath.Base(abs))
	cmd.Env = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_TERMINAL_PROMPT=0", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return fmt.Errorf("%w: the repository %s tracks it: it came with the checkout, and %s", ErrNotThisRun, root, why)
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%w: git ls-files did not tell within %s whether the repository %s tracks it, and %s", ErrNotThisRun, gitWait, root, why)
	}
	return fmt.Errorf("%w: git ls-files could not tell whether the repository %s tracks it (%v: %s), and %s", ErrNotThisRun, root, err, strings.TrimSpace(string(out)), why)
}

// workTree is the git work tree that holds dir: the nearest directory at
// or above it with a .git entry ("" for none).
func workTree(dir string) string {
	for {
		if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ""
		}
		dir = up
	}
}

// findGit is git on pathList.
func findGit(pathList string) string {
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "git")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}
