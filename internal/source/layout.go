package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hoist-build/hoist/internal/files"
)

// ociLayout reads an OCI image layout from any fs.FS: a directory or a tar
// (an OCI archive, or a docker-archive that carries an index.json). Every
// blob is verified against its digest as it is read.
type ociLayout struct {
	fsys fs.FS
	// dir is the layout's directory when it is one on disk ("" inside an
	// archive).
	dir   string
	where string
	// comp, when set, gzips uncompressed layers once (see recompress).
	comp *compressor

	generated blobSet // blobs hoist made (compressed layers, their manifests)
	// unread: a layer was taken from the compression cache, its blob in
	// the layout not read.
	unread atomic.Bool

	mu     sync.Mutex
	images map[v1.Hash]v1.Image // by the digest in the layout
}

// made records blobs that are not in the layout because hoist made them.
func (l *ociLayout) made(hs ...v1.Hash) { l.generated.add(hs...) }

func (l *ociLayout) hoistMade(h v1.Hash) bool { return l.generated.has(h) }
func (l *ociLayout) rawUnread() bool          { return l.unread.Load() }
func (l *ociLayout) fileOf(h v1.Hash) string  { return blobPath(h) + " of " + l.where }

func isLayout(fsys fs.FS) bool {
	_, err1 := fs.Stat(fsys, "oci-layout")
	_, err2 := fs.Stat(fsys, "index.json")
	return err1 == nil && err2 == nil
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// openBlob opens a manifest or config blob, verified against its digest.
func (l *ociLayout) openBlob(d v1.Descriptor, what string) (io.ReadCloser, error) {
	p := blobPath(d.Digest)
	f, err := l.fsys.Open(p)
	if err != nil {
		return nil, blobError(err, l.where, p, what)
	}
	return newVerifyingReader(f, d.Digest, d.Size, what+" "+p)
}

// openLayer opens a layer blob as it is, so that an upload can use
// sendfile(2). It is not hashed here: a registry verifies every blob's
// digest before it accepts it, so an altered layer fails its upload and no
// manifest or tag referring to it is written.
func (l *ociLayout) openLayer(d v1.Descriptor) (io.ReadCloser, error) {
	p := blobPath(d.Digest)
	if t, ok := l.fsys.(*tarFS); ok {
		return t.openRaw(p)
	}
	f, err := l.fsys.Open(p)
	if err != nil {
		return nil, blobError(err, l.where, p, "layer")
	}
	if rc, ok := f.(io.ReadCloser); ok {
		return rc, nil // an *os.File for a directory layout
	}
	return nil, fmt.Errorf("%s: %s is not readable as a stream", l.where, p)
}

// blobError says why a blob of a layout cannot be opened: it is not
// there, or (a directory layout) it cannot be read, such as a symbolic
// link that leads out of the layout.
func blobError(err error, where, p, what string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s lacks %s (%s)", ErrBadInput, where, p, what)
	}
	return fmt.Errorf("%w: %s: %s (%s) cannot be read: %w (a link in a layout must stay inside it)", ErrBadInput, where, p, what, err)
}

func (l *ociLayout) readBlob(d v1.Descriptor, what string) ([]byte, error) {
	rc, err := l.openBlob(d, what)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if d.Size > MaxMetadata {
		return nil, fmt.Errorf("%w: %s %s of %s is %d bytes; image metadata (manifests, indexes, configs) is at most %d", ErrBadInput, what, d.Digest, l.where, d.Size, MaxMetadata)
	}
	return readLimited(rc, what+" "+d.Digest.String()+" of "+l.where)
}

// MaxMetadata bounds every metadata file hoist reads into memory
// (manifest.json, index.json, manifests, configs): real ones are a few
// KiB, and a larger one is damaged or hostile.
const MaxMetadata = 8 << 20

// readLimited reads r whole, refusing more than MaxMetadata bytes.
func readLimited(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxMetadata+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMetadata {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes, the most image metadata may be", ErrBadInput, what, MaxMetadata)
	}
	return b, nil
}

// readMeta reads a metadata file of fsys, refusing one over MaxMetadata.
func readMeta(fsys fs.FS, name, where string) ([]byte, error) {
	f, err := fsys.Open(name)
	if errors.Is(err, files.ErrNotRegular) {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, name+" of "+where)
}

