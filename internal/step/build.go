package step

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/source"
)

// Build is what a build step builds and where its image goes besides the
// destinations.
type Build struct {
	// Request is the build; its outputs are set by the step.
	Request build.Request
	// Tool is buildkit or kaniko.
	Tool string
	// InDaemon builds with the Docker daemon's built-in BuildKit
	// (PLUGIN_BUILDER_DRIVER=docker).
	InDaemon bool
	// Engine is the BuildKit to use: the embedded engine or a remote one.
	Engine engine.Options
	// EngineCA is a registry CA as PEM content, written into the engine's
	// directory and given to every registry of Engine.Registries.
	EngineCA       string
	BuilderTimeout time.Duration
	// Kaniko is the Kaniko builder, when Tool is kaniko; BaseLogin is the
	// explicit base-image login (PLUGIN_BASE_IMAGE_*), the only login the
	// executor gets for a registry the Dockerfile's FROM names.
	Kaniko    build.Kaniko
	BaseLogin registry.Login
	// TarPath and TarFormat (docker or oci) write a tarball; Load loads
	// the image into the Docker daemon; Store is the workspace image store
	// a build-only step records its image in.
	TarPath, TarFormat string
	Load               bool
	Store              string
	// FSType (local or tar) and FSDest export the image's filesystem
	// (PLUGIN_OUTPUT=type=local|tar).
	FSType, FSDest string
	// Notes are printed when the build starts (the layer cache, the tool
	// and why).
	Notes []string
	// BuilderPush says when a remote BuildKit pushes the image itself
	// (builderPush); the zero value is BuilderPushAuto.
	BuilderPush BuilderPush
}

// BuilderPush says when a remote BuildKit pushes the image it built to
// the first destination itself (PLUGIN_BUILDER_PUSH).
type BuilderPush int

const (
	// BuilderPushAuto: where nothing needs the image's bytes here and the
	// builder reaches a registry that is not on loopback as hoist would.
	BuilderPushAuto BuilderPush = iota
	// BuilderPushLoopback: the same, and also to a loopback registry (the
	// builder shares this host's network: the user says so).
	BuilderPushLoopback
	// BuilderPushNever: hoist takes the image from the builder and
	// pushes it.
	BuilderPushNever
)

