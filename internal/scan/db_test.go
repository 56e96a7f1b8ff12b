package scan

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/runid"
)

func dbTarGz(t *testing.T, entries ...tar.Header) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range entries {
		body := "content of " + h.Name
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	zw.Close()
	return &buf
}

// The database artifact's db.tar.gz writes trivy.db and metadata.json
// and nothing else: no other name, no link, no path out of the directory.
func TestExtractDB(t *testing.T) {
	t.Parallel()
	reg := func(n string) tar.Header { return tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644} }
	for _, c := range []struct {
		name    string
		entries []tar.Header
		want    string // "" for success
	}{
		{"the two files", []tar.Header{reg("trivy.db"), reg("./metadata.json")}, ""},
		{"other names are not written", []tar.Header{reg("../escape"), reg("/abs"), reg("sub/trivy.db"), reg("trivy.db"), reg("metadata.json")}, ""},
		{"a link", []tar.Header{{Name: "trivy.db", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, reg("metadata.json")}, "trivy.db is not a regular file"},
		{"a file missing", []tar.Header{reg("trivy.db")}, "holds no metadata.json"},
		{"twice", []tar.Header{reg("trivy.db"), reg("trivy.db"), reg("metadata.json")}, "file exists"},
	} {
		root := t.TempDir()
		dir := filepath.Join(root, "db")
		os.Mkdir(dir, 0o755)
		err := extractDB(dbTarGz(t, c.entries...), dir)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		var names []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if !d.IsDir() {
				names = append(names, strings.TrimPrefix(p, root+"/"))
			}
			return nil
		})
		for _, n := range names {
			if n != "db/trivy.db" && n != "db/metadata.json" {
				t.Errorf("%s: wrote %s", c.name, n)
			}
		}
	}
	if err := extractDB(strings.NewReader("not gzip"), t.TempDir()); err == nil || !strings.Contains(err.Error(), "not gzip") {
		t.Errorf("not gzip: %v", err)
	}
}

func TestCheckDigest(t *testing.T) {
	t.Parallel()
	good := "sha256:" + strings.Repeat("ab", 32)
	if err := CheckDigest(good); err != nil {
		t.Errorf("%s: %v", good, err)
	}
	for _, bad := range []string{"latest", "sha256:abc", "sha512:" + strings.Repeat("ab", 64), strings.Repeat("ab", 32)} {
		if err := CheckDigest(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// A cache may come from elsewhere (restored, or written by an earlier
// step), so what hoist reads of it before Trivy runs is bounded:
// metadata.json and hoist-origin.json must be regular files (not a FIFO,
// whose read would block the step for ever, nor a link) of at most
// maxDBMeta bytes; trivy.db must be a regular file. A bad metadata.json
// or trivy.db is no database (an error naming the file); a bad origin
// file makes the database's digest unknown.
func TestDatabaseFilesAreReadBounded(t *testing.T) {
	t.Parallel()
	good := []byte(`{"Version":2,"NextUpdate":"2999-01-01T00:00:00Z","UpdatedAt":"2024-01-01T00:00:00Z"}`)
	huge := bytes.Repeat([]byte(" "), 1<<20)
	for _, c := range []struct {
		name string
		make func(dir string) error
		want string // the error, "" for a database of unknown digest
	}{
		{"metadata.json a FIFO", func(dir string) error { return syscall.Mkfifo(filepath.Join(dir, "metadata.json"), 0o644) }, "metadata.json is not a regular file"},
		{"metadata.json a link", func(dir string) error {
			os.WriteFile(filepath.Join(dir, "elsewhere.json"), good, 0o644)
			return os.Symlink("elsewhere.json", filepath.Join(dir, "metadata.json"))
		}, "metadata.json is a symbolic link"},
		{"metadata.json huge", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "metadata.json"), append(huge, good...), 0o644)
		}, "over the bound"},
		{"trivy.db a FIFO", func(dir string) error {
			os.Remove(filepath.Join(dir, "trivy.db"))
			return syscall.Mkfifo(filepath.Join(dir, "trivy.db"), 0o644)
		}, "trivy.db is not a regular file"},
		{"origin a FIFO", func(dir string) error { return syscall.Mkfifo(filepath.Join(dir, originFile), 0o644) }, ""},
		{"origin huge", func(dir string) error { return os.WriteFile(filepath.Join(dir, originFile), huge, 0o644) }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			dir := filepath.Join(cache, "db")
			os.Mkdir(dir, 0o755)
			os.WriteFile(filepath.Join(dir, "trivy.db"), []byte("bolt"), 0o644)
			if !strings.HasPrefix(c.name, "metadata.json") {
				os.WriteFile(filepath.Join(dir, "metadata.json"), good, 0o644)
			}
			if err := c.make(dir); err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			s := &Scanner{o: Options{CacheDir: cache, Now: time.Now, Timeout: time.Minute, Logf: func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) }}}
			type answer struct {
				db  *DBInfo
				err error
			}
			done := make(chan answer, 1)
			go func() { db, err := s.database(context.Background()); done <- answer{db, err} }()
			var a answer
			select {
			case a = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("reading the database's files did not return within 10s (blocked on a FIFO?)")
			}
			switch {
			case c.want != "" && (a.err == nil || !strings.Contains(a.err.Error(), c.want)):
				t.Errorf("%v, want an error saying %q", a.err, c.want)
			case c.want == "" && a.err != nil:
				t.Errorf("%v, want the database with an unknown digest", a.err)
			case c.want == "" && (a.db.Digest != "" || !strings.Contains(log.String(), originFile+" cannot be read")):
				t.Errorf("digest %q, log %q: want no digest, and a log saying the origin file cannot be read", a.db.Digest, log.String())
			}
		})
	}
}

