package files

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

func TestAtomicCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "out.tar")
	a, err := Create(p)
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

	b, err := Create(filepath.Join(dir, "sub", "gone.tar"))
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
	err := CopyAtomic(ctx, filepath.Join(dir, "x"), strings.NewReader("data"))
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
			errs <- LinkOrCopy(context.Background(), from, to)
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
	if err := CopyAtomic(context.Background(), to, in); err != nil {
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
	a, err := Create(p)
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
	if err := WriteAtomic(link, []byte("new")); err != nil {
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
	if err := WriteAtomic(dir, []byte("x")); !errors.Is(err, ErrIsDir) {
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
	if err := WriteAtomic(out, []byte("sha256:abc\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "sha256:abc\n" {
		t.Errorf("written in place: %q", b)
	}
}
