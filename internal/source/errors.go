package source

import (
	"errors"
	"fmt"

	"github.com/hoist-build/hoist/internal/registry"
)

// Error is a source that could not be opened because of something
// another component said (a registry's refusal, its silence). Its message
// says where hoist looked and what to do; its cause (the registry
// client's error: *transport.Error, a dial error, context.Canceled) stays
// inspectable with errors.As and errors.Is. errors.Is finds the sentinel
// (ErrNotFound, ErrUnavailable) it was made with.
type Error struct {
	// Err is the component's error.
	Err error
	// advice is the message, wrapping the sentinel.
	advice error
}

func (e *Error) Error() string { return e.advice.Error() }

// Unwrap returns the message (which wraps the sentinel) and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.advice}
	}
	return []error{e.advice, e.Err}
}

// failure makes an Error: the message is sentinel, ": ", then format with
// args. A keychain's failure (a credential helper that failed,
// registry.ErrCredentials) stays in the message only, so that the source's
// failure keeps its exit code (3) as before, not that of a bad setting.
func failure(cause, sentinel error, format string, args ...any) *Error {
	e := &Error{Err: cause, advice: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
	if errors.Is(cause, registry.ErrCredentials) {
		e.Err = nil
	}
	return e
}
