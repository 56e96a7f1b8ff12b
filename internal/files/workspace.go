package files

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Workspace is the directory whose content hoist does not own: the
// checkout (anyone who opens a pull request writes it), what earlier
// steps left there, restored caches. A write of a path inside it goes
// through os.Root: a symbolic link on the way is followed only while it
// stays inside the workspace; one that leads out (image.tar ->
// /root/.ssh/authorized_keys, .hoist -> /etc) is never written through,
// and the write fails with a *LinkOutError that names it. A link that
// stays inside works as anywhere (a target file's link is kept, its
// target written). A path outside the workspace (the runner's
// DRONE_OUTPUT, an absolute path a setting names elsewhere) is written as
// given. The zero value confines nothing.
type Workspace string

// ErrLinkOut marks a write refused because a symbolic link in the
// workspace leads out of it.
var ErrLinkOut = errors.New("a symbolic link leads out of the workspace")

// LinkOutError is a write refused at a link that leads out of the
// workspace.
type LinkOutError struct {
	// Link is the link (a path in the workspace), Target where it points.
	Link, Target, Workspace string
}

func (e *LinkOutError) Error() string {
	return fmt.Sprintf("%s is a symbolic link to %s, out of the workspace %s: hoist writes nothing through it (remove the link, or name a path outside the workspace in the setting itself)", e.Link, e.Target, e.Workspace)
}

func (e *LinkOutError) Unwrap() error { return ErrLinkOut }

// inside is path relative to the workspace when it is in it.
func (w Workspace) inside(path string) (string, bool) {
	if w == "" {
		return "", false
	}
	if !filepath.IsAbs(path) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", false
		}
		path = abs
	}
	rel, err := filepath.Rel(string(w), path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return rel, true
}

// open opens the workspace as a root and resolves rel in it: every
// symbolic link on the way (the last element too, unless keepLast) is
// replaced by what it points to, as long as that stays inside. The path
// returned has no link in it; operations on it through the root check
// again (os.Root follows no link out), so a link swapped in meanwhile is
// refused too.
func (w Workspace) open(rel string, keepLast bool) (*os.Root, string, error) {
	root, err := os.OpenRoot(string(w))
	if err != nil {
		return nil, "", err
	}
	res, err := w.resolve(root, rel, keepLast)
	if err != nil {
		root.Close()
		return nil, "", err
	}
	return root, res, nil
}

func split(p string) []string {
	var out []string
	for _, c := range strings.Split(filepath.ToSlash(p), "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func (w Workspace) resolve(root *os.Root, rel string, keepLast bool) (string, error) {
	real, err := filepath.EvalSymlinks(string(w))
	if err != nil {
		real = string(w)
	}
	var done []string
	todo := split(rel)
	link, target := "", ""
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		if c == ".." {
			if len(done) == 0 {
				return "", &LinkOutError{Link: filepath.Join(string(w), link), Target: target, Workspace: string(w)}
			}
			done = done[:len(done)-1]
			continue
		}
		p := filepath.Join(append(done, c)...)
		if keepLast && len(todo) == 0 {
			done = append(done, c)
			break
		}
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			done = append(done, c) // made new
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: %w", filepath.Join(string(w), p), syscall.ELOOP)
		}
		t, err := root.Readlink(p)
		if err != nil {
			return "", err
		}
		link, target = p, t
		if filepath.IsAbs(t) {
			r, ok := Workspace(real).inside(t)
			if !ok {
				r, ok = w.inside(t)
			}
			if !ok {
				return "", &LinkOutError{Link: filepath.Join(string(w), p), Target: t, Workspace: string(w)}
			}
			done, todo = nil, append(split(r), todo...)
			continue
		}
		todo = append(split(t), todo...)
	}
	return filepath.Join(done...), nil
}

// Check reports whether path can be written: inside the workspace, no
// link on the way to it leads out (nothing is made).
func (w Workspace) Check(path string) error {
	rel, ok := w.inside(path)
	if !ok {
		return nil
	}
	root, _, err := w.open(rel, false)
	if err != nil {
		return err
	}
	return root.Close()
}

