package files

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/harness"
)

// anywhere is the zero Workspace: it confines nothing.
var anywhere Workspace

func TestAtomicCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "out.tar")
	a, err := anywhere.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("half"))
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the target exists before Commit: %v", err)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "half" {
		t.Fatalf("target holds %q", b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}

	b, err := anywhere.Create(filepath.Join(dir, "sub", "gone.tar"))
	if err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("partial"))
	b.Abort()
	ents, _ := os.ReadDir(filepath.Join(dir, "sub"))
	if len(ents) != 1 || ents[0].Name() != "out.tar" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("after Abort the directory holds %v, want only out.tar", names)
	}
}

func TestCopyAtomicStopsWhenCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := anywhere.CopyAtomic(ctx, filepath.Join(dir, "x"), strings.NewReader("data"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CopyAtomic = %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a cancelled copy left %d file(s)", len(ents))
	}
}

// Many linkers of one content-addressed blob at once, across filesystems
// or not: every one succeeds, the blob is whole, no temporary file stays.
func TestLinkOrCopyConcurrent(t *testing.T) {
	dir := t.TempDir()
	from := filepath.Join(dir, "blob")
	data := strings.Repeat("layer bytes ", 100000)
	os.WriteFile(from, []byte(data), 0o644)
	to := filepath.Join(dir, "store", "blob")
	os.MkdirAll(filepath.Dir(to), 0o755)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- anywhere.LinkOrCopy(context.Background(), from, to)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if b, _ := os.ReadFile(to); string(b) != data {
		t.Errorf("the linked blob has %d bytes, want %d", len(b), len(data))
	}
	if ents, _ := os.ReadDir(filepath.Dir(to)); len(ents) != 1 {
		t.Errorf("the store holds %d entries, want the blob only", len(ents))
	}
}

// The copy path of LinkOrCopy (across filesystems): a file larger than one
// 64 MiB chunk arrives whole.
func TestCopyAtomicCopiesAFile(t *testing.T) {
	dir := t.TempDir()
	from := filepath.Join(dir, "big")
	f, _ := os.Create(from)
	f.Truncate(64<<20 + 12345)
	f.WriteAt([]byte("end"), 64<<20+12342)
	f.Close()
	in, _ := os.Open(from)
	defer in.Close()
	to := filepath.Join(dir, "copy")
	if err := anywhere.CopyAtomic(context.Background(), to, in); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(to)
	if err != nil || st.Size() != 64<<20+12345 {
		t.Fatalf("copy: %v, %d bytes", err, st.Size())
	}
	b := make([]byte, 3)
	g, _ := os.Open(to)
	g.ReadAt(b, 64<<20+12342)
	g.Close()
	if string(b) != "end" {
		t.Errorf("the copy ends with %q", b)
	}
}

