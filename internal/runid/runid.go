// Package runid names the CI pipeline run a step belongs to, and says
// whether state found in the workspace (a scan record, a compressed layer
// of the cache, an entry of the image store) was made by that run.
//
// The state directory (.hoist) lies in the checkout: a repository can
// commit it, and a restored cache can bring it from another branch's run.
// So state vouches for something only when hoist stamped it with this
// run's identity: PLUGIN_RUN_ID or the CI's per-run variables and, when
// given, the commit. A file committed to the repository cannot hold the
// hash of its own commit, and a cache restored from another run has
// another run number. In a CI that gives no identity hoist knows (CI is
// set, as Jenkins, Buildkite, CircleCI, ... set it), state counts for
// nothing. Without a run identity outside CI (a person's command line),
// state is trusted only when the repository does not track it (git
// ls-files, through gitcmd).
//
// Nothing here reads the process environment: New takes the step's.
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

	"github.com/hoist-build/hoist/internal/gitcmd"
)

// Run is one pipeline run. The zero Run is "no run identity".
type Run struct {
	// ID is what hoist stores: the digest of PLUGIN_RUN_ID or the CI's
	// name and per-run variables, with the commit ("" when there is none).
	ID string
	// Name says the same for people: "Drone build acme/app#12 at commit
	// 1a2b3c4d5e6f".
	Name string
	// ci is the CI variable that says a CI runs the step ("CI=true"),
	// when it is set and no identity was found.
	ci string
	// dir is the workspace: relative paths are in it.
	dir string
	// git is the git executable from the step's PATH ("" when absent).
	git gitcmd.Git
}

// Config is what a step knows of its run.
type Config struct {
	// Lookup is the step's environment (not an env file's variables).
	Lookup func(string) (string, bool)
	// RunID is PLUGIN_RUN_ID: a value unique to the pipeline run, for a
	// CI whose variables hoist does not know; it comes first.
	RunID string
	// Commit is the commit of the build (the --commit-sha setting, from
	// the command line or the step's environment), with RunID.
	Commit string
	// Dir is the workspace, where relative paths are and git runs.
	Dir string
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
	// Drone: DRONE_BUILD_CREATED, not DRONE_BUILD_STARTED, which Drone's
	// runner sets to the time each step starts while the build's start
	// is unset (the first stage of a build, drone-runner-docker exec).
	{"Drone", []string{"DRONE_BUILD_NUMBER", "DRONE_REPO", "DRONE_BUILD_CREATED"}, "DRONE_COMMIT_SHA"},
	{"Woodpecker", []string{"CI_PIPELINE_NUMBER", "CI_REPO"}, "CI_COMMIT_SHA"},
	{"GitHub Actions", []string{"GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_REPOSITORY"}, "GITHUB_SHA"},
	{"GitLab CI", []string{"CI_PIPELINE_ID", "CI_PROJECT_PATH"}, "CI_COMMIT_SHA"},
}

// Known is the list of the variables that give a run identity, for
// messages: PLUGIN_RUN_ID, HARNESS_EXECUTION_ID, DRONE_BUILD_NUMBER, ...
func Known() string {
	names := []string{"PLUGIN_RUN_ID"}
	for _, v := range Variables {
		names = append(names, v.Run[0])
	}
	return strings.Join(names, ", ")
}

// FromEnv is New with the step's environment lookup only.
func FromEnv(lookup func(string) (string, bool)) Run { return New(Config{Lookup: lookup}) }

// New is the run of a step: PLUGIN_RUN_ID (c.RunID) with c.Commit when
// it is set, else the first CI of Variables whose run variable is set.
// The git executable is looked for on the step's PATH.
func New(c Config) Run {
	lookup := c.Lookup
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	path, _ := lookup("PATH")
	r := Run{git: gitcmd.Find(path), dir: c.Dir}
	if id := strings.TrimSpace(c.RunID); id != "" {
		commit := strings.TrimSpace(c.Commit)
		h := sha256.New()
		fmt.Fprintf(h, "hoist run\nci=PLUGIN_RUN_ID\nPLUGIN_RUN_ID=%s\ncommit=%s\n", id, commit)
		r.ID = fmt.Sprintf("sha256:%x", h.Sum(nil))
		r.Name = "run " + id + " (PLUGIN_RUN_ID)"
		if commit != "" {
			r.Name += " at commit " + short(commit)
		}
		return r
	}
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
	// CI=true (1, yes) is what most CIs set, those hoist knows and those
	// it does not (Jenkins, Buildkite, CircleCI, Azure Pipelines,
	// Bitbucket, Tekton, ...): there, untracked state is as likely a
	// restored cache as this run's.
	if v, ok := lookup("CI"); ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "1", "yes":
			r.ci = "CI=" + strings.TrimSpace(v)
		}
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
	switch {
	case r.ID != "":
		return r.Name
	case r.ci != "":
		return "no run identity in a CI (" + r.ci + "): set PLUGIN_RUN_ID"
	}
	return "no run identity (none of " + Known() + " is set)"
}

