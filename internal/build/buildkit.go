package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/util/progress/progressui"
	"golang.org/x/sync/errgroup"
)

// BuildKit builds with a BuildKit daemon through its Go client: the
// Dockerfile frontend runs in the daemon, the context and Dockerfile are
// sent over the session, and registry credentials for base images come
// from the keychain through the session's auth provider.
type BuildKit struct {
	Client   *client.Client
	Keychain authn.Keychain
	// Progress is where BuildKit's progress goes, in ProgressMode
	// (auto, tty, plain, quiet).
	Progress     io.Writer
	ProgressMode string
	// ContentDir is the engine's content store when hoist can read it (the
	// embedded engine): the image is then exported into the engine and
	// taken from there (see direct.go) instead of streamed back.
	ContentDir string
	// Logf reports what the builder does besides BuildKit's progress.
	Logf func(string, ...any)
	// Addr is the daemon's address (unix://, tcp://, ...), as the
	// caller reached it.
	Addr string
	// Docker is set for the Docker daemon's built-in BuildKit: the image
	// goes into the daemon's image store under req.Names, and Outputs
	// must be empty (the caller saves from the daemon).
	Docker bool
}

var _ Builder = (*BuildKit)(nil)

// Build runs one solve whose exporters write every requested output.
func (b *BuildKit) Build(ctx context.Context, req Request) (*Result, error) {
	if b.ContentDir == "" || b.Docker || req.Out.Push != "" {
		return b.solve(ctx, req, false)
	}
	res, err := b.solve(ctx, req, true)
	if err != nil {
		return nil, err
	}
	desc, err := descriptorOf(res.Metadata)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBuild, err)
	}
	if err := linkLayout(ctx, req.Workspace, b.ContentDir, desc, req.Out.LayoutDir); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w", ErrBuild, err)
		}
		// Layers taken from a remote cache stay in the registry until
		// something needs their bytes; export again through the session,
		// which fetches them (the build itself is all cached by now).
		if err := clearDir(req.Out.LayoutDir); err != nil {
			return nil, err
		}
		if b.Logf != nil {
			b.Logf("the engine holds some layers only remotely (%v); exporting through the session", err)
		}
		// The first solve wrote the filesystem exports.
		req.Out.FSTar, req.Out.FSDir = nil, ""
		return b.solve(ctx, req, false)
	}
	if err := writeTarballs(ctx, req); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBuild, err)
	}
	return res, nil
}

func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// solve runs one solve; direct exports into the engine's content store,
// otherwise the exporters stream every output back through the session.
func (b *BuildKit) solve(ctx context.Context, req Request, direct bool) (*Result, error) {
	opt, err := b.solveOpt(req, direct)
	if err != nil {
		return nil, err
	}
	opt.Ref = identity.NewID()
	mode := progressui.AutoMode
	if b.ProgressMode != "" {
		mode = progressui.DisplayMode(b.ProgressMode)
	}
	out := b.Progress
	if out == nil {
		out = io.Discard
		mode = progressui.QuietMode
	}
	display, err := progressui.NewDisplay(out, mode)
	if err != nil {
		display, _ = progressui.NewDisplay(out, progressui.PlainMode)
	}
	ch := make(chan *client.SolveStatus)
	var resp *client.SolveResponse
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		resp, err = b.Client.Solve(gctx, nil, opt, ch)
		return err
	})
	g.Go(func() error {
		_, err := display.UpdateFrom(context.WithoutCancel(gctx), ch)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, explain(ctx, err)
	}
	res := &Result{Metadata: resp.ExporterResponse, Digest: resp.ExporterResponse["containerimage.digest"]}
	if req.BaseImages {
		if res.BaseImages, err = b.baseImages(ctx, opt.Ref); err != nil && b.Logf != nil {
			b.Logf("the base images BuildKit resolved could not be read from its build history: %v", err)
		}
		if info, err := b.Client.Info(ctx); err == nil {
			res.BuilderVersion = info.BuildkitVersion.Version
		}
	}
	return res, nil
}

func cacheEntries(in []CacheEntry) []client.CacheOptionsEntry {
	var out []client.CacheOptionsEntry
	for _, c := range in {
		out = append(out, client.CacheOptionsEntry{Type: c.Type, Attrs: c.Attrs})
	}
	return out
}

// keychainAuth feeds BuildKit's session auth provider from a keychain, so
// base images and registry caches are pulled with the same credentials
// hoist pushes with.
func keychainAuth(kc authn.Keychain) authprovider.AuthConfigProvider {
	return func(ctx context.Context, host string, _ []string, _ authprovider.ExpireCachedAuthCheck) (types.AuthConfig, error) {
		if kc == nil {
			return types.AuthConfig{}, nil
		}
		if host == authprovider.DockerHubRegistryHost {
			host = name.DefaultRegistry
		}
		reg, err := name.NewRegistry(host)
		if err != nil {
			return types.AuthConfig{}, nil
		}
		a, err := authn.Resolve(ctx, kc, reg)
		if err != nil {
			return types.AuthConfig{}, err
		}
		ac, err := a.Authorization()
		if err != nil {
			return types.AuthConfig{}, err
		}
		return types.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth, IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}, nil
	}
}
