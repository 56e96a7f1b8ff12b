package source

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// ScanTarget is one image of a source in a form a scanner (Trivy's
// image --input) reads: a docker-archive, or an OCI layout directory with
// "@" and the manifest digest; with the config digest and diff_ids the
// scanner's report must name.
type ScanTarget struct {
	Input string
	// Layerless, when set, is an OCI layout directory with "@" and the
	// manifest digest that holds the image's manifest and config but none
	// of its layers: all a scanner needs when its cache holds every layer
	// (by diff_id), without reading Input, which it cannot seek in.
	Layerless string
	Config    v1.Hash
	DiffIDs   []v1.Hash
	Platform  string
}

// ScanTargets returns the images of i as a scanner reads them: in place
// when the source is a docker-archive of this one image or an OCI layout
// directory naming this manifest, else written to a temporary OCI layout
// under tempDir (the exact manifests and blobs that are pushed), which
// release removes. An index gives one target per platform image.
//
// A scanner must read only bytes that are checked: call CheckForScan
// before it reads a target's Input.
func (i *Image) ScanTargets(tempDir string) (targets []ScanTarget, release func(), err error) {
	release = func() {}
	type member struct {
		img      v1.Image
		platform string
	}
	var members []member
	index := false
	switch a := i.Artifact.(type) {
	case v1.Image:
		members = append(members, member{img: a})
	case v1.ImageIndex:
		index = true
		im, err := a.IndexManifest()
		if err != nil {
			return nil, release, err
		}
		for _, d := range im.Manifests {
			if !d.MediaType.IsImage() || d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
				continue
			}
			img, err := a.Image(d.Digest)
			if err != nil {
				return nil, release, fmt.Errorf("image %s of index %s: %w", d.Digest, i.Digest, err)
			}
			p := ""
			if d.Platform != nil {
				p = d.Platform.String()
			}
			members = append(members, member{img: img, platform: p})
		}
	default:
		return nil, release, fmt.Errorf("%w: %s is neither an image nor an index", ErrBadInput, i.From)
	}
	for _, m := range members {
		cfg, err := m.img.ConfigName()
		if err != nil {
			return nil, release, err
		}
		cf, err := m.img.ConfigFile()
		if err != nil {
			return nil, release, err
		}
		targets = append(targets, ScanTarget{Config: cfg, DiffIDs: cf.RootFS.DiffIDs, Platform: m.platform})
	}
	if !index {
		// In place only when every layer file the scanner reads there was
		// checked: a layer hoist took from the compression cache was not
		// read from the archive.
		if i.archive != "" && !i.local.rawUnread() {
			targets[0].Input = i.archive
			dir, err := os.MkdirTemp(tempDir, "hoist-scan-layerless-*")
			if err != nil {
				return nil, release, err
			}
			release = func() { os.RemoveAll(dir) }
			if targets[0].Layerless, err = writeLayerless(dir, members[0].img); err != nil {
				release()
				return nil, func() {}, fmt.Errorf("write the manifest and config of %s for the scanner: %w", i.From, err)
			}
			return targets, release, nil
		}
		if l, ok := i.local.(*ociLayout); ok && l.dir != "" && l.names(i.Digest) {
			targets[0].Input = l.dir + "@" + i.Digest.String()
			return targets, release, nil
		}
	}
	dir, err := os.MkdirTemp(tempDir, "hoist-scan-layout-*")
	if err != nil {
		return nil, release, err
	}
	release = func() { os.RemoveAll(dir) }
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		release()
		return nil, func() {}, err
	}
	for j, m := range members {
		if err := lp.AppendImage(m.img); err != nil {
			release()
			return nil, func() {}, fmt.Errorf("write %s for the scanner: %w", i.From, err)
		}
		d, err := m.img.Digest()
		if err != nil {
			release()
			return nil, func() {}, err
		}
		targets[j].Input = dir + "@" + d.String()
	}
	return targets, release, nil
}

// CheckForScan checks what a scanner reads of i's ScanTargets: every
// layer of an image read from a file or directory, against its diff_id
// (as CheckContent does, an uncompressed one hashed too; the push then does not
// check it again), unless hoist compressed it or this run's build wrote
// it into the workspace image store it is read from. A verdict is
// recorded under the manifest digest, which names the diff_ids, not the
// bytes of a file: bytes that are not what their digest says would
// otherwise be scanned in place of the image's own (a registry that
// already holds the layer never sees them), and kept in the scanner's
// layer cache under the genuine diff_id. It runs once; later calls
// return its result.
func (i *Image) CheckForScan(ctx context.Context) error {
	i.scanMu.Lock()
	defer i.scanMu.Unlock()
	if i.scanChecked {
		return nil
	}
	if err := i.checkContent(ctx, true); err != nil {
		return err
	}
	i.scanChecked = true
	return nil
}

// writeLayerless writes an OCI layout in dir of img's manifest and config
// only, and returns dir with "@" and the manifest digest.
func writeLayerless(dir string, img v1.Image) (string, error) {
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", err
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return "", err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return "", err
	}
	cfg, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	mt, err := img.MediaType()
	if err != nil {
		return "", err
	}
	for _, b := range []struct {
		h    v1.Hash
		data []byte
	}{{cfg, config}, {d, manifest}} {
		if err := lp.WriteBlob(b.h, io.NopCloser(bytes.NewReader(b.data))); err != nil {
			return "", err
		}
	}
	if err := lp.AppendDescriptor(v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(manifest))}); err != nil {
		return "", err
	}
	return dir + "@" + d.String(), nil
}

// names reports whether the layout's index.json lists the manifest h
// itself (not inside a nested index, and not a manifest hoist made).
func (l *ociLayout) names(h v1.Hash) bool {
	im, _, err := l.indexJSON()
	if err != nil {
		return false
	}
	for _, d := range im.Manifests {
		if d.Digest == h {
			return d.MediaType.IsImage()
		}
	}
	return false
}

// singleImageArchive is path when the tar (fsys) is a docker-archive of
// exactly one image, else "".
func singleImageArchive(fsys fs.FS, path string) string {
	raw, err := readMeta(fsys, "manifest.json", path)
	if err != nil {
		return ""
	}
	var entries []json.RawMessage
	if json.Unmarshal(raw, &entries) != nil || len(entries) != 1 {
		return ""
	}
	return path
}
