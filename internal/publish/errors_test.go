package publish

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/hoist-build/hoist/internal/harness"
)

// A registry that refuses the push (401: no credentials given) yields an
// error that keeps the registry's own error as its cause, and says what to
// do as before.
func TestRefusedPushKeepsTheRegistrysError(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	img := open(t, f.DockerSave)
	res := Push(context.Background(), img.Artifact, tags(t, reg.Host+"/app:1"), options(t))
	err := res[0].Err
	if err == nil {
		t.Fatal("the push without credentials succeeded")
	}
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("errors.As(*transport.Error) = %v (%+v), want status 401; error: %v", errors.As(err, &terr), terr, err)
	}
	var perr *Error
	if !errors.As(err, &perr) || perr.Ref != reg.Host+"/app:1" {
		t.Errorf("errors.As(*publish.Error): %+v", perr)
	}
	want := "push failed: " + reg.Host + "/app:1: registry " + reg.Host + " refused access (401 Unauthorized): check the credentials for " + reg.Host + " (PLUGIN_USERNAME/PLUGIN_PASSWORD with PLUGIN_REGISTRY, PLUGIN_LOGINS for a registry of its own, or PLUGIN_CONFIG) and that the account may push to app"
	if !errors.Is(err, ErrPush) || err.Error() != want {
		t.Errorf("message:\n got %q\nwant %q", err, want)
	}
}

// A cancelled push's destinations fail with context.Canceled as their
// cause, and say "cancelled".
func TestCancelledPushIsContextCanceled(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	img := open(t, f.DockerSave)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := Push(ctx, img.Artifact, tags(t, reg.Host+"/app:1", reg.Host+"/other:1"), options(t))
	for _, r := range res {
		if !errors.Is(r.Err, context.Canceled) || !errors.Is(r.Err, ErrPush) || !strings.Contains(r.Err.Error(), "cancelled") {
			t.Errorf("%s: %v, want a push error caused by context.Canceled", r.Ref, r.Err)
		}
	}
}