// Target is where a write of path lands (see the package's Target), and
// for a path in the workspace a link that leads out is refused.
func (w Workspace) Target(path string) (string, os.FileMode, error) {
	rel, ok := w.inside(path)
	if !ok {
		return Target(path)
	}
	root, res, err := w.open(rel, false)
	if err != nil {
		return path, 0, fmt.Errorf("write %s: %w", path, err)
	}
	defer root.Close()
	mode := os.FileMode(0o644)
	if res == "" {
		return path, 0, fmt.Errorf("write %s: %w", path, ErrIsDir)
	}
	if fi, err := root.Stat(res); err == nil {
		if fi.IsDir() {
			return path, 0, fmt.Errorf("write %s: %w", path, ErrIsDir)
		}
		mode = fi.Mode().Perm()
	}
	return filepath.Join(string(w), res), mode, nil
}

// Create starts an atomic write of path (see Atomic and Target), creating
// its directory. When the directory does not let a temporary file be
// made but the file exists and is writable, the file is written in place.
func (w Workspace) Create(path string) (*Atomic, error) {
	rel, ok := w.inside(path)
	if !ok {
		return create(path)
	}
	root, res, err := w.open(rel, false)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	full := filepath.Join(string(w), res)
	mode := os.FileMode(0o644)
	if res == "" {
		root.Close()
		return nil, fmt.Errorf("write %s: %w", full, ErrIsDir)
	}
	if fi, err := root.Stat(res); err == nil {
		if fi.IsDir() {
			root.Close()
			return nil, fmt.Errorf("write %s: %w", full, ErrIsDir)
		}
		mode = fi.Mode().Perm()
	}
	dir := filepath.Dir(res)
	if err := root.MkdirAll(dir, 0o755); err != nil {
		root.Close()
		return nil, fmt.Errorf("create directory %s for %s: %w", filepath.Dir(full), full, err)
	}
	f, tmp, err := createTemp(root, dir, TempPrefix+filepath.Base(res)+"-", 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
			if in, ierr := root.OpenFile(res, os.O_WRONLY|os.O_TRUNC, 0); ierr == nil {
				return &Atomic{f: in, final: full, inPlace: true, root: root, rel: res}, nil
			}
		}
		root.Close()
		return nil, fmt.Errorf("write %s: %w", full, err)
	}
	return &Atomic{f: f, final: full, mode: mode, root: root, rel: res, tmp: tmp}, nil
}