// ErrNotThisRun marks state that this run did not make.
var ErrNotThisRun = errors.New("not made by this run")

// Reason is why Made refused state, without ErrNotThisRun's words.
func Reason(err error) string {
	return strings.TrimPrefix(err.Error(), ErrNotThisRun.Error()+": ")
}

// nameIt says how to give a run its identity.
const nameIt = "set PLUGIN_RUN_ID (--run-id) to a value unique to this pipeline run (Jenkins: $BUILD_TAG, Buildkite: $BUILDKITE_BUILD_ID, " +
	"CircleCI: $CIRCLE_WORKFLOW_ID, Azure Pipelines: $BUILD_BUILDID, Bitbucket: $BITBUCKET_PIPELINE_UUID, Tekton: the PipelineRun's uid), " +
	"with --commit-sha (DRONE_COMMIT_SHA) the commit, in the step's own settings"

// Made says whether state stamped with id (the ID of the run that wrote
// it, "" for none) in file was made by this run: nil when it was, else an
// error wrapping ErrNotThisRun that says why not. With a run identity the
// stamp must be this run's. In a CI that gives none (CI is set), nothing
// counts. Without one outside CI, the stamp must be empty too, and the
// repository must not track file: outside a git work tree it is trusted;
// inside one, git must be on the step's PATH to tell (within ctx and a
// bounded time). A relative file is in the workspace.
func (r Run) Made(ctx context.Context, id, file string) error {
	switch {
	case r.ID != "" && id == "":
		return fmt.Errorf("%w: it names no run (it was made outside CI, by an older hoist, or not by hoist), and this is %s", ErrNotThisRun, r.Name)
	case r.ID != "" && id != r.ID:
		return fmt.Errorf("%w: it was made by another run than this one (%s): an earlier build, another branch's cache, or not by hoist", ErrNotThisRun, r.Name)
	case r.ID != "":
		return nil
	case r.ci != "":
		return fmt.Errorf("%w: this step runs in a CI (%s) that gives hoist no run identity (none of %s is set), where state hoist finds may come from a restored cache or another run: %s", ErrNotThisRun, r.ci, Known(), nameIt)
	case id != "":
		return fmt.Errorf("%w: it was made by a CI run, and this step has no run identity (none of %s is set)", ErrNotThisRun, Known())
	}
	return r.untracked(ctx, file)
}

// gitWait bounds one git ls-files.
const gitWait = 10 * time.Second

// untracked checks that the repository whose work tree holds file (if
// any) does not track it.
func (r Run) untracked(ctx context.Context, file string) error {
	abs := file
	if !filepath.IsAbs(abs) {
		if !filepath.IsAbs(r.dir) {
			return fmt.Errorf("%w: %s is a relative path, and the step names no workspace it is in", ErrNotThisRun, file)
		}
		abs = filepath.Join(r.dir, file)
	}
	abs = filepath.Clean(abs)
	root := workTree(filepath.Dir(abs))
	if root == "" {
		return nil
	}
	why := "this step has no run identity (none of " + Known() + " is set)"
	if r.git == "" {
		return fmt.Errorf("%w: it lies in the git work tree %s, git is not in an absolute directory of PATH to tell whether the repository tracks it, and %s", ErrNotThisRun, root, why)
	}
	// Only the index is read, by the hardened git (gitcmd).
	_, err := r.git.Run(ctx, filepath.Dir(abs), gitWait, "ls-files", "--error-unmatch", "--", filepath.Base(abs))
	var exit *exec.ExitError
	switch {
	case err == nil:
		return fmt.Errorf("%w: the repository %s tracks it: it came with the checkout, and %s", ErrNotThisRun, root, why)
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: git ls-files did not tell within %s whether the repository %s tracks it, and %s", ErrNotThisRun, gitWait, root, why)
	}
	return fmt.Errorf("%w: git could not tell whether the repository %s tracks it (%v), and %s", ErrNotThisRun, root, err, why)
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
