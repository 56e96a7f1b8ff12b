package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hoist-build/hoist/internal/harness"
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

// An OCI layout whose manifest gives a layer a wrong size, or a negative
// one, is damaged input: refused before anything is pushed, naming the
// blob, though the registry would have taken it.
func TestWrongDescriptorSizeIsRefused(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	for _, delta := range []int64{1, -1 << 40} {
		dir := filepath.Join(t.TempDir(), "layout")
		harness.Run(t, nil, "cp", "-r", f.SkopeoLayout, dir)
		var idx v1.IndexManifest
		b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
		json.Unmarshal(b, &idx)
		mpath := filepath.Join(dir, "blobs", "sha256", idx.Manifests[0].Digest.Hex)
		var m v1.Manifest
		b, _ = os.ReadFile(mpath)
		json.Unmarshal(b, &m)
		m.Layers[0].Size += delta
		raw, _ := json.Marshal(m)
		h, size, _ := v1.SHA256(bytes.NewReader(raw))
		os.WriteFile(filepath.Join(dir, "blobs", "sha256", h.Hex), raw, 0o644)
		idx.Manifests[0].Digest, idx.Manifests[0].Size = h, size
		b, _ = json.Marshal(idx)
		os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644)

		_, err := Open(context.Background(), Request{TarPath: dir, TempDir: t.TempDir()})
		want := fmt.Sprintf("blobs/sha256/%s is %d bytes, its descriptor says %d", m.Layers[0].Digest.Hex, m.Layers[0].Size-delta, m.Layers[0].Size)
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), want) {
			t.Errorf("size %+d: error %v, want %q", delta, err, want)
		}
	}
}

// gzipTar writes a gzip-compressed tar holding one file of size zero
// bytes, followed by trailing zero bytes after the end of the archive.
func gzipTar(t *testing.T, path string, size, trailing int64) (tarSize int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	counted := &countWriter{w: zw}
	tw := tar.NewWriter(counted)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
	zeros := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(zeros)) {
		tw.Write(zeros[:min(left, int64(len(zeros)))])
	}
	tw.Close()
	tarSize = counted.n
	for left := trailing; left > 0; left -= int64(len(zeros)) {
		zw.Write(zeros[:min(left, int64(len(zeros)))])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return tarSize
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// A compressed tarball is decompressed only to its end-of-archive marker
// (256 MiB of zeros after it, a 256 KiB gzip, cost nothing), and never
// past the room left in the temporary directory: a bomb is refused with a
// clear error, and its temporary file removed.
func TestDecompressionIsBounded(t *testing.T) {
	dir := t.TempDir()
	trailing := filepath.Join(dir, "trailing.tar.gz")
	want := gzipTar(t, trailing, 1024, 256<<20)
	tmp := t.TempDir()
	got, _, err := plainTar(trailing, tmp)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(got)
	if err != nil || st.Size() != want {
		t.Errorf("decompressed to %d bytes (%v), the tar is %d", st.Size(), err, want)
	}
	os.Remove(got)

	bomb := filepath.Join(dir, "bomb.tar.gz")
	gzipTar(t, bomb, 64<<20, 0)
	old := roomFor
	roomFor = func(string) int64 { return 16 << 20 }
	defer func() { roomFor = old }()
	_, _, err = plainTar(bomb, tmp)
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "decompresses to more than the 16.0MiB free in "+tmp) || !strings.Contains(err.Error(), "TMPDIR") {
		t.Errorf("error %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
