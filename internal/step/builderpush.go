package step

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/net/http/httpproxy"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/source"
)

// builderPush is the destination a remote BuildKit pushes the image to
// itself, by digest and untagged, so that the image's bytes do not
// travel from the builder to hoist and on to the registry: hoist then
// copies it from there to every destination (that one's blobs are there
// already), tags last, as for any registry source. It is chosen
// (PLUGIN_BUILDER_PUSH) only when nothing needs the image's bytes here
// (no tarball, no load, no image store, no filesystem export, no scan, no
// SBOM) and no manifest may wait for a signing key (which hoist's own
// push writes only once the key is unlocked); and where the builder
// reaches the registry as hoist would: no CA, proxy or route of hoist's
// own, no plain HTTP, and no loopback registry unless the user says the
// builder shares this host's network (a builder's loopback is its own:
// a socket or a forwarded port on this host's loopback says nothing of
// where it runs). ok is false otherwise.
func (r *runner) builderPush(bk *build.BuildKit) (dest name.Tag, ok bool) {
	st := r.st
	if st.Mode != ModeBuild || st.Build.Tool != "buildkit" || st.Build.BuilderPush == BuilderPushNever ||
		bk.ContentDir != "" || bk.Docker || len(r.pubs.side) > 0 ||
		st.Scan != nil || st.Attest.SBOM || st.Sign != nil {
		return name.Tag{}, false
	}
	t := st.Transport
	if t.CACert != "" || t.SkipVerify || len(t.Routes) > 0 || t.Proxy != (httpproxy.Config{}) {
		return name.Tag{}, false
	}
	dests := r.pubs.registries.pushed()
	if len(dests) == 0 {
		return name.Tag{}, false
	}
	d := dests[0]
	host := d.RegistryStr()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if registry.IsLoopback(host) {
		// BuildKit reaches a loopback registry over plain HTTP, as hoist
		// does.
		return d, st.Build.BuilderPush == BuilderPushLoopback && builderOnThisHost(bk.Addr)
	}
	// Elsewhere PLUGIN_INSECURE would let hoist use plain HTTP, and
	// BuildKit's registry.insecure would also skip TLS verification.
	return d, !st.Insecure
}

// builderOnThisHost reports a builder address on this host's network:
// a unix socket, or TCP to a loopback address.
func builderOnThisHost(addr string) bool {
	u, err := url.Parse(addr)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "unix":
		return true
	case "tcp":
		return registry.IsLoopback(u.Hostname())
	}
	return false
}

// buildPushedByBuilder builds with bk, which pushes the image to dest by
// digest (builderPush), and pushes it from there to every destination.
// done is false when the builder could not push there or hoist cannot
// read the image back from there: the caller then builds again, which
// takes the build from the builder's cache, and pushes from here, as it
// would have. With PLUGIN_NO_CACHE that second build would run every step
// again: the step fails instead, saying what to set.
func (r *runner) buildPushedByBuilder(ctx context.Context, bk *build.BuildKit, req build.Request, dest name.Tag) (done bool, err error) {
	repo := dest.Context().Name()
	req.Out = build.Outputs{Push: repo}
	fallBack := func(why string) (bool, error) {
		if req.NoCache {
			return true, fmt.Errorf("%w: %s; with PLUGIN_NO_CACHE hoist does not build again to push from here: set PLUGIN_BUILDER_PUSH=false", build.ErrBuild, why)
		}
		r.pr.Printf("%s; hoist takes the image from the builder (its cache has the build) and pushes it", why)
		return false, nil
	}
	start := time.Now()
	res, err := bk.Build(ctx, req)
	if err != nil {
		if ctx.Err() == nil && build.PushFailed(err, repo) {
			return fallBack(fmt.Sprintf("the builder could not push to %s (%v)", repo, err))
		}
		return true, err
	}
	ref := repo + "@" + res.Digest
	r.pr.Printf("built %s in %.1fs; the builder pushed it to %s by digest, untagged", res.Digest, time.Since(start).Seconds(), repo)
	// One puller for every read of the image the builder pushed.
	access := registry.Access{Transport: r.tr, Keychain: r.kc}
	if access.Puller, err = remote.NewPuller(access.Options(ctx)...); err != nil {
		return true, err
	}
	img, err := source.Open(ctx, r.sourceRequest(source.Request{Image: ref, Access: access}))
	if err != nil {
		if ctx.Err() != nil || !errors.Is(err, source.ErrNotFound) && !errors.Is(err, source.ErrUnavailable) {
			return true, err
		}
		return fallBack(fmt.Sprintf("hoist cannot read %s back (%s)", ref, strings.TrimSpace(err.Error())))
	}
	defer img.Close()
	if img.Digest.String() != res.Digest {
		return true, fmt.Errorf("%w: %s holds %s", build.ErrBuild, ref, img.Digest)
	}
	if err := r.spread(ctx, dest.Context(), img, access.Options(ctx)); err != nil {
		return true, err
	}
	return true, r.pushBuilt(ctx, res, img, map[string]string{})
}
