package promote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// Spread is what Send did.
type Spread struct {
	Blobs   int   // blobs read from the source
	Bytes   int64 // bytes read from the source
	Sent    int64 // bytes written to the destinations, all together
	Present int   // blob and destination pairs that needed nothing
	// Failed are the destinations a blob could not be sent to (their
	// push reads it from the source itself), by repository.
	Failed map[string]error
}

// Limits of Send.
const (
	// chunk is what is read from the source at a time and handed to
	// every destination before the next is read: the only buffer.
	chunk = 256 << 10
	// joinWait bounds the wait for every destination to say whether it
	// needs a blob (its existence check) before the blob is read.
	joinWait = 30 * time.Second
)

var (
	// stallWait bounds the wait for one destination to take a chunk; a
	// destination that takes none for that long is dropped from the blob
	// (its push sends it later), so that one stalled registry does not
	// hold the others.
	stallWait = 60 * time.Second
)

// maxJobs bounds the blobs Send moves at once (each holds a connection
// to the source and one to each destination).
const maxJobs = 16

// Send reads each blob of the image (a v1.Image or v1.ImageIndex read
// from src) once from the source registry and writes it to every repository
// of dsts that lacks it, at once: the same stream, chunk by chunk, paced
// by the slowest destination, nothing spooled. jobs blobs go at once (at
// most maxJobs). opts reach every registry (source and destinations;
// with remote.Reuse of a Puller of the source, its reads go through it,
// else through one of Send's own); a
// stall is bounded by their transport's timeout and by stallWait. A
// destination that fails a blob, and every destination of a blob the
// source fails to send whole, is reported in Spread.Failed and left to
// the push that follows (which reads the blob from the source itself, with
// its retries). Send fails only when the image cannot be listed or ctx
// ends.
func Send(ctx context.Context, src name.Repository, image any, dsts []name.Repository, jobs int, opts []remote.Option) (Spread, error) {
	var sp Spread
	blobs, err := blobsOf(image)
	if err != nil {
		return sp, err
	}
	// A puller of the caller's (remote.Reuse in opts) is used as it is.
	pl, err := remote.NewPuller(opts...)
	if err != nil {
		return sp, err
	}
	srcOpts := with(opts, remote.Reuse(pl))
	// A failed upload is not tried again here: its stream cannot be read
	// twice, and the push that follows retries it from the source.
	dstOpts := with(opts, remote.WithRetryBackoff(remote.Backoff{Steps: 1}))
	pushers := make([]*remote.Pusher, len(dsts))
	for i := range dsts {
		if pushers[i], err = remote.NewPusher(dstOpts...); err != nil {
			return sp, err
		}
	}
	var (
		mu      sync.Mutex
		present atomic.Int64
		sent    atomic.Int64
		read    atomic.Int64
		nblobs  atomic.Int64
	)
	sp.Failed = map[string]error{}
	fail := func(repo name.Repository, err error) {
		mu.Lock()
		defer mu.Unlock()
		if sp.Failed[repo.Name()] == nil {
			sp.Failed[repo.Name()] = err
		}
	}
	var g errgroup.Group
	g.SetLimit(min(max(jobs, 1), maxJobs))
	for _, d := range blobs {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			f := &fan{desc: d, pending: len(dsts), ready: make(chan struct{})}
			var wg sync.WaitGroup
			for i, repo := range dsts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l := &fanLayer{f: f, index: i}
					err := pushers[i].Upload(ctx, repo, l)
					f.leave(l, err)
					switch {
					case err != nil:
						fail(repo, fmt.Errorf("blob %s: %w", d.Digest, err))
					case l.joined:
						sent.Add(d.Size)
					default:
						present.Add(1)
					}
				}()
			}
			n, err := f.stream(ctx, func() (io.ReadCloser, error) {
				l, err := remote.Layer(src.Digest(d.Digest.String()), with(srcOpts, remote.WithContext(ctx))...)
				if err != nil {
					return nil, err
				}
				return l.Compressed()
			})
			wg.Wait()
			if n > 0 || err != nil {
				nblobs.Add(1)
				read.Add(n)
			}
			if err != nil {
				for _, repo := range f.joinedRepos(dsts) {
					fail(repo, fmt.Errorf("blob %s: the source did not send it whole: %w", d.Digest, err))
				}
			}
			return nil
		})
	}
	g.Wait()
	sp.Blobs, sp.Bytes, sp.Sent, sp.Present = int(nblobs.Load()), read.Load(), sent.Load(), int(present.Load())
	return sp, ctx.Err()
}

