package source

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/progress"
)

// compression says how layers that arrive uncompressed are compressed:
// gzip at level, into tempDir, or through the content-addressed cache in
// cacheDir when it is set.
type compression struct {
	tempDir, cacheDir string
	// ws is the workspace the cache is in (files.Workspace).
	ws    files.Workspace
	level int
	logf  func(string, ...any)
}

// cacheWait bounds the wait for another step compressing the same layer.
const cacheWait = 15 * time.Minute

// compress gzips an uncompressed layer once. With a cache directory (the
// workspace's .hoist/compressed), the compressed layer is kept there under
// its diff_id and compressor, and a layer another step or process has
// compressed, or is compressing right now, is taken from there: the
// mission's parallel push-only steps from one tarball compress each layer
// once between them, and push one digest everywhere.
func (c compression) compress(ctx context.Context, r io.Reader, diffID v1.Hash, mt types.MediaType, what string) (layerBlob, func() error, error) {
	level := c.level
	if level == 0 {
		level = 1
	}
	if c.cacheDir == "" || diffID.Hex == "" {
		return compressOnce(ctx, "", r, diffID, mt, what, c.tempDir, level, c.logf)
	}
	dir := filepath.Join(c.cacheDir, fmt.Sprintf("gzip-%d", level))
	if err := c.ws.MkdirAll(dir); err != nil {
		return layerBlob{}, nil, fmt.Errorf("compression cache: %w", err)
	}
	base := filepath.Join(dir, diffID.Hex)
	unlock, err := lockFile(ctx, c.ws, base+".lock", cacheWait)
	if err != nil {
		return layerBlob{}, nil, fmt.Errorf("compression cache %s: %w", dir, err)
	}
	defer unlock()
	if lb, ok := cached(base, mt); ok {
		if c.logf != nil {
			c.logf("compressed %s: %s (from the compression cache %s)", what, lb.desc.Digest, c.cacheDir)
		}
		return lb, nil, nil
	}
	lb, closer, err := compressOnce(ctx, c.ws, r, diffID, mt, what, dir, level, c.logf)
	if err != nil {
		return lb, closer, err
	}
	if err := c.ws.Rename(lb.path, base+".gz"); err != nil {
		return lb, closer, fmt.Errorf("compression cache: %w", err)
	}
	meta, _ := json.Marshal(cacheEntry{Digest: lb.desc.Digest.String(), Size: lb.desc.Size})
	if err := c.ws.WriteAtomic(base+".json", meta); err != nil {
		return layerBlob{}, nil, fmt.Errorf("compression cache: %w", err)
	}
	lb, _ = cached(base, mt)
	return lb, nil, nil
}

