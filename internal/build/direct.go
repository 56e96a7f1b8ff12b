package build

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/tarball"
)

// With an engine on this machine whose content store hoist can read (the
// embedded engine), the image is exported once into the engine's own
// content store and taken from there: its blobs are hard-linked into the
// OCI layout hoist pushes from and keeps, and tarballs are written from
// them. Nothing is streamed back through BuildKit's session, which on these
// machines moves about 150 MB/s and costs the client a CPU second per
// 512 MB; see docs/benchmarks.md. The exported image is held by the
// engine's build history until hoist has linked it.

// descriptorOf reads the exporter's image descriptor.
func descriptorOf(resp map[string]string) (v1.Descriptor, error) {
	var d v1.Descriptor
	raw, err := base64.StdEncoding.DecodeString(resp["containerimage.descriptor"])
	if err != nil || len(raw) == 0 {
		return d, errors.New("the engine reported no image descriptor")
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("image descriptor: %w", err)
	}
	return d, nil
}

// linkLayout makes an OCI layout at dir holding the image desc, its blobs
// hard-linked (or copied) from the content store at content, following no
// link out of the workspace ws.
func linkLayout(ctx context.Context, ws files.Workspace, content string, desc v1.Descriptor, dir string) error {
	if err := ws.MkdirAll(filepath.Join(dir, "blobs", "sha256")); err != nil {
		return err
	}
	var visit func(d v1.Descriptor) error
	visit = func(d v1.Descriptor) error {
		from := filepath.Join(content, "blobs", d.Digest.Algorithm, d.Digest.Hex)
		to := filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex)
		if _, err := os.Stat(to); err == nil {
			return nil
		}
		if err := ws.LinkOrCopy(ctx, from, to); err != nil {
			return fmt.Errorf("take %s from the engine's content store: %w", d.Digest, err)
		}
		switch {
		case d.MediaType.IsIndex():
			var im v1.IndexManifest
			if err := readJSON(to, &im); err != nil {
				return err
			}
			for _, c := range im.Manifests {
				if err := visit(c); err != nil {
					return err
				}
			}
		case d.MediaType.IsImage():
			var m v1.Manifest
			if err := readJSON(to, &m); err != nil {
				return err
			}
			for _, c := range append([]v1.Descriptor{m.Config}, m.Layers...) {
				if err := visit(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit(desc); err != nil {
		return err
	}
	idx, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json", Manifests: []v1.Descriptor{desc}})
	if err != nil {
		return err
	}
	if err := ws.WriteAtomic(filepath.Join(dir, "index.json"), idx); err != nil {
		return err
	}
	return ws.WriteAtomic(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`))
}

func readJSON(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// writeTarballs writes the requested tarball and daemon stream from the
// layout, at once; when one fails, the other stops.
func writeTarballs(ctx context.Context, req Request) error {
	g, ctx := errgroup.WithContext(ctx)
	if req.Out.Tar != nil {
		g.Go(func() error {
			f := tarball.Format(req.Out.TarFormat)
			if f == "" {
				f = tarball.Docker
			}
			err := tarball.Write(ctx, req.Out.Tar, req.Out.LayoutDir, f, req.Names)
			if cerr := req.Out.Tar.Close(); err == nil {
				err = cerr
			}
			return err
		})
	}
	if req.Out.Load != nil {
		g.Go(func() error {
			err := tarball.Write(ctx, req.Out.Load, req.Out.LayoutDir, tarball.Docker, req.Names)
			if cerr := req.Out.Load.Close(); err == nil {
				err = cerr
			}
			return err
		})
	}
	return g.Wait()
}
