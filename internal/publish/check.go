package publish

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/hoist-build/hoist/internal/registry"
)

// contentCheck runs the source's check (Options.ContentCheck) alongside the
// uploads: it starts with the first blob request (a re-push whose tags
// already hold the image sends none, and costs no check), and every
// manifest PUT waits for it to pass.
type contentCheck struct {
	ctx   context.Context
	check func(context.Context) error
	fail  context.CancelCauseFunc // stops the push when the check fails
	stop  context.CancelFunc      // ends a check the push no longer needs

	once  sync.Once
	begun atomic.Bool
	done  chan struct{}
	err   error
}

func newContentCheck(ctx context.Context, check func(context.Context) error, fail context.CancelCauseFunc) *contentCheck {
	c := &contentCheck{check: check, fail: fail, done: make(chan struct{})}
	c.ctx, c.stop = context.WithCancel(ctx)
	return c
}

func (c *contentCheck) begin() {
	c.once.Do(func() {
		c.begun.Store(true)
		go func() {
			defer close(c.done)
			if c.err = c.check(c.ctx); c.err != nil {
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
