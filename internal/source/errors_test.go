package source

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/hoist-build/hoist/internal/harness"
)

// A source image its registry refuses to show (401: no credentials) is
// not found, says so as before, and keeps the registry's error as its
// cause.
func TestRefusedSourceKeepsTheRegistrysError(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	_, err := Open(context.Background(), Request{Image: reg.Host + "/app:1", TempDir: t.TempDir()})
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("errors.As(*transport.Error): %v", err)
	}
	var serr *Error
	if !errors.As(err, &serr) || !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "source image "+reg.Host+"/app:1 was found nowhere") ||
		!strings.Contains(err.Error(), "registry "+reg.Host+": access denied (401); check the credentials for this registry") {
		t.Errorf("message %q", err)
	}
}
