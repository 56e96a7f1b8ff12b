package pipeline

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/gitcmd"
)

// ReadCodebase is what the git checkout at dir says (empty outside one,
// or without git): git is the step's (gitcmd: hardened, bounded).
func ReadCodebase(ctx context.Context, git gitcmd.Git, dir string) Codebase {
	var c Codebase
	if out, err := git.Run(ctx, dir, gitWait, "rev-parse", "HEAD"); err == nil {
		c.CommitSha = strings.TrimSpace(string(out))
	}
	if out, err := git.Run(ctx, dir, gitWait, "rev-parse", "--abbrev-ref", "HEAD"); err == nil {
		if b := strings.TrimSpace(string(out)); b != "HEAD" {
			c.Branch = b
		}
	}
	return c
}

// gitWait bounds one git command on the checkout.
const gitWait = 30 * time.Second

// stateDir is hoist's directory in a checkout; a clone leaves it out.
const stateDir = ".hoist"

// CloneCodebase copies the checkout at src into dst: in a git checkout,
// the tracked files and the untracked ones git does not ignore, as they
// are in the working tree (git, the step's, asked through gitcmd: no
// program of the repository's configuration runs); elsewhere every
// file. hoist's own state
// (.hoist) and .git stay behind. A symbolic link is copied as a link, its
// target as it is, and never followed: a file beyond a link (dir/file,
// dir a link) is left out, as git leaves it, and nothing is read or
// written outside src and dst. It returns what it did, for the log.
func CloneCodebase(ctx context.Context, git gitcmd.Git, src, dst string) (string, error) {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", err
	}
	from, err := os.OpenRoot(src)
	if err != nil {
		return "", fmt.Errorf("clone the codebase: %w", err)
	}
	defer from.Close()
	to, err := os.OpenRoot(dst)
	if err != nil {
		return "", fmt.Errorf("clone the codebase: %w", err)
	}
	defer to.Close()
	out, err := git.Run(ctx, src, gitWait, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	var files []string
	how := "the git checkout's tracked and unignored files"
	if err != nil {
		how = "every file (not a git checkout)"
		err = fs.WalkDir(from.FS(), ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == ".git" || p == stateDir) {
				return fs.SkipDir
			}
			if !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("clone the codebase: %w", err)
		}
	} else {
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" && f != stateDir && !strings.HasPrefix(f, stateDir+"/") {
				files = append(files, f)
			}
		}
	}
	n := 0
	for _, f := range files {
		ok, err := copyEntry(from, to, f)
		if err != nil {
			return "", fmt.Errorf("clone the codebase: %s: %w", f, err)
		}
		if ok {
			n++
		}
	}
	return fmt.Sprintf("%d files (%s)", n, how), nil
}

// beyondLink reports whether a directory on the way to name in root is a
// symbolic link (or is missing).
func beyondLink(root *os.Root, name string) bool {
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		fi, err := root.Lstat(d)
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return true
		}
	}
	return false
}

// copyEntry copies a file or a symbolic link (as a link) from one root to
// the other; a tracked file deleted from the working tree, or beyond a
// link, is left out, as a checkout of the tree would have it.
func copyEntry(from, to *os.Root, name string) (bool, error) {
	name = filepath.ToSlash(filepath.Clean(name))
	if !fs.ValidPath(name) || beyondLink(from, name) {
		return false, nil
	}
	fi, err := from.Lstat(name)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := to.MkdirAll(path.Dir(name), 0o755); err != nil {
		return false, err
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := from.Readlink(name)
		if err != nil {
			return false, err
		}
		return true, to.Symlink(target, name)
	case fi.IsDir(): // a submodule: left out
		return false, nil
	case !fi.Mode().IsRegular():
		return false, nil
	}
	in, err := from.Open(name)
	if err != nil {
		return false, err
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil || !os.SameFile(st, fi) {
		return false, fmt.Errorf("changed while it was copied")
	}
	out, err := to.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return false, err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return false, err
	}
	return true, out.Close()
}

// NextSequence increments and returns the sequence number of a pipeline,
// kept in state/pipelines/<identifier>/sequence under a lock, so that
// concurrent runs get distinct numbers. In the checkout ws (the state
// directory is .hoist of the checkout by default), no symbolic link that
// leads out of it is followed.
func NextSequence(ws files.Workspace, state, identifier string) (int, error) {
	dir := filepath.Join(state, "pipelines", identifier)
	if err := ws.MkdirAll(dir); err != nil {
		return 0, fmt.Errorf("sequence of %s: %w", identifier, err)
	}
	f, err := ws.OpenFile(filepath.Join(dir, "sequence"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("sequence of %s: %w", identifier, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return 0, fmt.Errorf("sequence of %s: %w", identifier, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return 0, err
	}
	n := 0
	if s := strings.TrimSpace(string(b)); s != "" {
		if n, err = strconv.Atoi(s); err != nil {
			return 0, fmt.Errorf("sequence of %s: %s holds %q, not a number", identifier, f.Name(), s)
		}
	}
	n++
	if err := f.Truncate(0); err != nil {
		return 0, err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(n)+"\n"), 0); err != nil {
		return 0, err
	}
	return n, nil
}
