package source

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
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
	"github.com/hoist-build/hoist/internal/runid"
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
	// run is the step's run: the cache's entries it made are taken as
	// they are; any other is checked before it is used.
	run runid.Run
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
	if lb, stamp, ok := cached(c.ws, base, mt); ok {
		// An entry this run made was checked against its diff_id as it
		// was compressed. Any other (an earlier run's, a restored cache's,
		// one the repository carries) is checked now, before anything
		// reads it: its bytes must be its recorded digest, and decompress
		// to its diff_id. Decompressing costs far less than compressing.
		trust := c.run.Made(ctx, stamp, base+".json")
		if trust == nil {
			if c.logf != nil {
				c.logf("compressed %s: %s (from the compression cache %s)", what, lb.desc.Digest, c.cacheDir)
			}
			return lb, nil, nil
		}
		err := checkBlob(ctx, lb, diffID)
		if ctx.Err() != nil {
			return layerBlob{}, nil, ctx.Err()
		}
		if err == nil {
			if c.logf != nil {
				c.logf("compressed %s: %s: the compression cache's entry %s is not this run's (%s); checked: it decompresses to its diff_id; reused", what, lb.desc.Digest, lb.path, runid.Reason(trust))
			}
			// Checked by this run: its next steps take it as it is.
			if werr := c.writeCacheEntry(base, lb.desc); werr != nil {
				return layerBlob{}, nil, werr
			}
			return lb, nil, nil
		}
		if c.logf != nil {
			c.logf("compressed %s: the compression cache's entry %s is not this run's (%s), and %v: compressed afresh", what, lb.path, runid.Reason(trust), err)
		}
	}
	lb, closer, err := compressOnce(ctx, c.ws, r, diffID, mt, what, dir, level, c.logf)
	if err != nil {
		return lb, closer, err
	}
	if err := c.ws.Rename(lb.path, base+".gz"); err != nil {
		return lb, closer, fmt.Errorf("compression cache: %w", err)
	}
	if err := c.writeCacheEntry(base, lb.desc); err != nil {
		return layerBlob{}, nil, err
	}
	lb, _, ok := cached(c.ws, base, mt)
	if !ok {
		return layerBlob{}, nil, fmt.Errorf("compression cache: %s.gz is gone, or not what was just written", base)
	}
	return lb, nil, nil
}

// cacheEntry is what the compression cache records beside a layer: its
// digest and size, and the run that made (or checked) it.
type cacheEntry struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Run    string `json:"run,omitempty"`
}

func (c compression) writeCacheEntry(base string, d v1.Descriptor) error {
	meta, _ := json.Marshal(cacheEntry{Digest: d.Digest.String(), Size: d.Size, Run: c.run.ID})
	if err := c.ws.WriteAtomic(base+".json", meta); err != nil {
		return fmt.Errorf("compression cache: %w", err)
	}
	return nil
}

// maxCacheEntry bounds the record beside a cached layer (a few dozen
// bytes when hoist wrote it).
const maxCacheEntry = 1 << 20

// cached is the cache's layer at base, when it is complete: its record
// names it, and the file has the recorded size; stamp is the run its
// record names. Both are read before anything says who made them (the
// cache lies in the checkout), so through ws (no link out of the
// workspace), as regular files only (a FIFO is not waited on, a device
// not read) and the record bounded.
func cached(ws files.Workspace, base string, mt types.MediaType) (lb layerBlob, stamp string, ok bool) {
	b, err := ws.ReadRegular(base+".json", maxCacheEntry)
	if err != nil {
		return layerBlob{}, "", false
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil {
		return layerBlob{}, "", false
	}
	h, err := v1.NewHash(e.Digest)
	if err != nil {
		return layerBlob{}, "", false
	}
	path := base + ".gz"
	f, err := ws.OpenRegular(path)
	if err != nil {
		return layerBlob{}, "", false
	}
	st, err := f.Stat()
	f.Close()
	if err != nil || st.Size() != e.Size {
		return layerBlob{}, "", false
	}
	return layerBlob{desc: v1.Descriptor{MediaType: mt, Size: e.Size, Digest: h}, path: path, open: func() (io.ReadCloser, error) { return ws.OpenRegular(path) }}, e.Run, true
}

// checkBlob checks the cached layer lb, streamed: its bytes must hash to
// its recorded digest, and decompress to diffID (the layer check's own
// decompression, its bytes hashed on the way). The error says what
// differs.
func checkBlob(ctx context.Context, lb layerBlob, diffID v1.Hash) error {
	f, err := lb.open()
	if err != nil {
		return err
	}
	defer f.Close()
	zsum := sha256.New()
	got, err := layerCheck{mt: types.OCILayer, diffID: diffID, file: lb.path}.content(ctx, io.TeeReader(f, zsum))
	var bad *formatError
	switch {
	case errors.As(err, &bad):
		return fmt.Errorf("it is not gzip (%w)", bad.err)
	case err != nil && ctx.Err() == nil:
		return fmt.Errorf("it does not decompress (%w)", err)
	case err != nil:
		return err
	}
	if sum := hexSum(zsum); sum != lb.desc.Digest.Hex {
		return fmt.Errorf("its bytes hash to sha256:%s, not to the digest its record says (%s)", sum, lb.desc.Digest)
	}
	if got != diffID {
		return fmt.Errorf("it decompresses to %s, not to its diff_id", got)
	}
	return nil
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
			cr := &countingReader{r: rc}
			lb, closer, err := c.compress(ctx, cr, d.Digest, mt, "layer "+d.Digest.String()+" of "+img.l.where)
			if err == nil && cr.n != d.Size {
				img.l.unread.Store(true)
			}
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
