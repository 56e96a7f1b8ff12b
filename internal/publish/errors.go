package publish

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/source"
)

// ErrPush marks a failed destination.
var ErrPush = errors.New("push failed")

// Error is a failed destination. Its message is the advice a user reads
// (what failed, what to do); its cause stays inspectable: errors.As finds
// the registry's *transport.Error, errors.Is finds context.Canceled, a
// dial's *net.OpError, source.ErrDigestMismatch. errors.Is(err, ErrPush)
// always holds.
type Error struct {
	// Ref is the destination.
	Ref string
	// Err is what went wrong, as the registry client returned it.
	Err error
	// advice is the message, with the sentinels it names wrapped.
	advice error
}

func (e *Error) Error() string { return e.advice.Error() }

// Unwrap returns the advice (which wraps ErrPush) and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.advice}
	}
	return []error{e.advice, e.Err}
}

// failed makes the error of a destination: the advice is format with args
// (it starts with "%w: %s: ", ErrPush and the reference).
func failed(ref string, cause error, format string, args ...any) *Error {
	return &Error{Ref: ref, Err: cause, advice: fmt.Errorf("%w: %s: "+format, append([]any{ErrPush, ref}, args...)...)}
}

// cancelled is the error of a destination the push's context ended
// before it finished: the cause is the context's error and, when the
// cancel gave one, its cause (another destination failed with fail-fast,
// the content check failed).
func cancelled(ctx context.Context, ref string) *Error {
	cause := context.Cause(ctx)
	err := ctx.Err()
	if cause != nil && cause != err {
		err = errors.Join(err, cause)
	}
	return failed(ref, err, "cancelled (%v)", context.Cause(ctx))
}

// explain turns a push error into a message that says what to do, keeping
// the error as the cause.
func explain(t name.Tag, err error) error {
	ref, reg := t.Name(), t.Context().RegistryStr()
	cause := err
	// A url.Error repeats the request URL (upload URLs carry long state
	// tokens); the cause is what a user needs.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var terr *transport.Error
	var operr *net.OpError
	switch {
	case hasCode(err, "DIGEST_INVALID", "SIZE_INVALID"):
		blob := "a blob"
		if errors.As(err, &terr) && terr.Request != nil && terr.Request.URL.Query().Get("digest") != "" {
			blob = "blob " + terr.Request.URL.Query().Get("digest")
		}
		return failed(ref, cause, "%w: registry %s rejected %s: the bytes sent do not match that digest, so the file was altered or damaged after the image was written; rebuild or re-copy it", source.ErrDigestMismatch, reg, blob)
	case errors.Is(err, source.ErrDigestMismatch):
		return failed(ref, cause, "%w", err)
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden):
		return failed(ref, cause, "registry %s refused access (%d %s): check the credentials for %s (PLUGIN_USERNAME/PLUGIN_PASSWORD with PLUGIN_REGISTRY, PLUGIN_LOGINS for a registry of its own, or PLUGIN_CONFIG) and that the account may push to %s", reg, terr.StatusCode, http.StatusText(terr.StatusCode), reg, t.Context().RepositoryStr())
	case registry.IsCertError(err):
		return failed(ref, cause, "TLS to registry %s failed: %w", reg, registry.TLSAdvice(err))
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return failed(ref, cause, "registry %s speaks plain HTTP: set PLUGIN_INSECURE=true to allow it", reg)
	case errors.As(err, &operr) && operr.Op == "dial":
		return failed(ref, cause, "cannot reach registry %s: %w; check the host and port", reg, operr.Err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return failed(ref, cause, "registry %s did not answer in time (PLUGIN_REGISTRY_TIMEOUT): %w", reg, err)
	case errors.Is(err, context.Canceled):
		return failed(ref, cause, "cancelled")
	}
	return failed(ref, cause, "%w", err)
}

// hasCode reports whether a registry error carries one of the codes.
func hasCode(err error, codes ...string) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	for _, d := range terr.Errors {
		for _, c := range codes {
			if string(d.Code) == c {
				return true
			}
		}
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
