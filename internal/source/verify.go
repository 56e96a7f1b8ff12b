package source

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/hoist-build/hoist/internal/runid"
)

// Errors a source can fail with; the CLI maps them to the exit code for a
// bad input.
var (
	// ErrTruncated: a tarball ends before its entries do.
	ErrTruncated = errors.New("truncated tarball")
	// ErrDigestMismatch: bytes do not match the digest that names them.
	ErrDigestMismatch = errors.New("content does not match its digest")
	// ErrNotFound: the image is in none of the places looked at.
	ErrNotFound = errors.New("image not found")
	// ErrBadInput: the input is not an image in a form hoist reads.
	ErrBadInput = errors.New("not an image")
	// ErrUnavailable marks a source registry that failed transiently
	// (429, 5xx, a dropped connection) after the retries.
	ErrUnavailable = errors.New("source registry unavailable")
)

// verifyingReader hashes what passes through it and, at the end, fails the
// read instead of returning io.EOF when the bytes do not match the expected
// digest or size. An upload that reads through it therefore never commits a
// tampered blob.
type verifyingReader struct {
	r     io.Reader
	c     io.Closer
	h     hash.Hash
	want  v1.Hash
	size  int64 // -1: unknown
	n     int64
	what  string
	ended bool
}

func newVerifyingReader(rc io.ReadCloser, want v1.Hash, size int64, what string) (io.ReadCloser, error) {
	if want.Algorithm != "sha256" {
		return nil, fmt.Errorf("%s: unsupported digest algorithm %q", what, want.Algorithm)
	}
	return &verifyingReader{r: rc, c: rc, h: sha256.New(), want: want, size: size, what: what}, nil
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		return n, fmt.Errorf("%w: %s is longer than the %d bytes its descriptor says", ErrDigestMismatch, v.what, v.size)
	}
	if err == io.EOF && !v.ended {
		v.ended = true
		if v.size >= 0 && v.n != v.size {
			return n, fmt.Errorf("%w: %s has %d bytes, its descriptor says %d", ErrDigestMismatch, v.what, v.n, v.size)
		}
		got := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", v.h.Sum(nil))}
		if got != v.want {
			return n, fmt.Errorf("%w: %s hashes to %s, expected %s (the file was altered or damaged)", ErrDigestMismatch, v.what, got, v.want)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.c.Close() }

// container is a file or directory images are read from: a docker-archive
// or an OCI layout.
type container interface {
	// hoistMade reports a blob hoist made itself (a layer it compressed,
	// checked against its diff_id as it was), which needs no check.
	hoistMade(h v1.Hash) bool
	// fileOf names a blob for messages: its file and the container.
	fileOf(h v1.Hash) string
	// rawUnread reports an uncompressed layer that hoist took compressed
	// from the compression cache without reading (so checking) the
	// container's own file of it.
	rawUnread() bool
}

// countingReader counts what is read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// blobSet is a set of digests, safe for concurrent use.
type blobSet struct {
	mu sync.Mutex
	m  map[v1.Hash]bool
}

func (b *blobSet) add(hs ...v1.Hash) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[v1.Hash]bool{}
	}
	for _, h := range hs {
		b.m[h] = true
	}
}

func (b *blobSet) has(h v1.Hash) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[h]
}

// CheckContent checks what a registry cannot: that every compressed layer of an
// image read from a file or directory decompresses, whole, to the diff_id
// its config records, and that an uncompressed layer's digest is its
// diff_id. (A registry checks a blob against its digest, which a damaged
// or altered archive can carry correctly for the wrong content.) Layers
// are read from the file a second time, independently of any upload, and
// in parallel; the publisher runs this alongside the uploads and writes
// no manifest until it has passed. Images from a registry are not checked
// (they are copied as they are), nor layers checked before the scan (see
// ScanTargets). Errors wrap ErrDigestMismatch (or ErrBadInput) and name
// the layer and its file.
func (i *Image) CheckContent(ctx context.Context) error { return i.checkContent(ctx, false) }

