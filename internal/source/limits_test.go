package source

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