// createTemp makes a new file in dir of root, named prefix and a random
// suffix.
func createTemp(root *os.Root, dir, prefix string, perm os.FileMode) (*os.File, string, error) {
	for range 100 {
		name := filepath.Join(dir, prefix+random())
		f, err := root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", fmt.Errorf("no free temporary name in %s", dir)
}

func random() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// WriteAtomic writes data to path atomically (see Atomic).
func (w Workspace) WriteAtomic(path string, data []byte) error {
	a, err := w.Create(path)
	if err != nil {
		return err
	}
	if _, err := a.Write(data); err != nil {
		a.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return a.Commit()
}

// CopyAtomic copies r to path atomically, checking ctx between chunks of
// 64 MiB (each chunk of a file goes through copy_file_range).
func (w Workspace) CopyAtomic(ctx context.Context, path string, r io.Reader) error {
	a, err := w.Create(path)
	if err != nil {
		return err
	}
	for {
		if err = ctx.Err(); err != nil {
			break
		}
		var n int64
		n, err = io.CopyN(a, r, 64<<20)
		if errors.Is(err, io.EOF) || (err == nil && n < 64<<20) {
			err = nil
			break
		}
		if err != nil {
			break
		}
	}
	if err != nil {
		a.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return a.Commit()
}

// LinkOrCopy makes to a hard link of from or, across filesystems, an
// atomic copy. Callers link content-addressed blobs: when to already
// exists (another process or step put the same blob there), it is left as
// it is. In the workspace the link is made in to's directory opened
// through the root (linkat), so no link on the way is followed out.
func (w Workspace) LinkOrCopy(ctx context.Context, from, to string) error {
	var err error
	if rel, ok := w.inside(to); ok {
		err = w.link(from, rel)
	} else {
		err = os.Link(from, to)
	}
	switch {
	case err == nil, errors.Is(err, os.ErrExist):
		return nil
	case errors.Is(err, ErrLinkOut):
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	return w.CopyAtomic(ctx, to, in)
}

// LinkOrCopyOver makes to a hard link of from or, across filesystems, a
// copy, and never keeps what was at to: the link (or copy) is made under
// a temporary name beside to and renamed over it, so a file someone else
// left there (the repository, a restored cache), or a link, is replaced
// whatever it holds. A content-addressed store that vouches for its
// blobs takes its blobs so: a blob of the right name is not the right
// blob. In the workspace no link on the way is followed out.
func (w Workspace) LinkOrCopyOver(ctx context.Context, from, to string) error {
	tmp := filepath.Join(filepath.Dir(to), TempPrefix+filepath.Base(to)+"-"+random())
	var err error
	if rel, ok := w.inside(tmp); ok {
		err = w.link(from, rel)
	} else {
		err = os.Link(from, tmp)
	}
	switch {
	case errors.Is(err, ErrLinkOut):
		return err
	case err != nil:
		// Across filesystems (or where links are not allowed): a copy
		// under the temporary name (a link at to is not written
		// through, even one that stays inside), renamed over to too.
		in, err := os.Open(from)
		if err != nil {
			return err
		}
		defer in.Close()
		if err := w.CopyAtomic(ctx, tmp, in); err != nil {
			return err
		}
	}
	if err := w.Rename(tmp, to); err != nil {
		w.Remove(tmp)
		return err
	}
	return nil
}

// Remove removes the file (or empty directory) path; in the workspace, a
// link on the way that leads out of it is not followed.
func (w Workspace) Remove(path string) error {
	rel, ok := w.inside(path)
	if !ok {
		return os.Remove(path)
	}
	root, res, err := w.open(rel, true)
	if err != nil {
		return err
	}
	defer root.Close()
	return root.Remove(res)
}

func (w Workspace) link(from, rel string) error {
	root, res, err := w.open(rel, true)
	if err != nil {
		return err
	}
	defer root.Close()
	d, err := root.Open(filepath.Dir(res))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Linkat(unix.AT_FDCWD, from, int(d.Fd()), filepath.Base(res), 0); err != nil {
		return &os.LinkError{Op: "link", Old: from, New: filepath.Join(string(w), res), Err: err}
	}
	return nil
}

// MkdirAll makes the directory dir and its parents (mode 0755).
func (w Workspace) MkdirAll(dir string) error {
	rel, ok := w.inside(dir)
	if !ok {
		return os.MkdirAll(dir, 0o755)
	}
	root, res, err := w.open(rel, false)
	if err != nil {
		return err
	}
	defer root.Close()
	if res == "" {
		return nil
	}
	return root.MkdirAll(res, 0o755)
}

// MkdirTemp makes a new directory (mode 0700) in dir, named pattern with
// a random suffix, and returns its path.
func (w Workspace) MkdirTemp(dir, pattern string) (string, error) {
	rel, ok := w.inside(dir)
	if !ok {
		return os.MkdirTemp(dir, pattern)
	}
	root, res, err := w.open(rel, false)
	if err != nil {
		return "", err
	}
	defer root.Close()
	for range 100 {
		name := filepath.Join(res, strings.TrimSuffix(pattern, "*")+random())
		err := root.Mkdir(name, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return filepath.Join(string(w), name), nil
	}
	return "", fmt.Errorf("no free temporary name in %s", dir)
}

// CreateTemp makes a new file (mode 0600) in dir, named pattern with a
// random suffix (in place of its last *), opened for reading and writing.
func (w Workspace) CreateTemp(dir, pattern string) (*os.File, error) {
	rel, ok := w.inside(dir)
	if !ok {
		return os.CreateTemp(dir, pattern)
	}
	root, res, err := w.open(rel, false)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	prefix, suffix := pattern, ""
	if i := strings.LastIndex(pattern, "*"); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	for range 100 {
		f, err := root.OpenFile(filepath.Join(res, prefix+random()+suffix), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("no free temporary name in %s", dir)
}

// Rename renames from to to, both in one directory tree: in the
// workspace, the directories on the way are resolved inside it, and a
// link at to is replaced, never written through.
func (w Workspace) Rename(from, to string) error {
	rf, okf := w.inside(from)
	rt, okt := w.inside(to)
	switch {
	case !okf && !okt:
		return os.Rename(from, to)
	case okf != okt:
		return fmt.Errorf("rename %s to %s: one is in the workspace %s and the other is not", from, to, w)
	}
	root, resFrom, err := w.open(rf, true)
	if err != nil {
		return err
	}
	defer root.Close()
	resTo, err := w.resolve(root, rt, true)
	if err != nil {
		return err
	}
	return root.Rename(resFrom, resTo)
}

// OpenFile opens path as os.OpenFile does (a lock file, a counter).
func (w Workspace) OpenFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	rel, ok := w.inside(path)
	if !ok {
		return os.OpenFile(path, flag, perm)
	}
	root, res, err := w.open(rel, false)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.OpenFile(res, flag, perm)
}
