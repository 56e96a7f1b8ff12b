package registry

import (
	"context"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Access is how hoist reaches registries: one transport (NewTransport:
// TLS, proxies, routes, timeouts, the plain-HTTP policy) and one keychain.
// Every package that reads or writes a registry (publish, source, sign)
// takes an Access; go-containerregistry's options are derived from it
// (Options), in one place.
type Access struct {
	// Transport carries every request; nil is http.DefaultTransport.
	Transport http.RoundTripper
	// Keychain answers for credentials; nil is anonymous.
	Keychain authn.Keychain
	// Puller, when set, serves every read made with Options: one ping
	// and one token per repository for a whole step, instead of one for
	// each call. It keeps the transport and keychain it was made with
	// (remote.NewPuller of this Access's own Options, Puller unset), so
	// whoever copies an Access to change its Transport or Keychain must
	// set Puller to nil (publish does, for its meter).
	Puller *remote.Puller
}

// Options are go-containerregistry's remote options for the access, bound
// to ctx, followed by more.
func (a Access) Options(ctx context.Context, more ...remote.Option) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx)}
	if a.Transport != nil {
		opts = append(opts, remote.WithTransport(a.Transport))
	}
	if a.Keychain != nil {
		opts = append(opts, remote.WithAuthFromKeychain(a.Keychain))
	}
	if a.Puller != nil {
		opts = append(opts, remote.Reuse(a.Puller))
	}
	return append(opts, more...)
}

// RoundTripper is the access's transport, http.DefaultTransport when it
// has none.
func (a Access) RoundTripper() http.RoundTripper {
	if a.Transport == nil {
		return http.DefaultTransport
	}
	return a.Transport
}

// Authenticator resolves the credentials for res: anonymous without a
// keychain.
func (a Access) Authenticator(ctx context.Context, res authn.Resource) (authn.Authenticator, error) {
	if a.Keychain == nil {
		return authn.Anonymous, nil
	}
	return authn.Resolve(ctx, a.Keychain, res)
}