// cacheEntry is what the compression cache records beside a layer.
type cacheEntry struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// cached is the cache's layer at base, when it is complete: its record
// names it, and the file has the recorded size.
func cached(base string, mt types.MediaType) (layerBlob, bool) {
	b, err := os.ReadFile(base + ".json")
	if err != nil {
		return layerBlob{}, false
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil {
		return layerBlob{}, false
	}
	h, err := v1.NewHash(e.Digest)
	if err != nil {
		return layerBlob{}, false
	}
	st, err := os.Stat(base + ".gz")
	if err != nil || st.Size() != e.Size {
		return layerBlob{}, false
	}
	path := base + ".gz"
	return layerBlob{desc: v1.Descriptor{MediaType: mt, Size: e.Size, Digest: h}, path: path, open: func() (io.ReadCloser, error) { return os.Open(path) }}, true
}

// compressOnce gzips an uncompressed layer into a temporary file while
// checking that its content hashes to diffID, so that every destination
// receives the same compressed bytes. mt is the compressed media type.
func compressOnce(ctx context.Context, ws files.Workspace, r io.Reader, diffID v1.Hash, mt types.MediaType, what, tempDir string, level int, logf func(string, ...any)) (layerBlob, func() error, error) {
	tmp, err := ws.CreateTemp(tempDir, files.TempPrefix+"layer-*.gz")
	if err != nil {
		return layerBlob{}, nil, err
	}
	closer := func() error { return os.Remove(tmp.Name()) }
	fail := func(err error) (layerBlob, func() error, error) {
		tmp.Close()
		return layerBlob{}, closer, err
	}
	zsum := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, zsum), 1<<20)
	zw, err := gzip.NewWriterLevel(bw, level)
	if err != nil {
		return fail(err)
	}
	usum := sha256.New()
	n, err := copyCtx(ctx, io.MultiWriter(zw, usum), r)
	if err != nil {
		return fail(fmt.Errorf("compress %s: %w", what, err))
	}
	if err := zw.Close(); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	st, err := tmp.Stat()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return layerBlob{}, closer, err
	}
	if diffID.Hex != "" {
		if got := hexSum(usum); got != diffID.Hex {
			return layerBlob{}, closer, fmt.Errorf("%w: %s hashes to sha256:%s but the image says %s (the file was altered or damaged)", ErrDigestMismatch, what, got, diffID)
		}
	}
	h := v1.Hash{Algorithm: "sha256", Hex: hexSum(zsum)}
	if logf != nil {
		logf("compressed %s: %s (%s → %s)", what, h, progress.Bytes(n), progress.Bytes(st.Size()))
	}
	name := tmp.Name()
	desc := v1.Descriptor{MediaType: mt, Size: st.Size(), Digest: h}
	return layerBlob{desc: desc, path: name, open: func() (io.ReadCloser, error) { return os.Open(name) }}, closer, nil
}

// compressor gzips the uncompressed layers of layout images once (a
// BuildKit tarball exported without compression, for example), so that
// registries receive compressed layers as docker push would send them.
type compressor struct {
	ctx context.Context
	compression

	mu      sync.Mutex
	closers *[]func() error
}

func isUncompressed(mt types.MediaType) bool {
	return mt == types.OCIUncompressedLayer || mt == types.DockerUncompressedLayer
}

// recompress returns the image with its uncompressed layers replaced by
// gzip ones (in parallel), and a new manifest; images without any are
// returned as they are.
func (c *compressor) recompress(img *layoutImage) (*layoutImage, error) {
	var idx []int
	for i, l := range img.manifest.Layers {
		if isUncompressed(l.MediaType) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return img, nil
	}
	m := *img.manifest
	m.Layers = append([]v1.Descriptor(nil), img.manifest.Layers...)
	blobs := make([]layerBlob, len(idx))
	g, ctx := errgroup.WithContext(c.ctx)
	g.SetLimit(runtime.NumCPU())
	for j, i := range idx {
		d := m.Layers[i]
		g.Go(func() error {
			rc, err := img.l.openLayer(d)
			if err != nil {
				return err
			}
			defer rc.Close()
			mt := types.OCILayer
			if d.MediaType == types.DockerUncompressedLayer {
				mt = types.DockerLayer
			}
			lb, closer, err := c.compress(ctx, rc, d.Digest, mt, "layer "+d.Digest.String()+" of "+img.l.where)
			if closer != nil {
				c.mu.Lock()
				*c.closers = append(*c.closers, closer)
				c.mu.Unlock()
			}
			blobs[j] = lb
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := &layoutImage{l: img.l, desc: img.desc, manifest: &m, compressed: map[v1.Hash]layerBlob{}}
	for j, i := range idx {
		lb := blobs[j]
		lb.desc.Annotations, lb.desc.URLs, lb.desc.Platform = m.Layers[i].Annotations, m.Layers[i].URLs, m.Layers[i].Platform
		m.Layers[i] = lb.desc
		out.compressed[lb.desc.Digest] = lb
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out.raw = raw
	out.desc.Digest, out.desc.Size, err = v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	made := []v1.Hash{out.desc.Digest}
	for h := range out.compressed {
		made = append(made, h)
	}
	img.l.made(made...)
	return out, nil
}
