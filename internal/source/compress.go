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
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"github.com/hoist-build/hoist/internal/progress"
)

// compressOnce gzips an uncompressed layer into a temporary file while
// checking that its content hashes to diffID, so that every destination
// receives the same compressed bytes. mt is the compressed media type.
func compressOnce(ctx context.Context, r io.Reader, diffID v1.Hash, mt types.MediaType, what, tempDir string, level int, logf func(string, ...any)) (layerBlob, func() error, error) {
	tmp, err := os.CreateTemp(tempDir, "hoist-layer-*.gz")
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
	return layerBlob{desc: desc, open: func() (io.ReadCloser, error) { return os.Open(name) }}, closer, nil
}

// compressor gzips the uncompressed layers of layout images once (a
// BuildKit tarball exported without compression, for example), so that
// registries receive compressed layers as docker push would send them.
type compressor struct {
	ctx     context.Context
	tempDir string
	level   int
	logf    func(string, ...any)

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
			lb, closer, err := compressOnce(ctx, rc, d.Digest, mt, "layer "+d.Digest.String()+" of "+img.l.where, c.tempDir, c.level, c.logf)
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
