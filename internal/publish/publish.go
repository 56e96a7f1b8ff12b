// Package publish pushes one image to many destinations at once: every
// destination concurrently, each blob uploaded once per repository, blobs
// cross-mounted between repositories of one registry, tags written last,
// and every destination's digest read back and checked.
package publish

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
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
	Keychain  authn.Keychain
	Transport http.RoundTripper
	// Jobs is the number of blobs uploaded at once per repository.
	Jobs int
	// MaxParallel bounds the repositories pushed at once; 0 means all.
	MaxParallel int
	// Retries after a retryable failure (408, 429, 5xx, dropped
	// connection), with a backoff from 0.5 s doubling up to RetryCap.
	Retries  int
	FailFast bool
	Progress *progress.Printer
	// Debugf, when set, logs every registry request.
	Debugf func(format string, args ...any)
	// Verify, when set, checks the source's content (source.Image.Verify).
	// It runs alongside the uploads, and no manifest or tag is written
	// anywhere until it has passed; when it fails, every destination fails
	// with its error.
	Verify func(ctx context.Context) error

	onFail  func()          // cancels the other destinations when FailFast is set
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
	results := make([]Result, len(dests))
	if err != nil {
		for i, d := range dests {
			results[i] = Result{Ref: d.Name(), Status: "failed", Err: err}
		}
		return results
	}
	if o.FailFast {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		o.onFail = func() { cancel(errors.New("another destination failed and fail-fast is set")) }
	}
	var check *contentCheck
	if o.Verify != nil {
		// A failed check stops the uploads too: nothing of the image is
		// worth sending.
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		check = newContentCheck(ctx, o.Verify, cancel)
		defer check.stop()
	}
	blobs := source.Blobs(a)
	var total int64
	for _, n := range blobs {
		total += n
	}

	// Destinations grouped by repository, repositories by registry; the
	// first repository of a registry is pushed first, the others then mount
	// its blobs.
	type group struct {
		repo  name.Repository
		index []int
	}
	var groups []*group
	byRepo := map[string]*group{}
	var registries []string
	byRegistry := map[string][]*group{}
	for i, d := range dests {
		key := d.Context().String()
		g := byRepo[key]
		if g == nil {
			g = &group{repo: d.Context()}
			byRepo[key] = g
			groups = append(groups, g)
			reg := d.Context().RegistryStr()
			if _, ok := byRegistry[reg]; !ok {
				registries = append(registries, reg)
			}
			byRegistry[reg] = append(byRegistry[reg], g)
		}
		g.index = append(g.index, i)
	}

	limit := o.MaxParallel
	if limit <= 0 {
		limit = len(groups)
	}
	sem := make(chan struct{}, limit)
	p := &pusher{o: o, artifact: a, want: want, blobs: blobs, total: total, check: check}
	// Results arrive under mu; once Push has returned (cancelled while
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
	for _, reg := range registries {
		gs := byRegistry[reg]
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
	all := make(chan struct{})
	go func() {
		wg.Wait()
		close(all)
	}()
	select {
	case <-all:
	case <-ctx.Done():
		// Cancelled: the pushes stop at their next request, but one may
		// be in a retry's sleep; do not wait for it.
		select {
		case <-all:
		case <-time.After(cancelGrace):
		}
	}
	mu.Lock()
	returned = true
	for i, d := range dests {
		if !got[i] {
			results[i] = Result{Ref: d.Name(), Status: "failed", Err: cancelled(ctx, d.Name())}
		}
	}
	mu.Unlock()
	if check != nil {
		if err := check.outcome(ctx); err != nil && !errors.Is(err, context.Canceled) {
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
}

// contentCheck runs the source's check (Options.Verify) alongside the
// uploads: it starts with the first blob request (a re-push whose tags
// already hold the image sends none, and costs no check), and every
// manifest PUT waits for it to pass.
type contentCheck struct {
	ctx    context.Context
	verify func(context.Context) error
	fail   context.CancelCauseFunc // stops the push when the check fails
	stop   context.CancelFunc      // ends a check the push no longer needs

	once  sync.Once
	begun atomic.Bool
	done  chan struct{}
	err   error
}

func newContentCheck(ctx context.Context, verify func(context.Context) error, fail context.CancelCauseFunc) *contentCheck {
	c := &contentCheck{verify: verify, fail: fail, done: make(chan struct{})}
	c.ctx, c.stop = context.WithCancel(ctx)
	return c
}

func (c *contentCheck) begin() {
	c.once.Do(func() {
		c.begun.Store(true)
		go func() {
			defer close(c.done)
			if c.err = c.verify(c.ctx); c.err != nil {
				c.fail(c.err)
			}
		}()
	})
}

// gate is the Meter's hook: blob requests start the check, manifest PUTs
// wait for it.
func (c *contentCheck) gate(req *http.Request) error {
	switch {
	case registry.IsBlobRequest(req):
		c.begin()
	case registry.IsManifestPut(req):
		c.begin()
		select {
		case <-c.done:
			return c.err
		case <-req.Context().Done():
			return req.Context().Err()
		}
	}
	return nil
}

// outcome is the check's result when the push has ended. A push that was
// cancelled (perhaps by the check's own failure) waits for the check,
// which then ends promptly; otherwise a check still running, or never
// started, is not waited for.
func (c *contentCheck) outcome(push context.Context) error {
	if !c.begun.Load() {
		return nil
	}
	if push.Err() != nil {
		<-c.done
		return c.err
	}
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

func (p *pusher) backoff() remote.Backoff {
	if p.o.backoff != nil {
		return *p.o.backoff
	}
	return Backoff(p.o.Retries)
}

// pushRepo pushes every tag of one repository through one go-containerregistry
// Pusher (which uploads each blob once), then reads every tag back.
func (p *pusher) pushRepo(ctx context.Context, repo name.Repository, tags []name.Tag, from name.Reference) []Result {
	start := time.Now()
	label := repo.Name()
	if len(tags) == 1 {
		label = tags[0].Name()
	}
	var skipped atomic.Int64
	var mu sync.Mutex
	putTags := map[string]bool{}
	meter := &registry.Meter{Inner: p.o.Transport, Live: p.o.Progress.Mode() == progress.TTY, Debugf: p.o.Debugf}
	if p.check != nil {
		meter.Before = p.check.gate
	}
	meter.OnEvent = func(ev registry.Event) {
		size := ev.Size
		if h, err := v1.NewHash(ev.Ref); err == nil {
			if s, ok := p.blobs[h]; ok {
				size = s
			}
		}
		switch ev.Kind {
		case registry.BlobExists, registry.BlobMounted:
			skipped.Add(size)
		case registry.ManifestPut:
			mu.Lock()
			putTags[ev.Ref] = true
			mu.Unlock()
		}
		if p.o.Progress != nil && p.o.Progress.Mode() == progress.Plain {
			p.logEvent(repo, ev, size, from)
		}
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(p.o.Keychain),
		remote.WithTransport(meter),
		remote.WithJobs(max(p.o.Jobs, 1)),
		remote.WithRetryBackoff(p.backoff()),
		remote.WithUserAgent("hoist"),
	}
	bar := p.o.Progress.Bar(label, p.total, func() int64 { return skipped.Load() + meter.Sent() })

	results := make([]Result, len(tags))
	for i, t := range tags {
		results[i] = Result{Ref: t.Name()}
	}
	var artifact any = p.artifact
	if from != nil {
		artifact = mountable(p.artifact, from)
	}
	pu, err := remote.NewPusher(opts...)
	if err == nil {
		var wg sync.WaitGroup
		for i, t := range tags {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := pu.Push(ctx, t, artifact.(remote.Taggable)); err != nil {
					results[i].Err = explain(t, err)
				}
			}()
		}
		wg.Wait()
	}
	for i, t := range tags {
		if err != nil {
			results[i].Err = explain(t, err)
		}
		if results[i].Err == nil {
			results[i].Err = p.verify(ctx, t, opts)
		}
	}
	elapsed := time.Since(start)
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
			if p.o.onFail != nil {
				p.o.onFail()
			}
		case putTags[t.TagStr()]:
			r.Status, r.Digest = "pushed", p.want.String()
		default:
			r.Status, r.Digest = "up to date", p.want.String()
		}
	}
	results[0].Bytes = meter.Sent()
	p.o.Progress.Finish(bar, status)
	return results
}