func (l *ociLayout) indexJSON() (*v1.IndexManifest, []byte, error) {
	raw, err := readMeta(l.fsys, "index.json", l.where)
	if err != nil {
		return nil, nil, fmt.Errorf("read index.json of %s: %w", l.where, err)
	}
	var im v1.IndexManifest
	if err := decodeMeta(raw, &im, "index.json of "+l.where); err != nil {
		return nil, nil, err
	}
	return &im, raw, nil
}

// candidates lists the images the layout's index.json names.
func (l *ociLayout) candidates() ([]candidate, error) {
	im, raw, err := l.indexJSON()
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, d := range im.Manifests {
		d := d
		var names []string
		for _, k := range []string{"io.containerd.image.name", "org.opencontainers.image.ref.name"} {
			if v := d.Annotations[k]; v != "" {
				names = append(names, v)
			}
		}
		out = append(out, candidate{names: names, label: d.Digest.String(), run: d.Annotations[RunAnnotation], open: func() (Artifact, error) { return l.artifact(d) }})
	}
	// Some tools list the platform images of one multi-platform image
	// directly in index.json, unnamed: then index.json is the index.
	if len(out) > 1 && allUnnamedPlatforms(im) {
		idx := &layoutIndex{l: l, raw: raw, manifest: im}
		d, err := partial.Descriptor(idx)
		if err != nil {
			return nil, err
		}
		idx.desc = *d
		return []candidate{{label: "index.json", open: func() (Artifact, error) { return idx, nil }}}, nil
	}
	return out, nil
}

func allUnnamedPlatforms(im *v1.IndexManifest) bool {
	for _, d := range im.Manifests {
		if d.Platform == nil || len(d.Annotations) > 0 && (d.Annotations["org.opencontainers.image.ref.name"] != "" || d.Annotations["io.containerd.image.name"] != "") {
			return false
		}
	}
	return true
}

func (l *ociLayout) artifact(d v1.Descriptor) (Artifact, error) {
	switch {
	case d.MediaType.IsIndex():
		return l.index(d)
	case d.MediaType.IsImage():
		return l.image(d)
	}
	return nil, fmt.Errorf("%w: %s names %s of media type %q, which is neither an image nor an index", ErrBadInput, l.where, d.Digest, d.MediaType)
}

func (l *ociLayout) index(d v1.Descriptor) (*layoutIndex, error) {
	raw, err := l.readBlob(d, "image index")
	if err != nil {
		return nil, err
	}
	var im v1.IndexManifest
	if err := decodeMeta(raw, &im, "image index "+d.Digest.String()+" in "+l.where); err != nil {
		return nil, err
	}
	x := &layoutIndex{l: l, desc: d, raw: raw, manifest: &im, children: map[v1.Hash]v1.Descriptor{}}
	for _, c := range im.Manifests {
		x.children[c.Digest] = c
	}
	if l.comp == nil {
		return x, nil
	}
	// Children whose layers get compressed get new digests: so does the
	// index.
	changed := false
	for i, c := range im.Manifests {
		if !c.MediaType.IsImage() {
			continue
		}
		if _, err := fs.Stat(l.fsys, blobPath(c.Digest)); err != nil {
			continue // not carried by this layout; checkBlobs reports it
		}
		img, err := l.image(c)
		if err != nil {
			return nil, err
		}
		nd, err := partial.Descriptor(img)
		if err != nil {
			return nil, err
		}
		if nd.Digest != c.Digest {
			changed = true
			im.Manifests[i].Digest, im.Manifests[i].Size = nd.Digest, nd.Size
			x.children[nd.Digest] = c
		}
	}
	if changed {
		x.raw, err = json.Marshal(im)
		if err != nil {
			return nil, err
		}
		x.desc.Digest, x.desc.Size, err = v1.SHA256(bytes.NewReader(x.raw))
		if err != nil {
			return nil, err
		}
		l.made(x.desc.Digest)
	}
	return x, nil
}

func (l *ociLayout) image(d v1.Descriptor) (v1.Image, error) {
	l.mu.Lock()
	img, ok := l.images[d.Digest]
	l.mu.Unlock()
	if ok {
		return img, nil
	}
	raw, err := l.readBlob(d, "image manifest")
	if err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := decodeMeta(raw, &m, "image manifest "+d.Digest.String()+" in "+l.where); err != nil {
		return nil, err
	}
	core := &layoutImage{l: l, desc: d, raw: raw, manifest: &m}
	if l.comp != nil {
		if core, err = l.comp.recompress(core); err != nil {
			return nil, err
		}
	}
	img, err = partial.CompressedToImage(core)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.images == nil {
		l.images = map[v1.Hash]v1.Image{}
	}
	l.images[d.Digest] = img
	l.mu.Unlock()
	return img, nil
}