// build builds, then pushes or, in ModeBuildOnly, writes the outputs:
// the publishers of the build (the daemon, the tarball, the workspace
// image store) are written by the one build, then the registries.
func (r *runner) build(ctx context.Context) error {
	b := r.st.Build
	for _, n := range b.Notes {
		r.pr.Printf("%s", n)
	}
	req := b.Request
	req.TempDir = r.st.TempDir
	// The provenance names the base images the builder resolved.
	req.BaseImages = req.BaseImages || r.st.Attest.Provenance != nil
	if b.InDaemon {
		return r.buildInDaemon(ctx, req)
	}

	// Where the image goes: an OCI layout directory, always (hoist pushes
	// from it, and a build-only step keeps it in the workspace image
	// store), plus the streaming publishers (the tarball, the daemon).
	layoutParent := r.st.TempDir
	ws := r.st.Workspace
	if b.Store != "" {
		if err := ws.MkdirAll(b.Store); err != nil {
			return fmt.Errorf("%w: image store %s: %w", ErrInvalid, b.Store, err)
		}
		layoutParent = b.Store // same filesystem: blobs are linked, not copied
	}
	layoutDir, err := ws.MkdirTemp(layoutParent, build.LayoutPrefix+"*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(layoutDir)
	req.Out.LayoutDir, req.Workspace = layoutDir, ws
	if err := r.pubs.stream(ctx, &req.Out); err != nil {
		return err
	}
	builder, closeBuilder, err := r.builder(ctx)
	if err != nil {
		return err
	}
	defer closeBuilder()
	if bk, ok := builder.(*build.BuildKit); ok {
		if dest, ok := r.builderPush(bk); ok {
			if done, err := r.buildPushedByBuilder(ctx, bk, req, dest); done || err != nil {
				return err
			}
		}
	}
	start := time.Now()
	res, err := builder.Build(ctx, req)
	if err != nil {
		return err
	}
	r.pr.Printf("built %s in %.1fs", res.Digest, time.Since(start).Seconds())
	extra, err := r.pubs.publishSide(ctx, &Image{Digest: res.Digest, Names: req.Names, Layout: layoutDir}, r.pr.Printf)
	if err != nil {
		return err
	}
	return r.deliver(ctx, res, extra, source.Request{TarPath: layoutDir})
}

// deliver ends a build: it writes the metadata file, then pushes the
// image src names or, in ModeBuildOnly, writes the outputs.
func (r *runner) deliver(ctx context.Context, res *build.Result, extra map[string]string, src source.Request) error {
	if r.st.Mode == ModeBuildOnly {
		r.built = res
		if err := r.writeMetadata(res); err != nil {
			return err
		}
		r.res.Digest = res.Digest
		extra["digest"] = res.Digest
		if err := r.writeDigestAndEnv(res.Digest, extra); err != nil {
			return err
		}
		// The card of a build: the names it was built under, its
		// digest, its size when the build wrote a layout.
		var size int64
		if src.TarPath != "" {
			size = layoutSize(src.TarPath)
		}
		if err := r.writeCard(res.Digest, r.st.Build.Request.Names, false, size); err != nil {
			return fmt.Errorf("card %s: %w", r.st.Outputs.CardPath, err)
		}
		return nil
	}
	img, err := source.Open(ctx, r.sourceRequest(src))
	if err != nil {
		return err
	}
	defer img.Close()
	return r.pushBuilt(ctx, res, img, extra)
}

// pushBuilt writes the metadata file of the build res, then pushes img,
// the image it built.
func (r *runner) pushBuilt(ctx context.Context, res *build.Result, img *source.Image, extra map[string]string) error {
	r.built = res
	if err := r.writeMetadata(res); err != nil {
		return err
	}
	return r.push(ctx, img, extra)
}

// builder returns the builder of the step's tool and how to release it.
func (r *runner) builder(ctx context.Context) (build.Builder, func(), error) {
	b := r.st.Build
	if b.Tool == "kaniko" {
		k := b.Kaniko
		k.Progress, _ = r.buildProgress()
		k.Logf = r.pr.Printf
		var err error
		if k.DockerConfig, err = r.kanikoConfig(ctx); err != nil {
			return nil, nil, err
		}
		if err := r.warmDestinations(); err != nil {
			return nil, nil, err
		}
		return &k, func() {}, nil
	}
	eng, closeEngine, err := r.openEngine(ctx)
	if err != nil {
		return nil, nil, err
	}
	return r.buildKit(eng), closeEngine, nil
}

// openEngine is the step's BuildKit and how to release it: the engine the
// caller gave (Runtime.Engine), when the step asks for no other, checked for
// what the step needs of it; else the step's own connection to its
// BuildKit, or the embedded engine it starts configured for the step's
// registries.
func (r *runner) openEngine(ctx context.Context) (*engine.Engine, func(), error) {
	b := r.st.Build
	o := b.Engine
	o.Logf = r.pr.Printf
	if eng := r.rt.Engine; eng != nil && o.Dir == "" && o.Addr == "" {
		// The step names no engine (a hand-built one): the caller's,
		// checked for what the step asks of it (its mirrors, its base
		// registry), as an engine the step names is below.
		if b.EngineCA != "" {
			return nil, nil, fmt.Errorf("%w: a registry CA given as content is written into the engine's directory: name the engine (Build.Engine.Dir) or give the CA as a file in Build.Engine.Registries", ErrInvalid)
		}
		m := eng.Missing(o)
		if err := m.Err(eng.Dir()); err != nil {
			return nil, nil, err
		}
		if n := m.Note(eng.Dir()); n != "" {
			r.pr.Printf("%s", n)
		}
		return eng, func() {}, nil
	}
	if b.EngineCA != "" {
		if err := r.st.Workspace.MkdirAll(o.Dir); err != nil {
			return nil, nil, err
		}
		ca := engine.CAFile(o.Dir, b.EngineCA)
		if err := r.st.Workspace.WriteAtomic(ca, []byte(b.EngineCA)); err != nil {
			return nil, nil, err
		}
		regs := make([]engine.Registry, len(o.Registries))
		for i, reg := range o.Registries {
			reg.CAFiles = append(slices.Clone(reg.CAFiles), ca)
			regs[i] = reg
		}
		o.Registries = regs
	}
	if eng := r.rt.Engine; eng != nil && eng.Serves(o) {
		m := eng.Missing(o)
		if err := m.Err(o.Dir); err != nil {
			return nil, nil, err
		}
		if n := m.Note(o.Dir); n != "" {
			r.pr.Printf("%s", n)
		}
		return eng, func() {}, nil
	}
	eng, err := engine.Open(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	return eng, func() { eng.Close() }, nil
}

// buildInDaemon builds with the Docker daemon's built-in BuildKit: the
// image lands in the daemon under every repo:tag (what --load gives), a
// tarball is saved from there, and a push takes the image from the daemon.
// The workspace image store is not written: the daemon is the hand-off.
func (r *runner) buildInDaemon(ctx context.Context, req build.Request) error {
	b := r.st.Build
	if r.daemon == nil {
		return fmt.Errorf("%w: PLUGIN_BUILDER_DRIVER=docker needs the Docker daemon, and this step may not use one", ErrInvalid)
	}
	eng, err := engine.OpenDocker(ctx, r.daemon, b.BuilderTimeout)
	if err != nil {
		return err
	}
	defer eng.Close()
	r.pr.Printf("engine: the BuildKit of %s", r.daemon)
	start := time.Now()
	res, err := r.buildKit(eng).Build(ctx, req)
	if err != nil {
		return err
	}
	r.pr.Printf("built %s (image id) into %s as %s in %.1fs", res.Digest, r.daemon, strings.Join(req.Names, ", "), time.Since(start).Seconds())
	extra, err := r.pubs.publishSide(ctx, &Image{Digest: res.Digest, Names: req.Names, Daemon: r.daemon}, r.pr.Printf)
	if err != nil {
		return err
	}
	return r.deliver(ctx, res, extra, source.Request{Image: req.Names[0], Daemon: r.daemon})
}

// kanikoConfig is the docker config Kaniko runs with. The Dockerfile's
// RUN steps run beside the executor, as root, and can read this file; and
// the Dockerfile is the repository's (anyone who opens a pull request):
// so what the Dockerfile names does not choose which of the step's logins
// go in. It holds the explicit base-image login (PLUGIN_BASE_IMAGE_*) for
// its registry, and the logins of the registries the settings name for
// the executor: its mirrors and its layer cache (from the step's
// keychain). A FROM on any other registry (a destination, one
// PLUGIN_CONFIG or a cloud login has credentials for) is pulled without
// credentials, and the log says so. Never the destinations' logins for
// themselves: the executor pushes nothing, hoist does, with credentials
// the build never sees.
func (r *runner) kanikoConfig(ctx context.Context) ([]byte, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	req := r.st.Build.Request
	var named []string // the registries the settings name for the executor
	add := func(h string) {
		if h != "" && !slices.Contains(named, h) {
			named = append(named, h)
		}
	}
	mirrors := slices.Clone(r.st.Build.Kaniko.Mirrors)
	for _, reg := range r.st.Build.Kaniko.Registries {
		mirrors = append(mirrors, reg.Mirrors...)
	}
	for _, m := range mirrors {
		m = strings.TrimPrefix(strings.TrimPrefix(m, "https://"), "http://")
		if reg, err := name.NewRegistry(strings.SplitN(m, "/", 2)[0]); err == nil {
			add(reg.RegistryStr())
		}
	}
	for _, c := range append(append([]build.CacheEntry(nil), req.CacheFrom...), req.CacheTo...) {
		if ref, err := name.ParseReference(c.Attrs["ref"]); err == nil {
			add(ref.Context().RegistryStr())
		}
	}
	auths := map[string]authn.AuthConfig{}
	for _, h := range named {
		reg, err := name.NewRegistry(h)
		if err != nil {
			continue
		}
		a, err := authn.Resolve(ctx, r.kc, reg)
		var ac *authn.AuthConfig
		if err == nil {
			ac, err = a.Authorization()
		}
		if err != nil {
			// A pull that needs them fails in Kaniko, naming the image;
			// a registry only pushed to is pushed by hoist, which logs in
			// again.
			r.pr.Printf("warning: credentials for %s: %v; Kaniko goes on without them", h, err)
			continue
		}
		if *ac != (authn.AuthConfig{}) {
			auths[h] = *ac
		}
	}
	baseHost := ""
	if bl := r.st.Build.BaseLogin; bl.Username != "" {
		if h, err := registry.NormalizeHost(bl.Registry); err == nil {
			baseHost = h
			auths[h] = authn.AuthConfig{Username: bl.Username, Password: bl.Password}
		}
	}
	if df := req.Dockerfile; df != "" {
		base, err := build.BaseHosts(df, req.BuildArgs)
		if err != nil {
			r.pr.Printf("warning: the base images of %s: %v; Kaniko pulls them without credentials", df, err)
		}
		var anonymous []string
		for _, h := range base {
			if h == baseHost || slices.Contains(named, h) {
				continue
			}
			for _, d := range r.st.Destinations {
				if d.RegistryStr() == h {
					h += " (a destination: its login is hoist's, for the push)"
					break
				}
			}
			anonymous = append(anonymous, h)
		}
		if len(anonymous) > 0 {
			r.pr.Printf("Kaniko pulls the base images on %s without credentials: a Dockerfile's FROM does not choose which of the step's logins the executor gets, where a RUN can read them; "+
				"for a private base image give its login in PLUGIN_BASE_IMAGE_REGISTRY, PLUGIN_BASE_IMAGE_USERNAME and PLUGIN_BASE_IMAGE_PASSWORD (a read-only one)", strings.Join(anonymous, ", "))
		}
	}
	r.maskLearned()
	return build.DockerConfig(auths)
}

// warmDestinations has the docker config's credentials of every
// destination now, before a Kaniko build: its RUN steps run in this
// container and may replace any program in it, so after the build hoist
// runs no credential helper (the push takes what was had here).
func (r *runner) warmDestinations() error {
	if r.st.Mode == ModeBuildOnly {
		return nil
	}
	var res []authn.Resource
	for _, d := range r.st.Destinations {
		if r.loginFailed[d.RegistryStr()] == nil {
			res = append(res, d.Context(), d.Context().Registry)
		}
	}
	err := r.regKC.Warm(res...)
	r.maskLearned()
	return err
}
