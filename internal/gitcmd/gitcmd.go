// Package gitcmd is the one way hoist runs git: on a checkout whose
// content anyone who opens a pull request writes, and whose .git a
// restored cache or an earlier step may have touched. git is taken from
// an absolute directory of the step's PATH (a relative entry, such as bin
// or node_modules/.bin, names the repository's own files), and runs with
// no configuration but the repository's own, nothing of it that starts a
// program (core.fsmonitor, hooks), a minimal environment, and a bounded
// time. Nothing here reads the process environment.
package gitcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Git is the git executable of a step ("" when its PATH has none).
type Git string

// ErrNotFound is a step whose PATH has no git.
var ErrNotFound = errors.New("git is not on PATH")

// Find is git on pathList (a step's PATH), looked for in its absolute
// directories only: a relative one (".", "bin", or an empty entry, which
// means ".") resolves against whatever the working directory is, the
// checkout's own files (exec.LookPath refuses those too: ErrDot).
func Find(pathList string) Git {
	for _, dir := range filepath.SplitList(pathList) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, "git")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return Git(p)
		}
	}
	return ""
}

// DefaultWait bounds a git command when the caller gives no bound.
const DefaultWait = 30 * time.Second

// hardening is every git command's configuration: none of the system's
// or the user's (the environment below), no program started for the
// repository (core.fsmonitor runs one on ls-files; hooks), and the
// repository's owner not checked (hoist reads, and starts nothing).
var hardening = []string{"-c", "core.fsmonitor=false", "-c", "core.hooksPath=" + os.DevNull, "-c", "safe.directory=*",
	"--no-pager", "--no-replace-objects"}

// environ is git's whole environment: no variable of the step (GIT_DIR,
// GIT_CONFIG_*, GIT_EXEC_PATH, ...) reaches it.
var environ = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_TERMINAL_PROMPT=0", "GIT_OPTIONAL_LOCKS=0",
	"HOME=" + os.DevNull, "LC_ALL=C"}

// Error is a git command that failed: its exit (an *exec.ExitError,
// through Unwrap) and what it printed on stderr.
type Error struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("git %s: %v", strings.Join(e.Args, " "), e.Err)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Run runs git with args in the directory dir (absolute: nothing here
// depends on the process's working directory) and returns its stdout. It
// stops git when ctx ends or after wait (DefaultWait when 0); the error
// then wraps context.DeadlineExceeded or ctx's error.
func (g Git) Run(ctx context.Context, dir string, wait time.Duration, args ...string) ([]byte, error) {
	if g == "" {
		return nil, ErrNotFound
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("git in %q: the directory must be absolute", dir)
	}
	if wait <= 0 {
		wait = DefaultWait
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, string(g), append(append([]string(nil), hardening...), args...)...)
	cmd.Dir = dir
	cmd.Env = environ
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (after %s at most)", ctx.Err(), wait)
	}
	if err != nil {
		return stdout.Bytes(), &Error{Args: args, Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.Bytes(), nil
}
