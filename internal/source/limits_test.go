package source

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Metadata files larger than any real image's are refused with a clear
// error instead of being read into memory whole: a docker-archive's
// manifest.json and an OCI layout's index.json of 9 MiB.
func TestOversizedMetadataIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := "[" + strings.Repeat(" ", 9<<20) + "]"

	archive := filepath.Join(dir, "big-manifest.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(big)), Typeflag: tar.TypeReg})
	tw.Write([]byte(big))
	tw.Close()
	f.Close()

	layout := filepath.Join(dir, "big-index")
	os.MkdirAll(filepath.Join(layout, "blobs", "sha256"), 0o755)
	os.WriteFile(filepath.Join(layout, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(layout, "index.json"), []byte(big), 0o644)

	for path, name := range map[string]string{archive: "manifest.json", layout: "index.json"} {
		_, err := Open(context.Background(), Request{TarPath: path, TempDir: t.TempDir()})
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "larger than 8388608 bytes") {
			t.Errorf("%s: error %v", path, err)
		}
	}
}
