package source

import (
	"archive/tar"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ociArchive writes the layout dir as an OCI archive (a tar of it).
func ociArchive(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), filepath.Base(dir)+".tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// Issue 24, item 5: an invalid digest inside an OCI layout's index.json,
// or inside a manifest it names, is said as what it is (the descriptor,
// its digest, what a digest looks like), not as "not valid JSON"; JSON
// that breaks is still said to be. The hostile layouts are in
// testdata/hostile, each read as a directory and as an OCI archive.
func TestInvalidDigestInLayoutIsNamed(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		layout string
		want   []string
		not    string
	}{
		{"index-bad-digest", []string{"index.json of ", `manifests[0] (app:1) has digest "sha256:not-a-digest", which is not a digest`,
			"found non-hex character in hash: n", "a digest is an algorithm, a colon and the content's hash in lowercase hexadecimal: sha256: and 64 digits",
			"write the image again with the tool that made it"}, "not valid JSON"},
		{"manifest-bad-digest", []string{"image manifest sha256:a92224e3ab0c4ffb3c4a1eaafe6d6d9175877bdf6f4712ceb328b8bc5691a869 in ",
			`layers[0] has digest "sha256:4783C9C16CC9B7E0AD0E2F1A1B3D64F6C2E3F1B8E5E1F0B0A4C3D2E1F0A9B8C7", which is not a digest`,
			"found non-hex character in hash: C", "in lowercase hexadecimal"}, "not valid JSON"},
		{"index-not-json", []string{"index.json of ", "is not valid JSON: unexpected end of JSON input"}, "digest"},
	} {
		dir := filepath.Join("testdata", "hostile", c.layout)
		if _, err := fs.Stat(os.DirFS(dir), "index.json"); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{dir, ociArchive(t, dir)} {
			_, err := Open(context.Background(), Request{TarPath: path, TempDir: t.TempDir()})
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("%s: error %v, want ErrBadInput", path, err)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: the error lacks %q: %v", path, w, err)
				}
			}
			if strings.Contains(err.Error(), c.not) {
				t.Errorf("%s: the error says %q: %v", path, c.not, err)
			}
		}
	}
}