// The origin file vouches for the database only in the run that wrote
// it: one stamped with another run, or with none, in a CI run, names no
// digest, and a pin is then refused when there is nowhere to fetch from
// (the command's tests fetch it again: TestForgedDatabaseOriginVouchesForNothing).
func TestDatabaseOriginCountsInItsRunOnly(t *testing.T) {
	t.Parallel()
	run := func(n string) runid.Run {
		return runid.FromEnv(func(k string) (string, bool) {
			v, ok := map[string]string{"DRONE_BUILD_NUMBER": n, "DRONE_REPO": "acme/app"}[k]
			return v, ok
		})
	}
	pin := "sha256:" + strings.Repeat("ab", 32)
	for _, c := range []struct {
		name, stamp string
		want        string // "" when the origin counts
	}{
		{"this run", run("7").ID, ""},
		{"another run", run("6").ID, "it was made by another run than this one"},
		{"no run", "", "it names no run"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			dir := filepath.Join(cache, "db")
			os.Mkdir(dir, 0o755)
			meta := []byte(`{"Version":2,"NextUpdate":"2999-01-01T00:00:00Z","UpdatedAt":"2024-01-01T00:00:00Z"}`)
			os.WriteFile(filepath.Join(dir, "trivy.db"), []byte("bolt"), 0o644)
			os.WriteFile(filepath.Join(dir, "metadata.json"), meta, 0o644)
			st, _ := os.Stat(filepath.Join(dir, "trivy.db"))
			b, _ := json.Marshal(map[string]any{"repository": "mirror.example/trivy-db:2", "digest": pin, "metadata": sha256Hex(meta),
				"dbSize": st.Size(), "dbModTime": st.ModTime(), "run": c.stamp})
			os.WriteFile(filepath.Join(dir, originFile), b, 0o644)
			var log strings.Builder
			s := &Scanner{o: Options{CacheDir: cache, DBDigest: pin, Run: run("7"), Now: time.Now, Timeout: time.Minute,
				Logf: func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) }}}
			db, err := s.database(context.Background())
			if c.want == "" {
				if err != nil || db.Digest != pin {
					t.Errorf("%v, digest %v: want the pinned database from the cache", err, db)
				}
				return
			}
			if !errors.Is(err, ErrScanner) || !strings.Contains(err.Error(), "was not fetched by hoist in this run") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v, want a refusal saying %q", err, c.want)
			}
			// Unpinned, the database is used, with no digest, and the
			// log says why.
			s.o.DBDigest = ""
			db, err = s.database(context.Background())
			if err != nil || db.Digest != "" || db.FetchedFrom != "" {
				t.Fatalf("unpinned: %v, %+v: want the database with no digest", err, db)
			}
			if !strings.Contains(log.String(), "no known digest") || !strings.Contains(log.String(), c.want) {
				t.Errorf("unpinned: the log does not say why there is no digest:\n%s", log.String())
			}
		})
	}
}
