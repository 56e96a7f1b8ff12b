// Package tarball writes an image from an OCI image layout directory as a
// tarball: an OCI archive, or a docker-archive (the same, plus the
// manifest.json that docker load reads). Blobs are copied as they are, so
// the digests in the tarball are the digests that were built.
package tarball

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Format is docker or oci.
type Format string

const (
	Docker Format = "docker"
	OCI    Format = "oci"
)

// Write writes the image of the layout at dir (its index.json holds one
// descriptor) to w in format f, naming it names (full references). It
// stops between blobs when ctx ends.
func Write(ctx context.Context, w io.Writer, dir string, f Format, names []string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return fmt.Errorf("index.json of %s: %w", dir, err)
	}
	if len(idx.Manifests) != 1 {
		return fmt.Errorf("%s holds %d images, want 1", dir, len(idx.Manifests))
	}
	root := idx.Manifests[0]

	// index.json names the image as BuildKit's exporters do.
	var out v1.IndexManifest
	out.SchemaVersion, out.MediaType = 2, "application/vnd.oci.image.index.v1+json"
	if len(names) == 0 {
		out.Manifests = append(out.Manifests, root)
	}
	for _, n := range names {
		d := root
		d.Annotations = map[string]string{"io.containerd.image.name": n}
		if t, err := name.NewTag(n, name.WeakValidation); err == nil {
			d.Annotations["org.opencontainers.image.ref.name"] = t.TagStr()
		}
		out.Manifests = append(out.Manifests, d)
	}
	index, err := json.Marshal(out)
	if err != nil {
		return err
	}

	blobs, manifestJSON, err := walk(dir, root, f, names)
	if err != nil {
		return err
	}
	tw := &tarWriter{w: w}
	mod := time.Unix(0, 0)
	small := func(name string, b []byte) error {
		return tw.entry(&tar.Header{Name: name, Mode: 0o444, Size: int64(len(b)), ModTime: mod, Typeflag: tar.TypeReg}, bytes.NewReader(b))
	}
	if err := small("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.entry(&tar.Header{Name: d, Mode: 0o755, ModTime: mod, Typeflag: tar.TypeDir}, nil); err != nil {
			return err
		}
	}
	for _, b := range blobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := copyBlob(tw, dir, b, mod); err != nil {
			return err
		}
	}
	if err := small("index.json", index); err != nil {
		return err
	}
	if manifestJSON != nil {
		if err := small("manifest.json", manifestJSON); err != nil {
			return err
		}
	}
	return tw.close()
}

// tarWriter writes a tar stream whose entry headers come from archive/tar
// and whose contents go straight to w with io.Copy, so that a file copied
// into a file moves inside the kernel (copy_file_range) instead of through
// this process.
type tarWriter struct {
	w io.Writer
}

var zeros [1024]byte

func (t *tarWriter) entry(h *tar.Header, body io.Reader) error {
	var hdr bytes.Buffer
	if err := tar.NewWriter(&hdr).WriteHeader(h); err != nil {
		return err
	}
	if _, err := t.w.Write(hdr.Bytes()); err != nil {
		return err
	}
	if body == nil || h.Size == 0 {
		return nil
	}
	n, err := io.Copy(t.w, io.LimitReader(body, h.Size))
	if err != nil {
		return err
	}
	if n != h.Size {
		return fmt.Errorf("%s: wrote %d of %d bytes", h.Name, n, h.Size)
	}
	if pad := (512 - h.Size%512) % 512; pad > 0 {
		_, err = t.w.Write(zeros[:pad])
	}
	return err
}

// close ends the archive with two zero blocks.
func (t *tarWriter) close() error {
	_, err := t.w.Write(zeros[:])
	return err
}

func copyBlob(tw *tarWriter, dir string, d v1.Descriptor, mod time.Time) error {
	p := filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex)
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	// The *os.File itself, so that io.Copy can use copy_file_range.
	if err := tw.entry(&tar.Header{Name: "blobs/" + d.Digest.Algorithm + "/" + d.Digest.Hex, Mode: 0o444, Size: st.Size(), ModTime: mod, Typeflag: tar.TypeReg}, f); err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return nil
}

// walk lists every blob the root needs (children first, each once) and, for
// the docker format, builds manifest.json.
func walk(dir string, root v1.Descriptor, f Format, names []string) ([]v1.Descriptor, []byte, error) {
	var blobs []v1.Descriptor
	seen := map[v1.Hash]bool{}
	add := func(d v1.Descriptor) {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			blobs = append(blobs, d)
		}
	}
	var manifestJSON []byte
	var visit func(d v1.Descriptor, top bool) error
	visit = func(d v1.Descriptor, top bool) error {
		raw, err := os.ReadFile(filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex))
		if err != nil {
			return fmt.Errorf("blob %s: %w", d.Digest, err)
		}
		switch {
		case d.MediaType.IsIndex():
			if top && f == Docker {
				return fmt.Errorf("a docker tarball holds one platform and this image has several; write an OCI tarball (PLUGIN_BUILDX_OUTPUT_FORMAT=oci)")
			}
			var im v1.IndexManifest
			if err := json.Unmarshal(raw, &im); err != nil {
				return err
			}
			for _, c := range im.Manifests {
				if _, err := os.Stat(filepath.Join(dir, "blobs", c.Digest.Algorithm, c.Digest.Hex)); err != nil {
					continue // a child the layout does not carry
				}
				if err := visit(c, false); err != nil {
					return err
				}
			}
		case d.MediaType.IsImage():
			var m v1.Manifest
			if err := json.Unmarshal(raw, &m); err != nil {
				return err
			}
			add(m.Config)
			var layers []string
			for _, l := range m.Layers {
				add(l)
				layers = append(layers, "blobs/"+l.Digest.Algorithm+"/"+l.Digest.Hex)
			}
			if top && f == Docker {
				tags := names
				if tags == nil {
					tags = []string{}
				}
				manifestJSON, err = json.Marshal([]map[string]any{{
					"Config":   "blobs/" + m.Config.Digest.Algorithm + "/" + m.Config.Digest.Hex,
					"RepoTags": dockerNames(tags),
					"Layers":   layers,
				}})
				if err != nil {
					return err
				}
			}
		}
		add(d)
		return nil
	}
	if err := visit(root, true); err != nil {
		return nil, nil, err
	}
	return blobs, manifestJSON, nil
}

// dockerNames writes names the way docker save does: Docker Hub images
// without their registry.
func dockerNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		n = strings.TrimPrefix(n, "index.docker.io/")
		n = strings.TrimPrefix(n, "library/")
		out = append(out, n)
	}
	return out
}