// A producer may close its output before the caller commits it (BuildKit's
// exporter does).
func TestCommitAfterClose(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out")
	a, err := anywhere.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("x"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(); err != nil {
		t.Fatalf("Commit after Close: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "x" {
		t.Errorf("target holds %q", b)
	}
}

// An output's target as CI systems set them up: a symbolic link is
// followed (the link stays), an existing file keeps its mode, a directory
// is refused, and a directory that refuses new files (here immutable)
// gets its existing file written in place.
func TestOutputTargets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := filepath.Join(dir, "real.env")
	os.WriteFile(real, []byte("old"), 0o600)
	link := filepath.Join(dir, "link.env")
	if err := os.Symlink("real.env", link); err != nil {
		t.Fatal(err)
	}
	if err := anywhere.WriteAtomic(link, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced by a file")
	}
	if b, _ := os.ReadFile(real); string(b) != "new" {
		t.Errorf("the link's target holds %q", b)
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want the target's 0600", fi.Mode().Perm())
	}
	if err := anywhere.WriteAtomic(dir, []byte("x")); !errors.Is(err, ErrIsDir) {
		t.Errorf("a directory as target: %v", err)
	}

	locked := filepath.Join(dir, "locked")
	os.Mkdir(locked, 0o755)
	out := filepath.Join(locked, "digest")
	os.WriteFile(out, []byte("a much longer old content"), 0o644)
	if out, err := exec.Command("chattr", "+i", locked).CombinedOutput(); err != nil {
		harness.Missing(t, "chattr +i (e2fsprogs, an ext4 temporary directory, root): %v: %s", err, out)
	}
	defer exec.Command("chattr", "-i", locked).Run()
	if f, err := os.Create(filepath.Join(locked, "probe")); err == nil {
		f.Close()
		t.Fatal("the directory accepts new files; the test proves nothing")
	}
	if err := anywhere.WriteAtomic(out, []byte("sha256:abc\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "sha256:abc\n" {
		t.Errorf("written in place: %q", b)
	}
}

// In the workspace, no write follows a symbolic link out of it: not a
// target that is one (absolute or relative), not a directory on the way
// (.hoist itself a link out), for every operation; each fails with a
// *LinkOutError naming the link, and the file outside is untouched. A
// link that stays inside (relative or absolute) is followed as anywhere;
// a path outside the workspace is written as given, through its links.
func TestWorkspaceFollowsNoLinkOut(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	secret := filepath.Join(outside, "authorized_keys")
	harness.Untouched(t, secret, "ssh-ed25519 AAAA the-real-key")
	harness.Untouched(t, filepath.Join(outside, "state", "scans", "x.json"), "elsewhere")
	ws := t.TempDir()
	w := Workspace(ws)
	os.Symlink(secret, filepath.Join(ws, "image.tar"))
	rel, _ := filepath.Rel(ws, secret)
	os.Symlink(rel, filepath.Join(ws, "digest"))
	os.Symlink(filepath.Join(outside, "state"), filepath.Join(ws, ".hoist"))
	os.MkdirAll(filepath.Join(ws, "sub"), 0o755)
	os.Symlink("../../"+filepath.Base(outside), filepath.Join(ws, "sub", "up"))
	os.WriteFile(filepath.Join(ws, "sub", "f"), []byte("f"), 0o644)

	ctx := context.Background()
	from := filepath.Join(t.TempDir(), "blob")
	os.WriteFile(from, []byte("blob"), 0o644)
	for what, op := range map[string]func() error{
		"WriteAtomic through an absolute link": func() error { return w.WriteAtomic(filepath.Join(ws, "image.tar"), []byte("x")) },
		"Create through a relative link":       func() error { _, err := w.Create(filepath.Join(ws, "digest")); return err },
		"CopyAtomic through .hoist": func() error {
			return w.CopyAtomic(ctx, filepath.Join(ws, ".hoist", "scans", "x.json"), strings.NewReader("x"))
		},
		"WriteAtomic up out of sub/": func() error { return w.WriteAtomic(filepath.Join(ws, "sub", "up", "new"), []byte("x")) },
		"MkdirAll through .hoist":    func() error { return w.MkdirAll(filepath.Join(ws, ".hoist", "images", "blobs")) },
		"MkdirTemp through .hoist":   func() error { _, err := w.MkdirTemp(filepath.Join(ws, ".hoist"), "x-*"); return err },
		"CreateTemp through .hoist":  func() error { _, err := w.CreateTemp(filepath.Join(ws, ".hoist", "scans"), "x-*"); return err },
		"OpenFile through .hoist": func() error {
			_, err := w.OpenFile(filepath.Join(ws, ".hoist", "lock"), os.O_CREATE|os.O_RDWR, 0o644)
			return err
		},
		"ReadFile through a link":   func() error { _, err := w.ReadFile(filepath.Join(ws, "image.tar")); return err },
		"LinkOrCopy through .hoist": func() error { return w.LinkOrCopy(ctx, from, filepath.Join(ws, ".hoist", "scans", "blob")) },
		"Rename into .hoist": func() error {
			return w.Rename(filepath.Join(ws, "sub", "f"), filepath.Join(ws, ".hoist", "scans", "x.json"))
		},
		"Target of a link":      func() error { _, _, err := w.Target(filepath.Join(ws, "image.tar")); return err },
		"Check of .hoist/scans": func() error { return w.Check(filepath.Join(ws, ".hoist", "scans")) },
	} {
		err := op()
		var lo *LinkOutError
		if !errors.Is(err, ErrLinkOut) || !errors.As(err, &lo) || !strings.Contains(err.Error(), "hoist writes nothing through it") {
			t.Errorf("%s: %v, want a LinkOutError", what, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 2 {
		t.Errorf("outside holds %d entries, want 2", len(ents))
	}

	// Inside: relative and absolute links are followed, the link kept.
	os.WriteFile(filepath.Join(ws, "real.env"), []byte("old"), 0o600)
	os.Symlink("real.env", filepath.Join(ws, "rel.env"))
	os.Symlink(filepath.Join(ws, "real.env"), filepath.Join(ws, "abs.env"))
	os.Symlink("sub", filepath.Join(ws, "dirlink"))
	for _, l := range []string{"rel.env", "abs.env"} {
		if err := w.WriteAtomic(filepath.Join(ws, l), []byte(l)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(ws, "real.env")); string(b) != l {
			t.Errorf("%s: the target holds %q", l, b)
		}
		if fi, _ := os.Lstat(filepath.Join(ws, l)); fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s was replaced", l)
		}
	}
	if fi, _ := os.Stat(filepath.Join(ws, "real.env")); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want the target's 0600", fi.Mode().Perm())
	}
	if err := w.WriteAtomic(filepath.Join(ws, "dirlink", "x", "out"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "sub", "x", "out")); string(b) != "x" {
		t.Errorf("through a directory link inside: %q", b)
	}
	if err := w.LinkOrCopy(ctx, from, filepath.Join(ws, "dirlink", "blob")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "sub", "blob")); string(b) != "blob" {
		t.Errorf("linked blob %q", b)
	}
	filepath.WalkDir(ws, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), TempPrefix) {
			t.Errorf("a temporary file is left: %s", p)
		}
		return nil
	})

	// The workspace itself, or a link to it, is a directory.
	os.Symlink(".", filepath.Join(ws, "self"))
	for _, p := range []string{ws, filepath.Join(ws, "self")} {
		if err := w.WriteAtomic(p, []byte("x")); !errors.Is(err, ErrIsDir) {
			t.Errorf("%s: %v, want ErrIsDir", p, err)
		}
	}

	// Outside the workspace: as before, the link followed.
	elsewhere := t.TempDir()
	os.WriteFile(filepath.Join(elsewhere, "target"), []byte("old"), 0o644)
	os.Symlink("target", filepath.Join(elsewhere, "drone.env"))
	if err := w.WriteAtomic(filepath.Join(elsewhere, "drone.env"), []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(elsewhere, "target")); string(b) != "new" {
		t.Errorf("a path outside the workspace: its link's target holds %q", b)
	}
}

