package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/harness"
)

// The blobs linked from the engine's content store into a build's layout
// in the workspace follow no symbolic link out of it: a layout whose
// blobs directory leads out is refused, and the directory outside keeps
// what it held; a layout in the workspace is made whole.
func TestLinkLayoutFollowsNoLinkOut(t *testing.T) {
	t.Parallel()
	content := t.TempDir()
	put := func(b []byte) v1.Descriptor {
		h, n, _ := v1.SHA256(bytes.NewReader(b))
		os.MkdirAll(filepath.Join(content, "blobs", "sha256"), 0o755)
		if err := os.WriteFile(filepath.Join(content, "blobs", "sha256", h.Hex), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return v1.Descriptor{Digest: h, Size: n}
	}
	cfg := put([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}`))
	cfg.MediaType = types.OCIConfigJSON
	layer := put([]byte("layer bytes"))
	layer.MediaType = types.OCILayer
	raw, _ := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{layer}})
	desc := put(raw)
	desc.MediaType = types.OCIManifestSchema1

	ws := t.TempDir()
	outside := t.TempDir()
	kept := harness.Untouched(t, filepath.Join(outside, "sha256", "kept"), "outside")
	dir := filepath.Join(ws, ".hoist", "images", "layout")
	os.MkdirAll(dir, 0o755)
	if err := os.Symlink(outside, filepath.Join(dir, "blobs")); err != nil {
		t.Fatal(err)
	}
	err := linkLayout(context.Background(), files.Workspace(ws), content, desc, dir)
	var lo *files.LinkOutError
	if !errors.As(err, &lo) {
		t.Errorf("a layout whose blobs lead out: %v, want a LinkOutError", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(outside, "sha256")); len(entries) != 1 {
		t.Errorf("written outside the workspace: %v (besides %s)", entries, kept)
	}

	good := filepath.Join(ws, ".hoist", "images", "good")
	if err := linkLayout(context.Background(), files.Workspace(ws), content, desc, good); err != nil {
		t.Fatal(err)
	}
	for _, d := range []v1.Descriptor{desc, cfg, layer} {
		if _, err := os.Stat(filepath.Join(good, "blobs", "sha256", d.Digest.Hex)); err != nil {
			t.Errorf("blob %s: %v", d.Digest, err)
		}
	}
	if _, err := os.Stat(filepath.Join(good, "index.json")); err != nil {
		t.Error(err)
	}
}
