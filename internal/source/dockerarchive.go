package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// dockerArchive reads the format of docker save, kaniko --tar-path and
// crane/ko tarball writers: manifest.json naming a config and layer files.
type dockerArchive struct {
	fsys  *tarFS
	where string
	comp  compression
	keep  bool // push uncompressed layers as they are

	generated blobSet // layers hoist compressed
	// unread: a layer was taken from the compression cache, its file in
	// the archive not read.
	unread atomic.Bool
	mu     sync.Mutex
	files  map[v1.Hash]string // layer digest → file in the archive
}

func (d *dockerArchive) hoistMade(h v1.Hash) bool { return d.generated.has(h) }
func (d *dockerArchive) rawUnread() bool          { return d.unread.Load() }

func (d *dockerArchive) fileOf(h v1.Hash) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if f, ok := d.files[h]; ok {
		return f + " of " + d.where
	}
	return h.String() + " of " + d.where
}

type dockerEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (d *dockerArchive) candidates(ctx context.Context, logf func(string, ...any), closers *[]func() error) ([]candidate, error) {
	raw, err := readMeta(d.fsys, "manifest.json", d.where)
	if err != nil {
		return nil, err
	}
	var entries []dockerEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("%w: manifest.json of %s is not valid: %w", ErrBadInput, d.where, err)
	}
	var out []candidate
	for i, e := range entries {
		e := e
		out = append(out, candidate{
			names: e.RepoTags,
			label: fmt.Sprintf("image %d (config %s)", i+1, e.Config),
			open:  func() (Artifact, error) { return d.image(ctx, e, logf, closers) },
		})
	}
	return out, nil
}

