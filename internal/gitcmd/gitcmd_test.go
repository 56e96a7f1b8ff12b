package gitcmd

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// hostGit is the machine's git, run as a user would, to set up a repository.
func hostGit(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// A repository whose configuration names programs (core.fsmonitor, which
// git ls-files --others runs; a hook directory) gets none of them run,
// and neither the system's nor the user's configuration is read: the
// machine's own git, run plainly, does run the fsmonitor program (so the
// test proves something).
func TestRunStartsNoProgramOfTheRepository(t *testing.T) {
	git := Find(os.Getenv("PATH"))
	if git == "" {
		t.Fatal("git is needed on PATH")
	}
	repo := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	hook := filepath.Join(t.TempDir(), "fsmonitor.sh")
	os.WriteFile(hook, []byte("#!/bin/sh\necho \"$@\" >> "+marker+"\n"), 0o755)
	hostGit(t, repo, "init", "-q")
	os.WriteFile(filepath.Join(repo, "a"), []byte("a\n"), 0o644)
	hostGit(t, repo, "add", "a")
	hostGit(t, repo, "commit", "-q", "-m", "a")
	hostGit(t, repo, "config", "core.fsmonitor", hook)
	os.WriteFile(filepath.Join(repo, "b"), []byte("b\n"), 0o644)

	cmd := exec.Command(string(git), "-C", repo, "ls-files", "--others")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("plain git: %v\n%s", err, out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("plain git did not run the repository's fsmonitor: the test proves nothing")
	}
	os.Remove(marker)

	// The user's configuration (GIT_CONFIG_GLOBAL, as a step's environment
	// could name) is not read either: hoist's process environment never
	// reaches git.
	global := filepath.Join(t.TempDir(), "gitconfig")
	os.WriteFile(global, []byte("[core]\n\tfsmonitor = "+hook+"\n"), 0o644)
	t.Setenv("GIT_CONFIG_GLOBAL", global)
	out, err := git.Run(context.Background(), repo, 0, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	if slices.Sort(got); strings.Join(got, ",") != "a,b" {
		t.Errorf("ls-files: %q", got)
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Errorf("the repository's fsmonitor ran: %q", b)
	}
}

// git comes from an absolute directory of PATH only; a relative directory
// is refused; the time is bounded; a failed command keeps its exit code.
func TestFindAndRunBounds(t *testing.T) {
	git := Find(os.Getenv("PATH"))
	if git == "" {
		t.Fatal("git is needed on PATH")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "bin", "git"), []byte("#!/bin/sh\nsleep 60\n"), 0o755)
	t.Chdir(dir)
	if got := Find("bin:.:" + filepath.Dir(string(git))); got != git {
		t.Errorf("Find skips relative entries: got %q, want %s", got, git)
	}
	if got := Find("bin"); got != "" {
		t.Errorf("Find(bin) = %q", got)
	}
	if _, err := git.Run(context.Background(), "relative", 0, "status"); err == nil || !strings.Contains(err.Error(), "must be absolute") {
		t.Errorf("a relative directory: %v", err)
	}
	_, err := git.Run(context.Background(), dir, 0, "ls-files", "--error-unmatch", "--", "nothing")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Errorf("outside a repository: %v", err)
	}
	slow := Git(filepath.Join(dir, "bin", "git"))
	start := time.Now()
	_, err = slow.Run(context.Background(), dir, 200*time.Millisecond, "status")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("a git that hangs: %v after %s", err, time.Since(start))
	}
	if _, err := Git("").Run(context.Background(), dir, 0, "status"); !errors.Is(err, ErrNotFound) {
		t.Errorf("no git: %v", err)
	}
}
