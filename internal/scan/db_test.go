package scan

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