// blobsOf lists the distributable blobs (configs and layers) of an image
// or of every image of an index, each once.
func blobsOf(a any) ([]v1.Descriptor, error) {
	var out []v1.Descriptor
	seen := map[v1.Hash]bool{}
	manifests := map[v1.Hash]bool{}
	add := func(d v1.Descriptor) {
		if !seen[d.Digest] && d.MediaType.IsDistributable() {
			seen[d.Digest] = true
			out = append(out, d)
		}
	}
	var walk func(a any, depth int) error
	walk = func(a any, depth int) error {
		if depth > 4 {
			return errors.New("indexes nested more than 4 deep")
		}
		switch x := a.(type) {
		case v1.Image:
			m, err := x.Manifest()
			if err != nil {
				return err
			}
			add(m.Config)
			for _, l := range m.Layers {
				add(l)
			}
		case v1.ImageIndex:
			m, err := x.IndexManifest()
			if err != nil {
				return err
			}
			for _, d := range m.Manifests {
				if manifests[d.Digest] {
					continue
				}
				manifests[d.Digest] = true
				if len(manifests) > maxManifestsPerImage {
					return fmt.Errorf("more than %d manifests in the index", maxManifestsPerImage)
				}
				var child any
				var err error
				switch {
				case d.MediaType.IsIndex():
					child, err = x.ImageIndex(d.Digest)
				case d.MediaType.IsImage():
					child, err = x.Image(d.Digest)
				default:
					continue
				}
				if err != nil {
					return err
				}
				if err := walk(child, depth+1); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("not an image or an index: %T", a)
		}
		return nil
	}
	return out, walk(a, 0)
}

// maxManifestsPerImage bounds the manifests of an index, nested ones
// included.
const maxManifestsPerImage = 1024

// fan is one blob on its way from the source to several destinations.
type fan struct {
	desc v1.Descriptor

	mu      sync.Mutex
	pending int // destinations that have neither joined nor left
	readers []*io.PipeWriter
	ready   chan struct{}
	started bool
	joined  []*fanLayer
}

// joinedRepos are the destinations of dsts that joined the stream (the
// uploads are made in dsts' order, one fanLayer each).
func (f *fan) joinedRepos(dsts []name.Repository) []name.Repository {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []name.Repository
	for _, l := range f.joined {
		out = append(out, dsts[l.index])
	}
	return out
}

// join adds a destination that needs the blob; false once the stream
// has started (a retry of a failed upload: its push sends the blob).
func (f *fan) join(l *fanLayer) (*io.PipeReader, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return nil, false
	}
	r, w := io.Pipe()
	f.readers = append(f.readers, w)
	f.joined = append(f.joined, l)
	f.settle()
	return r, true
}

// leave is a destination's upload ending: one that never joined needed
// nothing.
func (f *fan) leave(l *fanLayer, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !l.joined {
		f.settle()
	}
	if l.r != nil {
		if err == nil {
			err = errors.New("the upload ended")
		}
		l.r.CloseWithError(err)
	}
}

// settle counts one destination as decided; the last one starts the
// stream.
func (f *fan) settle() {
	f.pending--
	if f.pending == 0 {
		close(f.ready)
	}
}

// stream waits for every destination to decide, then reads the blob
// once and writes each chunk to every destination that joined, dropping
// any that fails or stalls. It returns the bytes read.
func (f *fan) stream(ctx context.Context, open func() (io.ReadCloser, error)) (int64, error) {
	t := time.NewTimer(joinWait)
	defer t.Stop()
	select {
	case <-f.ready:
	case <-t.C:
	case <-ctx.Done():
	}
	f.mu.Lock()
	f.started = true
	ws := f.readers
	f.mu.Unlock()
	if len(ws) == 0 {
		return 0, nil
	}
	closeAll := func(err error) {
		for _, w := range ws {
			if w != nil {
				w.CloseWithError(err)
			}
		}
	}
	rc, err := open()
	if err != nil {
		closeAll(err)
		return 0, err
	}
	defer rc.Close()
	buf := make([]byte, chunk)
	var n int64
	for {
		k, rerr := io.ReadFull(rc, buf)
		if k > 0 {
			n += int64(k)
			live := 0
			for i, w := range ws {
				if w == nil {
					continue
				}
				stall := time.AfterFunc(stallWait, func() { w.CloseWithError(errors.New("the destination took nothing for " + stallWait.String())) })
				_, err := w.Write(buf[:k])
				stall.Stop()
				if err != nil {
					w.CloseWithError(err)
					ws[i] = nil
					continue
				}
				live++
			}
			if live == 0 {
				return n, nil // every destination failed; their pushes send it
			}
		}
		switch {
		case (rerr == io.EOF || rerr == io.ErrUnexpectedEOF) && n == f.desc.Size:
			closeAll(nil)
			return n, nil
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			err := fmt.Errorf("it ended after %d of its %d bytes", n, f.desc.Size)
			closeAll(err)
			return n, err
		case rerr != nil:
			closeAll(rerr)
			return n, rerr
		case n > f.desc.Size:
			err := fmt.Errorf("it sent more than its %d bytes", f.desc.Size)
			closeAll(err)
			return n, err
		}
	}
}

// fanLayer is the blob as one destination's upload sees it.
type fanLayer struct {
	f      *fan
	index  int // of the destination
	joined bool
	r      *io.PipeReader
}

var errNotHere = errors.New("promote: a blob in transit has only its compressed form")

func (l *fanLayer) Digest() (v1.Hash, error)             { return l.f.desc.Digest, nil }
func (l *fanLayer) DiffID() (v1.Hash, error)             { return v1.Hash{}, errNotHere }
func (l *fanLayer) Size() (int64, error)                 { return l.f.desc.Size, nil }
func (l *fanLayer) MediaType() (types.MediaType, error)  { return l.f.desc.MediaType, nil }
func (l *fanLayer) Uncompressed() (io.ReadCloser, error) { return nil, errNotHere }

// Compressed joins the blob's stream, once.
func (l *fanLayer) Compressed() (io.ReadCloser, error) {
	if l.joined {
		return nil, errors.New("promote: the blob's shared stream is read once; the push sends it again")
	}
	r, ok := l.f.join(l)
	if !ok {
		return nil, errors.New("promote: the blob's shared stream had started")
	}
	l.joined, l.r = true, r
	return r, nil
}
