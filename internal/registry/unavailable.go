package registry

import (
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Unavailable reports whether err is a registry that gave no answer
// about what was asked, as opposed to one that answered (not found,
// access denied, a certificate that does not verify): its name does not
// resolve, the connection is refused, reset or cut short, the network or
// host is unreachable, a time-out, or the registry says 429 or a 5xx
// (after the retries). Such a failure says nothing about the image.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode == http.StatusTooManyRequests || terr.StatusCode >= 500
	}
	if Unreachable(err) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrStalled) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Unreachable reports whether err is a registry that could not be
// connected to at all: its name does not resolve, or the connection is
// refused, or the network or host is unreachable. No request was made,
// and none is retried.
func Unreachable(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH)
}

// HowUnavailable says how a registry is unavailable (Unavailable): it
// cannot be reached (no request was made), it answered with an error
// after the retries, or the connection failed (reset, cut short, timed
// out).
func HowUnavailable(err error) string {
	var terr *transport.Error
	switch {
	case Unreachable(err):
		return "is unavailable (it cannot be reached)"
	case errors.As(err, &terr):
		return "is unavailable (after retries)"
	}
	return "is unavailable (the connection failed)"
}
