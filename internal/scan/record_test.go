package scan

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hoist-build/hoist/internal/files"
)

// A scan record is read before anything says who made it: one the
// repository or a cache planted as a FIFO, a link to /dev/zero (in the
// workspace, or in a records directory outside it) or a file larger than
// MaxRecord is refused within a second, saying why; a real record is
// read.
func TestReadRecordIsBounded(t *testing.T) {
	ws := t.TempDir()
	dir := filepath.Join(ws, ".hoist", "scans")
	outside := t.TempDir()
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	for _, c := range []struct {
		name, dir string
		plant     func(p string)
		want      string
	}{
		{"fifo", dir, func(p string) { syscall.Mkfifo(p, 0o644) }, "not a regular file (a FIFO)"},
		{"link to /dev/zero", dir, func(p string) { os.Symlink("/dev/zero", p) }, "is a symbolic link to /dev/zero, out of the workspace"},
		{"link to /dev/zero outside the workspace", outside, func(p string) { os.Symlink("/dev/zero", p) }, "not a regular file (a character device)"},
		{"too large", dir, func(p string) { os.WriteFile(p, make([]byte, MaxRecord+1), 0o644) }, "it has more than 1048576 bytes"},
	} {
		p := RecordPath(c.dir, d)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.Remove(p)
		c.plant(p)
		done := make(chan error, 1)
		go func() { _, err := ReadRecord(files.Workspace(ws), c.dir, d); done <- err }()
		select {
		case err := <-done:
			if err == nil || errors.Is(err, ErrNoRecord) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %v, want %q", c.name, err, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: ReadRecord did not return within 5s", c.name)
		}
	}
	p := RecordPath(dir, d)
	os.Remove(p)
	if _, err := ReadRecord(files.Workspace(ws), dir, d); !errors.Is(err, ErrNoRecord) {
		t.Errorf("no record: %v", err)
	}
	os.WriteFile(p, []byte(`{"digest":"`+d.String()+`","passed":true}`), 0o644)
	if r, err := ReadRecord(files.Workspace(ws), dir, d); err != nil || !r.Passed || r.Path != p {
		t.Errorf("a record: %+v, %v", r, err)
	}
}
