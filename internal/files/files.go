// Package files holds the file operations several packages need: an
// atomic write (a temporary file beside the target, synced, then renamed,
// so no reader ever sees half a file, and a failed write leaves nothing)
// and a hard link that falls back to a copy, safe for concurrent callers.
//
// Every write goes through a Workspace, confined to it: a symbolic link in
// the workspace is followed only while it stays inside it; a path outside
// the workspace is written as given. Every file hoist itself writes in the
// workspace goes through it. Written outside it, by design:
//   - the content of a directory hoist has just made with a fresh random
//     name (Workspace.MkdirTemp, through the workspace's root, so no link
//     can be in it yet): the OCI layout of a build, which BuildKit's
//     client (an export through the session) or go-containerregistry
//     (Kaniko's output) fill before hoist records it in the image store;
//   - the embedded engine's own files in its directory (internal/engine:
//     buildkitd.toml, its log, pid file and socket), the machine's state,
//     by default in the user's cache (~/.cache/hoist/buildkit), never in
//     the checkout unless PLUGIN_ENGINE_DIR puts it there;
//   - hoist's temporary directory (the Kaniko executor's work directory,
//     Trivy's report before it is copied), fresh names in TMPDIR;
//   - what hoist pipeline's local registries store under the run's own
//     workspace root, and what a Run step's command writes.
package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Atomic is a file being written to a temporary name in its target's
// directory. Commit makes it the target; Abort (or a failed Commit)
// removes it. It is an io.Writer and an io.Closer, so a producer that
// closes its output (BuildKit's exporter does) can be handed one: Close
// only closes the file, it does not commit it.
type Atomic struct {
	f      *os.File
	final  string
	closed bool
	err    error
	done   bool
	mode   os.FileMode
	// inPlace: the target itself is written (its directory refused a
	// temporary file).
	inPlace bool
	// root, when set, confines the write to the workspace: rel is the
	// target and tmp the temporary file, both relative to it.
	root     *os.Root
	rel, tmp string
}

// TempPrefix starts the name of every temporary file hoist writes beside
// its target; every hoist build keeps such names out of its context.
const TempPrefix = ".hoist-tmp-"

// ErrIsDir marks an output path that is a directory.
var ErrIsDir = errors.New("is a directory, not a file")

// Target is where a write of path lands: a symbolic link is followed (the
// link stays, its target is written), and the mode of an existing file
// is kept (0644 for a new one). A directory is refused.
func Target(path string) (string, os.FileMode, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			break
		}
		link, err := os.Readlink(path)
		if err != nil {
			return path, 0, fmt.Errorf("write %s: %w", path, err)
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return path, 0, fmt.Errorf("write %s: %w", path, ErrIsDir)
		}
		mode = fi.Mode().Perm()
	}
	return path, mode, nil
}

// create starts an atomic write of path (see Target), creating its
// directory, confining nothing (Workspace.Create outside the workspace).
// When the directory does not let a temporary file be made but the file
// exists and is writable, the file is written in place.
func create(path string) (*Atomic, error) {
	path, mode, err := Target(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create directory %s for %s: %w", dir, path, err)
	}
	f, err := os.CreateTemp(dir, TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
			if in, ierr := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0); ierr == nil {
				return &Atomic{f: in, final: path, inPlace: true}, nil
			}
		}
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &Atomic{f: f, final: path, mode: mode}, nil
}

// Write writes to the temporary file.
func (a *Atomic) Write(p []byte) (int, error) { return a.f.Write(p) }

// ReadFrom lets io.Copy hand a file to the kernel (copy_file_range).
func (a *Atomic) ReadFrom(r io.Reader) (int64, error) { return a.f.ReadFrom(r) }

// File is the temporary file, for callers that write at offsets.
func (a *Atomic) File() *os.File { return a.f }

// Path is the target path.
func (a *Atomic) Path() string { return a.final }

// Close syncs and closes the temporary file; it may be called more than
// once.
func (a *Atomic) Close() error {
	if !a.closed {
		a.closed = true
		a.err = a.f.Sync()
		if err := a.f.Close(); a.err == nil {
			a.err = err
		}
	}
	return a.err
}

// Commit closes the file (synced), gives it the target's mode and renames
// it to the target.
func (a *Atomic) Commit() error {
	err := a.Close()
	if a.inPlace {
		a.release()
		if err != nil {
			return fmt.Errorf("write %s: %w", a.final, err)
		}
		a.done = true
		return nil
	}
	switch {
	case err != nil:
	case a.root != nil:
		// Renaming onto a link replaces the link: nothing is written
		// through it.
		if err = a.root.Chmod(a.tmp, a.mode); err == nil {
			err = a.root.Rename(a.tmp, a.rel)
		}
	default:
		if err = os.Chmod(a.f.Name(), a.mode); err == nil {
			err = os.Rename(a.f.Name(), a.final)
		}
	}
	if err != nil {
		a.Abort()
		return fmt.Errorf("write %s: %w", a.final, err)
	}
	a.done = true
	a.release()
	return nil
}

// Abort removes the temporary file unless Commit renamed it.
func (a *Atomic) Abort() {
	if !a.closed {
		a.closed = true
		a.f.Close()
	}
	if !a.done && !a.inPlace {
		if a.root != nil {
			a.root.Remove(a.tmp)
		} else {
			os.Remove(a.f.Name())
		}
	}
	a.release()
}

func (a *Atomic) release() {
	if a.root != nil {
		a.root.Close()
	}
}