// A blob put over what is at its name replaces it, whatever it is: a
// planted file of the right name and size, a link (to a file inside the
// workspace, or out of it), another process's copy; in the workspace or
// outside, linked or copied. The target outside the workspace is left as
// it was.
func TestLinkOrCopyOverReplaces(t *testing.T) {
	ws := t.TempDir()
	outside := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, []byte("the user's file"), 0o600)
	from := filepath.Join(ws, "build", "blob")
	os.MkdirAll(filepath.Dir(from), 0o755)
	os.WriteFile(from, []byte("genuine"), 0o644)
	store := filepath.Join(ws, "store")
	os.MkdirAll(store, 0o755)
	os.WriteFile(filepath.Join(ws, "other"), []byte("another file"), 0o644)
	for name, plant := range map[string]func(p string){
		"planted file": func(p string) { os.WriteFile(p, []byte("plantedX"), 0o644) },
		"link inside":  func(p string) { os.Symlink(filepath.Join(ws, "other"), p) },
		"link out":     func(p string) { os.Symlink(outside, p) },
		"nothing":      func(string) {},
	} {
		to := filepath.Join(store, strings.ReplaceAll(name, " ", "-"))
		plant(to)
		if err := Workspace(ws).LinkOrCopyOver(context.Background(), from, to); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fi, err := os.Lstat(to)
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %s is %v (%v), want the blob", name, to, fi, err)
		}
		if b, _ := os.ReadFile(to); string(b) != "genuine" {
			t.Errorf("%s: %s holds %q", name, to, b)
		}
	}
	if b, _ := os.ReadFile(outside); string(b) != "the user's file" {
		t.Errorf("the file outside holds %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "other")); string(b) != "another file" {
		t.Errorf("the link's target inside holds %q", b)
	}
	// Outside any workspace, and across filesystems (/dev/shm, where a
	// copy is made), the same; a link at the name is replaced, its
	// target left as it was.
	for _, dir := range []string{t.TempDir(), shmDir(t)} {
		os.WriteFile(filepath.Join(dir, "other"), []byte("another file"), 0o644)
		for _, n := range []string{"blob", "link"} {
			to := filepath.Join(dir, n)
			if n == "link" {
				os.Symlink(filepath.Join(dir, "other"), to)
			} else {
				os.WriteFile(to, []byte("plantedX"), 0o644)
			}
			if err := Workspace(dir).LinkOrCopyOver(context.Background(), from, to); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Lstat(to); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("%s is %v (%v), want the blob", to, fi, err)
			}
			if b, _ := os.ReadFile(to); string(b) != "genuine" {
				t.Errorf("%s holds %q", to, b)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "other")); string(b) != "another file" {
			t.Errorf("the link's target in %s holds %q", dir, b)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 3 {
			t.Errorf("%s holds %d entries, want the blob, the link's replacement and the other file only", dir, len(ents))
		}
	}
}