// verify reads the tag back and compares its digest with the source's.
func (p *pusher) verify(ctx context.Context, t name.Tag, opts []remote.Option) error {
	desc, err := remote.Head(t, opts...)
	if err != nil {
		return explain(t, fmt.Errorf("read back: %w", err))
	}
	if desc.Digest != p.want {
		return failed(t.Name(), nil, "the registry reports digest %s after the push, the source is %s", desc.Digest, p.want)
	}
	return nil
}

func (p *pusher) logEvent(repo name.Repository, ev registry.Event, size int64, from name.Reference) {
	short := ev.Ref
	if len(short) > 19 {
		short = short[:19]
	}
	switch ev.Kind {
	case registry.BlobExists:
		p.o.Progress.Printf("%s: blob %s already there (%s)", repo.Name(), short, progress.Bytes(size))
	case registry.BlobMounted:
		// A blob of a registry source is mounted from the source's
		// repository, which no destination names (from is nil).
		src := ev.From
		if src == "" && from != nil {
			src = from.Context().RepositoryStr()
		}
		p.o.Progress.Printf("%s: blob %s mounted from %s (%s)", repo.Name(), short, src, progress.Bytes(size))
	case registry.BlobUploaded:
		p.o.Progress.Printf("%s: blob %s uploaded (%s)", repo.Name(), short, progress.Bytes(size))
	case registry.ManifestPut:
		p.o.Progress.Printf("%s: manifest %s written", repo.Name(), ev.Ref)
	}
}
