package registry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/hoist-build/hoist/internal/harness"
)

// A registry that gives no answer (its name unresolved, the connection
// refused, reset or cut short, a time-out, 429 or a 5xx) is unavailable;
// one that answers (404, 401, a certificate that does not verify) is
// not. The refusal and the failed lookup are real ones, on loopback and
// by the Go resolver without a query (a label longer than DNS allows).
func TestUnavailable(t *testing.T) {
	t.Parallel()
	_, refused := net.Dial("tcp", harness.RefusedAddr(t))
	_, unresolved := (&net.Resolver{PreferGo: true}).LookupHost(context.Background(), strings.Repeat("a", 64)+".example")
	if refused == nil || unresolved == nil {
		t.Fatalf("the dial and the lookup succeeded: %v, %v", refused, unresolved)
	}
	status := func(code int) error {
		return fmt.Errorf("GET /v2/x/manifests/1: %w", &transport.Error{StatusCode: code})
	}
	for _, c := range []struct {
		err         error
		unavailable bool
		how         string
	}{
		{refused, true, "is unavailable (it cannot be reached)"},
		{fmt.Errorf("Get \"https://x/v2/\": %w", unresolved), true, "is unavailable (it cannot be reached)"},
		{status(503), true, "is unavailable (after retries)"},
		{status(429), true, "is unavailable (after retries)"},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true, "is unavailable (the connection failed)"},
		{fmt.Errorf("%w: no byte came", ErrStalled), true, "is unavailable (the connection failed)"},
		{status(404), false, ""},
		{status(401), false, ""},
		{fmt.Errorf("tls: %w", x509.UnknownAuthorityError{}), false, ""},
		{errors.New("manifest unknown"), false, ""},
		{nil, false, ""},
	} {
		if got := Unavailable(c.err); got != c.unavailable {
			t.Errorf("Unavailable(%v) = %v", c.err, got)
		}
		if c.unavailable && HowUnavailable(c.err) != c.how {
			t.Errorf("HowUnavailable(%v) = %q, want %q", c.err, HowUnavailable(c.err), c.how)
		}
	}
}