// shmDir is a directory on another filesystem than the temporary one,
// where a hard link fails (EXDEV) and a copy is made.
func shmDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "hoist-test-")
	if err != nil {
		t.Fatalf("/dev/shm is needed: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// State the repository or a cache planted is read bounded: a FIFO is not
// waited on, a device is not read, a link out of the workspace is not
// followed, a large file is refused after max+1 bytes; each within a
// second. A regular file (and a link to one inside) is read.
func TestReadRegularIsBounded(t *testing.T) {
	ws := t.TempDir()
	w := Workspace(ws)
	p := func(n string) string { return filepath.Join(ws, n) }
	if err := syscall.Mkfifo(p("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", p("zero"))
	os.WriteFile(p("big"), make([]byte, 2048), 0o644)
	os.WriteFile(p("ok"), []byte(`{"ok":true}`), 0o644)
	os.Symlink("ok", p("link-in"))
	outside := t.TempDir()
	os.Symlink("/dev/zero", filepath.Join(outside, "zero"))
	for _, c := range []struct {
		path string
		want error
	}{
		{p("fifo"), ErrNotRegular},
		{p("zero"), ErrLinkOut},
		{p("big"), ErrTooLarge},
		{filepath.Join(outside, "zero"), ErrNotRegular},
		{p("dir-missing/x"), fs.ErrNotExist},
		{ws, ErrIsDir},
	} {
		done := make(chan error, 1)
		go func() { _, err := w.ReadRegular(c.path, 1024); done <- err }()
		select {
		case err := <-done:
			if c.want == ErrIsDir {
				if !errors.Is(err, ErrNotRegular) {
					t.Errorf("%s: %v, want %v", c.path, err, ErrNotRegular)
				}
				continue
			}
			if !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.path, err, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: not done within 5s", c.path)
		}
	}
	for _, n := range []string{"ok", "link-in"} {
		if b, err := w.ReadRegular(p(n), 1024); err != nil || string(b) != `{"ok":true}` {
			t.Errorf("%s: %q, %v", n, b, err)
		}
	}
	if _, err := w.ReadRegular(p("fifo"), 1024); !strings.Contains(fmt.Sprint(err), "not a regular file (a FIFO)") {
		t.Errorf("the FIFO's error says %v", err)
	}
}
