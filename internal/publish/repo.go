package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/source"
)

func (p *pusher) backoff() remote.Backoff {
	if p.o.backoff != nil {
		return *p.o.backoff
	}
	return Backoff(p.o.Retries)
}

// repoPush is the push of one repository: what its meter saw.
type repoPush struct {
	p     *pusher
	repo  name.Repository
	from  name.Reference
	meter *registry.Meter

	skipped atomic.Int64 // bytes of blobs already there or mounted
	mu      sync.Mutex
	putTags map[string]bool // tags whose manifest was written
}

// onEvent counts what the registry already had, notes the tags written,
// and reports the event.
func (rp *repoPush) onEvent(ev registry.Event) {
	size := ev.Size
	if h, err := v1.NewHash(ev.Ref); err == nil {
		if s, ok := rp.p.blobs[h]; ok {
			size = s
		}
	}
	switch ev.Kind {
	case registry.BlobExists, registry.BlobMounted:
		rp.skipped.Add(size)
	case registry.ManifestPut:
		rp.mu.Lock()
		rp.putTags[ev.Ref] = true
		rp.mu.Unlock()
	}
	if rp.p.o.Events != nil {
		rp.p.o.Events(rp.event(ev, size))
	}
}

// event is a registry event as a progress event.
func (rp *repoPush) event(ev registry.Event, size int64) progress.PushEvent {
	out := progress.PushEvent{Repo: rp.repo.Name(), Ref: ev.Ref, Size: size}
	switch ev.Kind {
	case registry.BlobExists:
		out.What = progress.BlobExists
	case registry.BlobMounted:
		out.What = progress.BlobMounted
		// A blob of a registry source is mounted from the source's
		// repository, which no destination names (from is nil).
		out.From = ev.From
		if out.From == "" && rp.from != nil {
			out.From = rp.from.Context().RepositoryStr()
		}
	case registry.BlobUploaded:
		out.What = progress.BlobUploaded
	case registry.ManifestPut:
		out.What = progress.ManifestWritten
	}
	return out
}

// pushRepo pushes every tag of one repository through one go-containerregistry
// Pusher (which uploads each blob once), then reads every tag back.
func (p *pusher) pushRepo(ctx context.Context, repo name.Repository, tags []name.Tag, from name.Reference) []Result {
	start := time.Now()
	rp := &repoPush{p: p, repo: repo, from: from, putTags: map[string]bool{}}
	inner := p.o.Access.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	rp.meter = &registry.Meter{Inner: inner, Live: p.o.Progress.Mode() == progress.TTY, Debugf: p.o.Debugf, OnEvent: rp.onEvent}
	if p.check != nil {
		rp.meter.Before = p.check.gate
	}
	access := p.o.Access
	access.Transport, access.Puller = rp.meter, nil // the meter sees every request
	opts := access.Options(ctx, remote.WithJobs(max(p.o.Jobs, 1)), remote.WithRetryBackoff(p.backoff()), remote.WithUserAgent("hoist"))
	label := repo.Name()
	if len(tags) == 1 {
		label = tags[0].Name()
	}
	bar := p.o.Progress.Bar(label, p.total, func() int64 { return rp.skipped.Load() + rp.meter.Sent() })

	results := p.upload(ctx, tags, from, opts)
	status := p.settle(ctx, rp, tags, results, time.Since(start))
	results[0].Bytes = rp.meter.Sent()
	p.o.Progress.Finish(bar, status)
	return results
}

// upload pushes the image under every tag, then reads each pushed tag
// back; results hold each tag's error.
func (p *pusher) upload(ctx context.Context, tags []name.Tag, from name.Reference, opts []remote.Option) []Result {
	results := make([]Result, len(tags))
	for i, t := range tags {
		results[i] = Result{Ref: t.Name()}
	}
	var artifact any = p.artifact
	if from != nil {
		artifact = mountable(p.artifact, from)
	}
	pu, err := remote.NewPusher(opts...)
	var pl *remote.Puller
	if err == nil {
		// One puller reads every tag back over one authenticated
		// transport (remote.Head would ping the registry each time).
		pl, err = remote.NewPuller(opts...)
	}
	if err != nil {
		for i, t := range tags {
			results[i].Err = explain(t, err)
		}
		return results
	}
	// The blobs go once whatever the tags (the pusher shares them); each
	// tag is a manifest write, TagsAtOnce at a time, then, once every
	// tag is written, a read-back. (A distribution registry on a
	// filesystem rewrites the manifest's revision link with each tag
	// written: a read of another tag meanwhile can find it empty, and
	// fails with 500.)
	each := func(f func(i int, t name.Tag)) {
		var g errgroup.Group
		g.SetLimit(TagsAtOnce)
		for i, t := range tags {
			g.Go(func() error {
				f(i, t)
				return nil
			})
		}
		g.Wait()
	}
	if p.o.BeforeTags != nil {
		repo := tags[0].Context()
		err := pu.Push(ctx, repo.Digest(p.want.String()), artifact.(remote.Taggable))
		if err != nil {
			err = explain(tags[0], err)
		} else if err = p.o.BeforeTags(ctx, repo, append(slices.Clip(opts), remote.Reuse(pu), remote.Reuse(pl))); err != nil {
			err = fmt.Errorf("%w (nothing was tagged)", explain(tags[0], err))
		}
		if err != nil {
			for i := range results {
				results[i].Err = err
			}
			return results
		}
	}
	each(func(i int, t name.Tag) {
		if err := pu.Push(ctx, t, artifact.(remote.Taggable)); err != nil {
			results[i].Err = explain(t, err)
		}
	})
	each(func(i int, t name.Tag) {
		if results[i].Err == nil {
			results[i].Err = p.readBack(ctx, t, pl)
		}
	})
	return results
}

// TagsAtOnce bounds the tags of one repository written (and read back) at
// once: the connections to a registry a push opens for its tags.
const TagsAtOnce = 16

// settle gives each result its status and digest, and returns the bar's
// final word: a destination that failed because the push was cancelled is
// cancelled; any other failure stops the others under fail-fast.
func (p *pusher) settle(ctx context.Context, rp *repoPush, tags []name.Tag, results []Result, elapsed time.Duration) string {
	status := "done"
	for i, t := range tags {
		r := &results[i]
		r.Duration = elapsed
		switch {
		case r.Err != nil && ctx.Err() != nil && !errors.Is(r.Err, source.ErrDigestMismatch):
			r.Err = cancelled(ctx, t.Name())
			r.Status = "failed"
			status = "cancelled"
		case r.Err != nil:
			r.Status = "failed"
			status = "failed"
			if p.onFail != nil {
				p.onFail()
			}
		case rp.putTags[t.TagStr()]:
			r.Status, r.Digest = "pushed", p.want.String()
		default:
			r.Status, r.Digest = "up to date", p.want.String()
		}
	}
	return status
}

// readBack reads the tag back and compares its digest with the source's.
func (p *pusher) readBack(ctx context.Context, t name.Tag, pl *remote.Puller) error {
	desc, err := pl.Head(ctx, t)
	if err != nil {
		return explain(t, fmt.Errorf("read back: %w", err))
	}
	if desc.Digest != p.want {
		return failed(t.Name(), nil, "the registry reports digest %s after the push, the source is %s", desc.Digest, p.want)
	}
	return nil
}