// checkContent is CheckContent; forScan also hashes uncompressed layers (a registry
// hashes those on upload, a scanner does not) and says so in its log.
func (i *Image) checkContent(ctx context.Context, forScan bool) error {
	if i.local == nil {
		return nil
	}
	var checks []layerCheck
	seen := map[v1.Hash]bool{}
	// This run's build vouches for what its layers' digests hold: a
	// push sends bytes the registry checks against the digest (or none,
	// when the registry has the layer), so any file of that digest is
	// the build's. A scanner checks nothing: for it the build vouches for
	// the blobs it wrote into the store, read from there, and not for a
	// file of the same name elsewhere.
	built := map[v1.Hash]v1.Hash{}
	if l, ok := i.local.(*ociLayout); i.store != "" && (!forScan || ok && l.dir != "" && filepath.Clean(l.dir) == filepath.Clean(i.store)) {
		built = builtLayers(ctx, i.store, i.run)
	}
	var made, vouched, before int
	err := walkImages(i.Artifact, func(img v1.Image) error {
		m, err := img.Manifest()
		if err != nil {
			return err
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return err
		}
		if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
			return fmt.Errorf("%w: image config %s lists %d diff_ids for %d layers (in %s)", ErrBadInput, m.Config.Digest, len(cfg.RootFS.DiffIDs), len(m.Layers), i.From)
		}
		for j, d := range m.Layers {
			diffID := cfg.RootFS.DiffIDs[j]
			if seen[d.Digest] || !d.MediaType.IsDistributable() {
				continue
			}
			seen[d.Digest] = true
			switch {
			case i.checked.has(d.Digest):
				before++
				continue
			case i.local.hoistMade(d.Digest):
				made++
				continue
			case built[d.Digest] == diffID:
				vouched++
				continue
			}
			switch d.MediaType {
			case types.DockerUncompressedLayer, types.OCIUncompressedLayer:
				if d.Digest != diffID {
					return fmt.Errorf("%w: layer %s is uncompressed, so its digest must be its diff_id, but the image config says %s (the file was altered or damaged)", ErrDigestMismatch, i.local.fileOf(d.Digest), diffID)
				}
				if !forScan {
					continue // the registry hashes it against its digest
				}
				fallthrough
			case types.DockerLayer, types.OCILayer, types.OCILayerZStd:
				l, err := img.LayerByDigest(d.Digest)
				if err != nil {
					return err
				}
				checks = append(checks, layerCheck{layer: l, digest: d.Digest, mt: d.MediaType, diffID: diffID, file: i.local.fileOf(d.Digest)})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// In parallel across layers: no manifest is written until the checks
	// end, so they should end with the uploads (on half the CPUs they
	// ended later, measured on the 512 MiB OCI layout push).
	// Before a scan they run alongside Trivy, which takes a core of its
	// own: one layer at a time then.
	g, gctx := errgroup.WithContext(ctx)
	if forScan {
		g.SetLimit(max(1, runtime.NumCPU()-1))
	} else {
		g.SetLimit(runtime.NumCPU())
	}
	for _, c := range checks {
		g.Go(func() error { return c.run(gctx) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, c := range checks {
		i.checked.add(c.digest)
	}
	if i.logf != nil {
		what := "layers checked against the image config's diff_ids"
		if forScan {
			what += " before the scan (the scanner reads only checked bytes)"
		}
		msg := fmt.Sprintf("%s: %d decompressed and hashed, %d compressed by hoist, %d vouched for by the workspace image store's build", what, len(checks), made, vouched)
		if before > 0 {
			msg += fmt.Sprintf(", %d checked before the scan", before)
		}
		i.logf("%s", msg)
	}
	return nil
}

// layerCheck is one layer to decompress (unless it is uncompressed) and
// hash.
type layerCheck struct {
	layer  partial.CompressedLayer
	digest v1.Hash
	mt     types.MediaType
	diffID v1.Hash
	file   string
}

// run reads the layer and compares what it decompresses to with its
// diff_id.
func (c layerCheck) run(ctx context.Context) error {
	rc, err := c.layer.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	return c.check(ctx, rc)
}

// check decompresses the layer read from r and compares what it hashes
// to with its diff_id.
func (c layerCheck) check(ctx context.Context, r io.Reader) error {
	got, err := c.content(ctx, r)
	var bad *formatError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &bad):
		return fmt.Errorf("%w: layer %s is not %s (%w), though its media type says so (the file was altered or damaged)", ErrDigestMismatch, c.file, c.format(), bad.err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: layer %s ends before its compressed stream does (the file was cut short or damaged)", ErrDigestMismatch, c.file)
	case err != nil:
		return fmt.Errorf("%w: layer %s does not decompress: %w (the file was altered or damaged)", ErrDigestMismatch, c.file, err)
	}
	if got != c.diffID {
		if isUncompressed(c.mt) {
			return fmt.Errorf("%w: layer %s hashes to %s, but the image config says its content is %s (the file was altered or damaged; rebuild or re-copy it)", ErrDigestMismatch, c.file, got, c.diffID)
		}
		return fmt.Errorf("%w: layer %s decompresses to %s, but the image config says its content is %s (the file was altered or damaged; rebuild or re-copy it)", ErrDigestMismatch, c.file, got, c.diffID)
	}
	return nil
}

// formatError is a layer whose stream does not start as its
// compression's does.
type formatError struct{ err error }

func (e *formatError) Error() string { return "not in its compression format: " + e.err.Error() }
func (e *formatError) Unwrap() error { return e.err }

func (c layerCheck) format() string {
	if c.mt == types.OCILayerZStd {
		return "zstd"
	}
	return "gzip"
}

// content reads the layer from r to its end and returns the digest of
// what it decompresses to (of its bytes, for an uncompressed layer): its
// diff_id when it is what its config says. A stream that does not start
// as its compression's is a *formatError; one cut short,
// io.ErrUnexpectedEOF. Whatever follows the compressed stream is read
// too, so that a reader that hashes r (the compression cache) hashes all
// of it.
func (c layerCheck) content(ctx context.Context, r io.Reader) (v1.Hash, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var dec io.Reader = br
	switch {
	case isUncompressed(c.mt):
	case c.mt == types.OCILayerZStd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return v1.Hash{}, &formatError{err}
		}
		defer zr.Close()
		dec = zr
	default:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return v1.Hash{}, &formatError{err}
		}
		defer zr.Close()
		dec = zr
	}
	h := sha256.New()
	if _, err := copyCtx(ctx, h, dec); err != nil {
		return v1.Hash{}, err
	}
	if _, err := copyCtx(ctx, io.Discard, br); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hexSum(h)}, nil
}

// maxBuilt bounds how many of the store's newest entries builtLayers reads.
const maxBuilt = 64

// builtLayers maps each layer of the images this run's builds recorded
// in the workspace image store (its newest entries) to the diff_id it
// decompresses to. BuildKit computed both from the same bytes when it
// exported the image, and the store's manifests and configs are read
// verified against their digests; so a layer of the build-only step's
// tarball, pushed by a push-only step of the same run, needs no second
// check: the registry verifies the bytes sent against the digest, and the
// build vouches for what that digest holds. An entry another run made, or
// one the repository or a restored cache brought, vouches for nothing.
func builtLayers(ctx context.Context, dir string, run runid.Run) map[v1.Hash]v1.Hash {
	out := map[v1.Hash]v1.Hash{}
	if dir == "" {
		return out
	}
	fsys, closeRoot, err := layoutDir(dir)
	if err != nil {
		return out
	}
	defer closeRoot()
	l := &ociLayout{fsys: fsys, where: "image store " + dir}
	im, _, err := l.indexJSON()
	if err != nil {
		return out
	}
	seen := map[v1.Hash]bool{}
	trust := storeTrust(ctx, dir, run)
	for j := len(im.Manifests) - 1; j >= 0 && len(seen) < maxBuilt; j-- {
		d := im.Manifests[j]
		if seen[d.Digest] || trust(d.Annotations[RunAnnotation]) != nil {
			continue
		}
		seen[d.Digest] = true
		a, err := l.artifact(d)
		if err != nil {
			continue
		}
		walkImages(a, func(img v1.Image) error {
			m, err := img.Manifest()
			if err != nil {
				return nil
			}
			cfg, err := img.ConfigFile()
			if err != nil || len(cfg.RootFS.DiffIDs) != len(m.Layers) {
				return nil
			}
			for k, ld := range m.Layers {
				out[ld.Digest] = cfg.RootFS.DiffIDs[k]
			}
			return nil
		})
	}
	return out
}

// zstdMaxWindow bounds the memory one zstd layer may ask for.
const zstdMaxWindow = 128 << 20
