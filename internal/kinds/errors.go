package kinds

import "fmt"

// Error is a failed cloud login or call. Its message says what failed
// and what to do, in the cloud's own words where they tell; its cause (the
// SDK's error: smithy.APIError, azidentity.AuthenticationFailedError, a
// transport error) stays inspectable with errors.As. errors.Is finds the
// sentinel (ErrLogin, ErrConfig) it was made with.
type Error struct {
	// Err is the SDK's error.
	Err error
	// advice is the message, wrapping the sentinel.
	advice error
}

func (e *Error) Error() string { return e.advice.Error() }

// Unwrap returns the message (which wraps the sentinel) and the cause.
func (e *Error) Unwrap() []error { return []error{e.advice, e.Err} }

// failure makes an Error: the message is sentinel, ": ", then format with
// args.
func failure(cause, sentinel error, format string, args ...any) *Error {
	return &Error{Err: cause, advice: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}
