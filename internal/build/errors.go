package build

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/status"

	"github.com/hoist-build/hoist/internal/registry"
)

// Error is a failed build. Its message is what a user reads (BuildKit's
// own words: the failing step, its command and exit code, or the
// Dockerfile line); its cause is the builder's error, whose gRPC status
// (status.FromError) and typed details stay inspectable.
// errors.Is(err, ErrBuild) always holds.
type Error struct {
	// Err is the builder's error.
	Err error
	// advice is the message, wrapping ErrBuild.
	advice error
}

func (e *Error) Error() string { return e.advice.Error() }

// Unwrap returns the message (which wraps ErrBuild) and the cause.
func (e *Error) Unwrap() []error { return []error{e.advice, e.Err} }

// explain keeps BuildKit's own message without the gRPC wrapping, and the
// error as the cause. When ctx ended, the cause is also its error
// (context.Canceled, context.DeadlineExceeded): BuildKit reports a
// cancelled solve as a gRPC status, which is neither.
func explain(ctx context.Context, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	cause := err
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		cause = errors.Join(ctx.Err(), err)
	}
	msg := err.Error()
	if st, ok := status.FromError(errors.Unwrap(err)); ok && st.Message() != "" {
		msg = st.Message()
	}
	if st, ok := status.FromError(err); ok && st.Message() != "" {
		msg = st.Message()
	}
	msg = strings.TrimPrefix(msg, "failed to solve: ")
	// A certificate BuildKit could not verify reaches hoist as gRPC's
	// text: only its words tell.
	return &Error{Err: cause, advice: fmt.Errorf("%w: %s", ErrBuild, registry.TLSAdviceText(msg))}
}

// PushFailed reports a build that failed in its push (Outputs.Push):
// the build itself succeeded and is in the builder's cache. BuildKit
// tells only in its words.
func PushFailed(err error, repo string) bool {
	return repo != "" && errors.Is(err, ErrBuild) && strings.Contains(err.Error(), "failed to push "+repo)
}