// layoutImage is the compressed core of one image in a layout.
type layoutImage struct {
	l        *ociLayout
	desc     v1.Descriptor
	raw      []byte
	manifest *v1.Manifest
	// compressed are layers that hoist compressed, by their new digest.
	compressed map[v1.Hash]layerBlob
}

func (i *layoutImage) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *layoutImage) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }
func (i *layoutImage) Descriptor() (*v1.Descriptor, error) { d := i.desc; return &d, nil }
func (i *layoutImage) RawConfigFile() ([]byte, error) {
	return i.l.readBlob(i.manifest.Config, "image config")
}

func (i *layoutImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if lb, ok := i.compressed[h]; ok {
		return &openLayer{desc: lb.desc, open: lb.open}, nil
	}
	if h == i.manifest.Config.Digest {
		d := i.manifest.Config
		return &openLayer{desc: d, open: func() (io.ReadCloser, error) { return i.l.openBlob(d, "config") }}, nil
	}
	for _, d := range i.manifest.Layers {
		if d.Digest == h {
			return &openLayer{desc: d, open: func() (io.ReadCloser, error) { return i.l.openLayer(d) }}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in image %s", h, i.desc.Digest)
}

// layoutIndex is a multi-platform image index in a layout.
type layoutIndex struct {
	l        *ociLayout
	desc     v1.Descriptor
	raw      []byte
	manifest *v1.IndexManifest
	// children maps every child digest (new ones too) to its descriptor
	// in the layout.
	children map[v1.Hash]v1.Descriptor
}

var _ v1.ImageIndex = (*layoutIndex)(nil)

func (x *layoutIndex) MediaType() (types.MediaType, error) {
	if x.manifest.MediaType != "" {
		return x.manifest.MediaType, nil
	}
	if x.desc.MediaType != "" {
		return x.desc.MediaType, nil
	}
	return types.OCIImageIndex, nil
}
func (x *layoutIndex) Digest() (v1.Hash, error)                  { return partial.Digest(x) }
func (x *layoutIndex) Size() (int64, error)                      { return int64(len(x.raw)), nil }
func (x *layoutIndex) IndexManifest() (*v1.IndexManifest, error) { return x.manifest.DeepCopy(), nil }
func (x *layoutIndex) RawManifest() ([]byte, error)              { return x.raw, nil }
func (x *layoutIndex) Descriptor() (*v1.Descriptor, error)       { d := x.desc; return &d, nil }

func (x *layoutIndex) child(h v1.Hash) (v1.Descriptor, error) {
	if d, ok := x.children[h]; ok {
		return d, nil
	}
	return v1.Descriptor{}, fmt.Errorf("%s is not in image index %s", h, x.desc.Digest)
}

func (x *layoutIndex) Image(h v1.Hash) (v1.Image, error) {
	d, err := x.child(h)
	if err != nil {
		return nil, err
	}
	return x.l.image(d)
}

func (x *layoutIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := x.child(h)
	if err != nil {
		return nil, err
	}
	return x.l.index(d)
}

// checkBlobs verifies that every blob the artifact needs is present in the
// layout, so a push never starts on an incomplete layout.
func (l *ociLayout) checkBlobs(a Artifact) error {
	var missing, wrong []string
	var unreadable error
	walkDescriptors(a, func(d v1.Descriptor) {
		if l.generated.has(d.Digest) {
			return
		}
		p := blobPath(d.Digest)
		fi, err := fs.Stat(l.fsys, p)
		switch {
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			if unreadable == nil {
				unreadable = blobError(err, l.where, p, "blob")
			}
		case err != nil:
			missing = append(missing, p)
		case d.Size < 0 || fi.Size() != d.Size:
			// The registry would take the blob and the manifest, and
			// every client would fail to pull it.
			wrong = append(wrong, fmt.Sprintf("%s is %d bytes, its descriptor says %d", p, fi.Size(), d.Size))
		}
	})
	if unreadable != nil {
		return unreadable
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s lacks %d blob(s) the image needs, first %s", ErrBadInput, l.where, len(missing), missing[0])
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%w: %s is damaged: %s", ErrBadInput, l.where, strings.Join(wrong, "; "))
	}
	return nil
}
