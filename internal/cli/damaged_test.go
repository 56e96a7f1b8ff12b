package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hoist-build/hoist/internal/harness"
)

// rewriteTar copies the tar at src to dst, passing each regular file's
// content through edit (which may rename it by returning a new name).
func rewriteTar(t *testing.T, src, dst string, edit func(name string, b []byte) (string, []byte)) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Name, b = edit(hdr.Name, b)
			hdr.Size = int64(len(b))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// otherLayer is a valid gzip layer whose content is not the image's.
func otherLayer(t *testing.T) []byte {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "evil.txt", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg})
	tw.Write([]byte("evil\n"))
	tw.Close()
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(tb.Bytes())
	zw.Close()
	return zb.Bytes()
}

// A docker-archive whose gzip layer is cut short, is not gzip, or
// decompresses to content other than its config's diff_id, is refused
// with exit 3 naming the layer and the file, and no tag is written. Each
// damaged layer is stored under its own digest (the name crane gives it,
// and manifest.json updated), so every blob is what its digest says and
// the registry alone would take the image. The archive is crane's (gzip
// layers, as kaniko --tar-path writes them); the same check holds for an
// OCI layout.
func TestDamagedLayersNeverLand(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	dir := t.TempDir()
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_DESTINATIONS": reg.Host + "/src/app:1"})
	good := filepath.Join(dir, "good.tar")
	reg.Crane(t, "pull", "--format", "tarball", reg.Host+"/src/app:1", good)

	// The first layer of manifest.json, the one each case damages.
	var first string
	layers := map[string][]byte{}
	rewriteTar(t, good, filepath.Join(dir, "copy.tar"), func(name string, b []byte) (string, []byte) {
		if name == "manifest.json" {
			var m []struct{ Layers []string }
			json.Unmarshal(b, &m)
			first = m[0].Layers[0]
		}
		layers[name] = b
		return name, b
	})
	if first == "" || !bytes.HasPrefix(layers[first], []byte{0x1f, 0x8b}) {
		t.Fatalf("crane's archive has no gzip layer (first %q)", first)
	}
	// The archive as crane wrote it pushes (the control), its layers
	// checked; pushed again, nothing is sent and nothing checked.
	goodEnv := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": good, "PLUGIN_DESTINATIONS": reg.Host + "/good/app:1"}
	r := mustPush(t, goodEnv)
	assertContains(t, r, "layers checked against the image config's diff_ids: ")
	assertNotContains(t, r, "diff_ids: 0 decompressed")
	if got := f.Docker.RunImage(t, reg.Host+"/good/app:1", "cat", "/built.txt"); got != f.Built {
		t.Fatalf("crane's archive pushed as %q", got)
	}
	r = mustPush(t, goodEnv)
	assertContains(t, r, "ok (up to date)")
	assertNotContains(t, r, "layers checked")

	evil := otherLayer(t)
	for _, c := range []struct {
		name string
		edit func([]byte) []byte
		want string
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, "ends before its compressed stream does"},
		{"not gzip", func(b []byte) []byte { return append(b[:2:2], bytes.Repeat([]byte{'x'}, 600)...) }, "is not gzip"},
		{"wrong diff_id", func([]byte) []byte { return evil }, "but the image config says its content is sha256:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			damaged := c.edit(append([]byte(nil), layers[first]...))
			h, _, _ := v1.SHA256(bytes.NewReader(damaged))
			renamed := h.Hex + ".tar.gz"
			bad := filepath.Join(t.TempDir(), "image.tar")
			rewriteTar(t, good, bad, func(name string, b []byte) (string, []byte) {
				switch name {
				case first:
					return renamed, damaged
				case "manifest.json":
					return name, bytes.ReplaceAll(b, []byte(first), []byte(renamed))
				}
				return name, b
			})
			repo := "bad/" + strings.ReplaceAll(c.name, " ", "-")
			r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": bad, "PLUGIN_DESTINATIONS": reg.Host + "/" + repo + ":1"})
			if r.code != ExitSource {
				t.Errorf("exit %d, want %d:\n%s", r.code, ExitSource, r)
			}
			assertContains(t, r, c.want, "layer "+renamed+" of docker-archive "+bad, "nothing was tagged", "FAILED")
			if tags := tagsOf(t, reg, repo); len(tags) > 0 {
				t.Errorf("tags were written: %v", tags)
			}
		})
	}

	t.Run("OCI layout, wrong diff_id", func(t *testing.T) {
		t.Parallel()
		layout := filepath.Join(t.TempDir(), "layout")
		harness.Run(t, nil, "cp", "-r", f.SkopeoLayout, layout)
		blobs := filepath.Join(layout, "blobs", "sha256")
		var idx v1.IndexManifest
		b, _ := os.ReadFile(filepath.Join(layout, "index.json"))
		json.Unmarshal(b, &idx)
		var m v1.Manifest
		b, _ = os.ReadFile(filepath.Join(blobs, idx.Manifests[0].Digest.Hex))
		json.Unmarshal(b, &m)
		// The layer is replaced by other content under its own digest, so
		// every blob is what its descriptor says.
		h, size, _ := v1.SHA256(bytes.NewReader(evil))
		os.WriteFile(filepath.Join(blobs, h.Hex), evil, 0o644)
		m.Layers[0].Digest, m.Layers[0].Size = h, size
		raw, _ := json.Marshal(m)
		mh, msize, _ := v1.SHA256(bytes.NewReader(raw))
		os.WriteFile(filepath.Join(blobs, mh.Hex), raw, 0o644)
		idx.Manifests[0].Digest, idx.Manifests[0].Size = mh, msize
		b, _ = json.Marshal(idx)
		os.WriteFile(filepath.Join(layout, "index.json"), b, 0o644)

		r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": layout, "PLUGIN_DESTINATIONS": reg.Host + "/bad/layout:1"})
		if r.code != ExitSource {
			t.Errorf("exit %d, want %d:\n%s", r.code, ExitSource, r)
		}
		assertContains(t, r, "layer blobs/sha256/"+h.Hex+" of OCI layout "+layout+" decompresses to sha256:", "nothing was tagged")
		if tags := tagsOf(t, reg, "bad/layout"); len(tags) > 0 {
			t.Errorf("tags were written: %v", tags)
		}
	})
}
