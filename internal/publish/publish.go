// Package publish pushes one image to many destinations at once: every
// destination concurrently, each blob uploaded once per repository, blobs
// cross-mounted between repositories of one registry, tags written last,
// and every destination's digest read back and checked.
package publish

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/source"
)

// RetryCap bounds one wait between retries (jitter aside).
const RetryCap = 5 * time.Second

// Backoff is the wait between retries: from 0.5 s, doubling, but growing
// slowly enough that no wait exceeds RetryCap however many retries are
// asked for, so that many retries never wait minutes each and a stop
// signal waits at most one cap for a sleep to end. (go-containerregistry's
// own Cap would end the retries when reached.)
func Backoff(retries int) remote.Backoff {
	const base = 500 * time.Millisecond
	steps := max(retries, 0) + 1
	factor := 2.0
	if n := steps - 2; n > 0 {
		factor = min(factor, math.Pow(float64(RetryCap)/float64(base), 1/float64(n)))
	}
	return remote.Backoff{Duration: base, Factor: factor, Jitter: 0.1, Steps: steps}
}

// cancelGrace is how long a cancelled push waits for its destinations to
// report before it returns without them.
const cancelGrace = 500 * time.Millisecond

// Options configure a push.
type Options struct {
	// Access reaches the registries (transport and keychain).
	Access registry.Access
	// Jobs is the number of blobs uploaded at once per repository.
	Jobs int
	// MaxParallel bounds the repositories pushed at once; 0 means all.
	MaxParallel int
	// Retries after a retryable failure (408, 429, 5xx, dropped
	// connection), with a backoff from 0.5 s doubling up to RetryCap.
	Retries  int
	FailFast bool
	// Progress draws a bar per destination on a terminal.
	Progress *progress.Printer
	// Events, when set, receives what the push does at each registry
	// (blobs found, mounted, uploaded; manifests written), as data for a
	// display to render (progress.Printer.Push).
	Events func(progress.PushEvent)
	// Debugf, when set, logs every registry request.
	Debugf func(format string, args ...any)
	// ContentCheck, when set, checks the source's content
	// (source.Image.CheckContent). It runs alongside the uploads, and no
	// manifest or tag is written anywhere until it has passed; when it
	// fails, every destination fails with its error.
	ContentCheck func(ctx context.Context) error
	// BeforeTags, when set, runs in each repository once the image is
	// there by digest and before any tag is written (hoist promote copies
	// the image's signatures and attestations there): the image goes up
	// untagged first, and a repository whose BeforeTags fails gets none
	// of its tags. opts reach that repository as the push does.
	BeforeTags func(ctx context.Context, repo name.Repository, opts []remote.Option) error

	backoff *remote.Backoff // replaces Backoff(Retries) in tests
}

// Result is the outcome of one destination.
type Result struct {
	Ref      string
	Digest   string
	Bytes    int64
	Duration time.Duration
	// Status is "pushed", "up to date" (the tag already pointed at the
	// image) or "failed".
	Status string
	Err    error
}

// Push pushes the artifact to every destination and returns one result per
// destination, in the order given. It keeps going when a destination fails
// unless FailFast is set.
func Push(ctx context.Context, a source.Artifact, dests []name.Tag, o Options) []Result {
	want, err := a.Digest()
	if err != nil {
		results := make([]Result, len(dests))
		for i, d := range dests {
			results[i] = Result{Ref: d.Name(), Status: "failed", Err: err}
		}
		return results
	}
	p := &pusher{o: o, artifact: a, want: want, blobs: source.Blobs(a)}
	for _, n := range p.blobs {
		p.total += n
	}
	var stop func()
	ctx, stop = p.start(ctx)
	defer stop()
	results := p.pushAll(ctx, dests)
	if p.check != nil {
		if err := p.check.outcome(ctx); err != nil && !errors.Is(err, context.Canceled) {
			for i, d := range dests {
				results[i] = Result{Ref: d.Name(), Status: "failed", Err: failed(d.Name(), err, "nothing was tagged: %w", err)}
			}
		}
	}
	return results
}

