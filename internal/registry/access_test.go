package registry

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/hoist-build/hoist/internal/harness"
)

type staticKeychain authn.AuthConfig

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig(k)), nil
}

// An Access's options reach a registry that wants a login with the
// keychain's credentials, through its transport; without a keychain the
// registry refuses (401); a cancelled context stops the request.
func TestAccessOptions(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	tr, err := NewTransport(TransportOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(reg.Host + "/access/app:1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	ctx := context.Background()
	with := Access{Transport: tr, Keychain: staticKeychain{Username: reg.User, Password: reg.Password}}
	if err := remote.Write(ref, img, with.Options(ctx)...); err != nil {
		t.Fatalf("write with the keychain: %v", err)
	}
	if got := reg.Digest(t, ref.Name()); got != want.String() {
		t.Errorf("crane reads %s, want %s", got, want)
	}

	_, err = remote.Head(ref, Access{Transport: tr}.Options(ctx)...)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a keychain: %v, want 401", err)
	}
	if a, err := (Access{}).Authenticator(ctx, ref.Context()); err != nil || a != authn.Anonymous {
		t.Errorf("Authenticator without a keychain: %v, %v; want anonymous", a, err)
	}
	if (Access{}).RoundTripper() != http.DefaultTransport || with.RoundTripper() != tr {
		t.Error("RoundTripper is not the transport (or the default)")
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := remote.Head(ref, with.Options(cancelled)...); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}