// Names that carry a blob's digest: blobs/sha256/<hex> (docker save since
// Docker 25, buildx) and <hex>.tar.gz (crane, ko and kaniko writers).
var (
	blobName   = regexp.MustCompile(`^blobs/sha256/([0-9a-f]{64})$`)
	gzBlobName = regexp.MustCompile(`^([0-9a-f]{64})\.tar\.gz$`)
	configName = regexp.MustCompile(`^(?:blobs/sha256/)?([0-9a-f]{64})(?:\.json)?$`)
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

func (d *dockerArchive) image(ctx context.Context, e dockerEntry, logf func(string, ...any), closers *[]func() error) (Artifact, error) {
	cfgRaw, err := readMeta(d.fsys, e.Config, d.where)
	if errors.Is(err, ErrBadInput) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s lacks the config %s named in manifest.json", ErrBadInput, d.where, e.Config)
	}
	if m := configName.FindStringSubmatch(e.Config); m != nil {
		if got := fmt.Sprintf("%x", sha256.Sum256(cfgRaw)); got != m[1] {
			return nil, fmt.Errorf("%w: config %s in %s hashes to sha256:%s (the file was altered or damaged)", ErrDigestMismatch, e.Config, d.where, got)
		}
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(cfgRaw))
	if err != nil {
		return nil, fmt.Errorf("%w: config %s in %s: %w", ErrBadInput, e.Config, d.where, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
		return nil, fmt.Errorf("%w: %s lists %d layers but its config has %d diff_ids", ErrBadInput, d.where, len(e.Layers), len(cfg.RootFS.DiffIDs))
	}

	layers := make([]layerBlob, len(e.Layers))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU())
	var mu sync.Mutex
	for i, p := range e.Layers {
		i, p := i, p
		g.Go(func() error {
			lb, closer, err := d.layer(ctx, p, cfg.RootFS.DiffIDs[i], logf)
			if closer != nil {
				mu.Lock()
				*closers = append(*closers, closer)
				mu.Unlock()
			}
			layers[i] = lb
			if err == nil {
				d.mu.Lock()
				if d.files == nil {
					d.files = map[v1.Hash]string{}
				}
				d.files[lb.desc.Digest] = p
				d.mu.Unlock()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	// A manifest in Docker's schema 2, or OCI's when a layer is zstd (Docker
	// has no media type for that).
	mt, cfgMT := types.DockerManifestSchema2, types.DockerConfigJSON
	for _, l := range layers {
		if l.desc.MediaType == types.OCILayerZStd {
			mt, cfgMT = types.OCIManifestSchema1, types.OCIConfigJSON
		}
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     mt,
		Config: v1.Descriptor{
			MediaType: cfgMT,
			Size:      int64(len(cfgRaw)),
			Digest:    v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(cfgRaw))},
		},
	}
	for i := range layers {
		if mt == types.OCIManifestSchema1 && layers[i].desc.MediaType == types.DockerLayer {
			layers[i].desc.MediaType = types.OCILayer
		}
		m.Layers = append(m.Layers, layers[i].desc)
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&archiveImage{raw: rawManifest, mt: mt, config: cfgRaw, configDesc: m.Config, layers: layers})
}

// layerBlob is one layer as it will be pushed.
type layerBlob struct {
	desc v1.Descriptor
	open func() (io.ReadCloser, error)
	// path is the file of a layer hoist compressed.
	path string
}

// layer prepares one layer file: compressed layers are pushed as they are
// (verified against the digest their name carries, or hashed once);
// uncompressed layers are compressed once into a temporary file while their
// diff_id is checked, so every destination receives the same bytes.
func (d *dockerArchive) layer(ctx context.Context, p string, diffID v1.Hash, logf func(string, ...any)) (layerBlob, func() error, error) {
	f, err := d.fsys.Open(p)
	if err != nil {
		return layerBlob{}, nil, fmt.Errorf("%w: %s lacks the layer %s named in manifest.json", ErrBadInput, d.where, p)
	}
	tf := f.(*tarFile)
	head := make([]byte, 4)
	n, _ := tf.ReadAt(head, 0)
	head = head[:n]
	size := tf.Size()
	switch {
	case bytes.HasPrefix(head, gzipMagic) || bytes.HasPrefix(head, zstdMagic):
		mt := types.DockerLayer
		if bytes.HasPrefix(head, zstdMagic) {
			mt = types.OCILayerZStd
		}
		var h v1.Hash
		if m := blobName.FindStringSubmatch(p); m != nil {
			h = v1.Hash{Algorithm: "sha256", Hex: m[1]}
		} else if m := gzBlobName.FindStringSubmatch(p); m != nil {
			h = v1.Hash{Algorithm: "sha256", Hex: m[1]}
		} else {
			sum := sha256.New()
			if _, err := io.Copy(sum, io.NewSectionReader(tf, 0, size)); err != nil {
				return layerBlob{}, nil, err
			}
			h = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum.Sum(nil))}
		}
		// Sent as it is (with sendfile); the registry verifies the digest.
		desc := v1.Descriptor{MediaType: mt, Size: size, Digest: h}
		return layerBlob{desc: desc, open: func() (io.ReadCloser, error) { return d.fsys.openRaw(p) }}, nil, nil
	}
	if d.keep {
		desc := v1.Descriptor{MediaType: types.DockerUncompressedLayer, Size: size, Digest: diffID}
		return layerBlob{desc: desc, open: func() (io.ReadCloser, error) { return d.fsys.openRaw(p) }}, nil, nil
	}
	// Uncompressed: compress once.
	c := d.comp
	c.logf = logf
	cr := &countingReader{r: io.NewSectionReader(tf, 0, size)}
	lb, closer, err := c.compress(ctx, cr, diffID, types.DockerLayer, "layer "+p+" of "+d.where)
	if err == nil {
		d.generated.add(lb.desc.Digest) // its diff_id was checked as it was compressed
		if cr.n != size {
			d.unread.Store(true)
		}
	}
	return lb, closer, err
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// copyCtx copies in chunks and stops when ctx is done.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		r, err := src.Read(buf)
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// archiveImage is the compressed core of an image from a docker archive.
type archiveImage struct {
	raw        []byte
	mt         types.MediaType
	config     []byte
	configDesc v1.Descriptor
	layers     []layerBlob
}

func (a *archiveImage) RawManifest() ([]byte, error)        { return a.raw, nil }
func (a *archiveImage) MediaType() (types.MediaType, error) { return a.mt, nil }
func (a *archiveImage) RawConfigFile() ([]byte, error)      { return a.config, nil }

func (a *archiveImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == a.configDesc.Digest {
		cfg := a.config
		return &openLayer{desc: a.configDesc, open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(cfg)), nil }}, nil
	}
	for _, l := range a.layers {
		if l.desc.Digest == h {
			return &openLayer{desc: l.desc, open: l.open}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in the image", h)
}

type openLayer struct {
	desc v1.Descriptor
	open func() (io.ReadCloser, error)
}

func (o *openLayer) Digest() (v1.Hash, error)            { return o.desc.Digest, nil }
func (o *openLayer) Size() (int64, error)                { return o.desc.Size, nil }
func (o *openLayer) MediaType() (types.MediaType, error) { return o.desc.MediaType, nil }
func (o *openLayer) Compressed() (io.ReadCloser, error)  { return o.open() }
func (o *openLayer) Descriptor() (*v1.Descriptor, error) { d := o.desc; return &d, nil }