type pusher struct {
	o        Options
	artifact source.Artifact
	want     v1.Hash
	blobs    map[v1.Hash]int64
	total    int64
	check    *contentCheck
	onFail   func() // cancels the other destinations when FailFast is set
}

// start readies the push's context: fail-fast cancels every destination
// when one fails, and a failed content check stops the uploads too
// (nothing of the image is worth sending). stop releases both.
func (p *pusher) start(ctx context.Context) (_ context.Context, stop func()) {
	var stops []func()
	if p.o.FailFast {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		stops = append(stops, func() { cancel(nil) })
		p.onFail = func() { cancel(errors.New("another destination failed and fail-fast is set")) }
	}
	if p.o.ContentCheck != nil {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		p.check = newContentCheck(ctx, p.o.ContentCheck, cancel)
		stops = append(stops, func() { cancel(nil) }, p.check.stop)
	}
	return ctx, func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
}

// group is the destinations of one repository.
type group struct {
	repo  name.Repository
	index []int // into the destinations
}

// byRegistry groups the destinations by repository, and the repositories
// by registry, in the order given.
func byRegistry(dests []name.Tag) [][]*group {
	var out [][]*group
	byRepo := map[string]*group{}
	registries := map[string]int{}
	for i, d := range dests {
		key := d.Context().String()
		g := byRepo[key]
		if g == nil {
			g = &group{repo: d.Context()}
			byRepo[key] = g
			reg := d.Context().RegistryStr()
			r, ok := registries[reg]
			if !ok {
				r = len(out)
				registries[reg] = r
				out = append(out, nil)
			}
			out[r] = append(out[r], g)
		}
		g.index = append(g.index, i)
	}
	return out
}

// pushAll pushes every registry's repositories at once, at most
// MaxParallel repositories at a time; the first repository of a registry
// is pushed first, the others then mount its blobs. A cancelled push
// returns within cancelGrace, its unfinished destinations failed.
func (p *pusher) pushAll(ctx context.Context, dests []name.Tag) []Result {
	registries := byRegistry(dests)
	limit := p.o.MaxParallel
	if limit <= 0 {
		limit = len(dests)
	}
	sem := make(chan struct{}, limit)
	results := make([]Result, len(dests))
	// Results arrive under mu; once pushAll has returned (cancelled while
	// go-containerregistry sleeps before a retry, which no context ends),
	// late ones are dropped.
	var mu sync.Mutex
	returned := false
	got := make([]bool, len(dests))
	run := func(g *group, from name.Reference) bool {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		defer func() { <-sem }()
		tags := make([]name.Tag, len(g.index))
		for j, i := range g.index {
			tags[j] = dests[i]
		}
		rs := p.pushRepo(ctx, g.repo, tags, from)
		mu.Lock()
		defer mu.Unlock()
		ok := true
		for j, i := range g.index {
			if !returned {
				results[i], got[i] = rs[j], true
			}
			ok = ok && rs[j].Err == nil
		}
		return ok
	}
	var wg sync.WaitGroup
	for _, gs := range registries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var from name.Reference
			if run(gs[0], nil) {
				from = dests[gs[0].index[0]]
			}
			var inner sync.WaitGroup
			for _, g := range gs[1:] {
				inner.Add(1)
				go func() {
					defer inner.Done()
					run(g, from)
				}()
			}
			inner.Wait()
		}()
	}
	waitOrGrace(ctx, &wg)
	mu.Lock()
	defer mu.Unlock()
	returned = true
	for i, d := range dests {
		if !got[i] {
			results[i] = Result{Ref: d.Name(), Status: "failed", Err: cancelled(ctx, d.Name())}
		}
	}
	return results
}

// waitOrGrace waits for wg, or, once ctx is cancelled, at most
// cancelGrace: the pushes stop at their next request, but one may be in a
// retry's sleep.
func waitOrGrace(ctx context.Context, wg *sync.WaitGroup) {
	all := make(chan struct{})
	go func() {
		wg.Wait()
		close(all)
	}()
	select {
	case <-all:
	case <-ctx.Done():
		select {
		case <-all:
		case <-time.After(cancelGrace):
		}
	}
}
