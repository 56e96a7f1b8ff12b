package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/outputs"
	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/source"
)

// runBuild builds with BuildKit, then pushes (default) or, with no-push,
// writes the tarball, loads the daemon and records the image in the
// workspace image store: one build serves every output.
func runBuild(ctx context.Context, s *settings.Settings, env Env) error {
	r, err := newRun(ctx, s, env, !s.NoPush, true)
	if errors.Is(err, errSkipBuild) {
		fmt.Fprintln(env.Stderr, strings.TrimPrefix(err.Error(), errSkipBuild.Error()+": "))
		return nil
	}
	if err != nil {
		return err
	}
	defer r.close()
	req, err := r.buildRequest()
	if err != nil {
		return err
	}
	if s.Load && r.daemon == nil {
		return fmt.Errorf("%w: PLUGIN_BUILDX_LOAD needs the Docker daemon, but PLUGIN_DAEMON_OFF is set", settings.ErrInvalid)
	}
	if s.Load && len(r.dests) == 0 {
		return fmt.Errorf("%w: PLUGIN_BUILDX_LOAD needs PLUGIN_REPO (and tags) to name the image in the daemon", settings.ErrInvalid)
	}

	tool, err := r.buildTool()
	if err != nil {
		return err
	}
	switch s.BuilderDriver {
	case "", "embedded", "remote":
	case "docker":
		if tool == "kaniko" {
			return fmt.Errorf("%w: PLUGIN_BUILDER_DRIVER=docker is a BuildKit builder, and the build tool is kaniko", settings.ErrInvalid)
		}
		return r.buildInDaemon(ctx, req)
	default:
		return fmt.Errorf("%w: %s=%q: want docker, or leave it empty", settings.ErrInvalid, s.Origin("builder-driver"), s.BuilderDriver)
	}

	// Where the image goes: an OCI layout directory, always (hoist pushes
	// from it, and a build-only run keeps it in the workspace image store),
	// plus the tarball and the daemon when asked.
	var storeDir string
	layoutParent := ""
	if s.NoPush && len(r.dests) > 0 {
		storeDir = r.path(s.ImageStore)
		if err := os.MkdirAll(storeDir, 0o755); err != nil {
			return fmt.Errorf("%w: image store %s: %w", settings.ErrInvalid, storeDir, err)
		}
		layoutParent = storeDir // same filesystem: blobs are linked, not copied
	}
	layoutDir, err := os.MkdirTemp(layoutParent, ".hoist-build-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(layoutDir)
	req.Out.LayoutDir = layoutDir

	var tar *files.Atomic
	tarPath := r.path(s.TarPath)
	if tarPath != "" {
		tar, err = createTar(tarPath)
		if err != nil {
			return err
		}
		defer tar.Abort()
		req.Out.Tar, req.Out.TarFormat = tar, s.TarFormat
	}
	var loadDone chan error
	var loadW *io.PipeWriter
	if s.Load {
		pr, pw := io.Pipe()
		loadW, loadDone = pw, make(chan error, 1)
		req.Out.Load = pw
		go func() {
			err := r.daemon.Load(ctx, pr)
			pr.CloseWithError(err)
			loadDone <- err
		}()
	}

	builder, closeBuilder, err := r.builder(ctx, tool)
	if err != nil {
		if loadW != nil {
			loadW.CloseWithError(err)
		}
		return err
	}
	defer closeBuilder()
	start := time.Now()
	res, err := builder.Build(ctx, req)
	if loadW != nil {
		loadW.CloseWithError(err)
		if lerr := <-loadDone; err == nil && lerr != nil {
			err = fmt.Errorf("%w: %w", build.ErrBuild, lerr)
		}
	}
	if err != nil {
		return err
	}
	r.pr.Printf("built %s in %.1fs", res.Digest, time.Since(start).Seconds())

	extra := map[string]string{}
	if tar != nil {
		if err := tar.Commit(); err != nil {
			return err
		}
		r.pr.Printf("wrote %s tarball %s", req.Out.TarFormat, tarPath)
		extra["IMAGE_TAR_PATH"] = s.TarPath
	}
	if s.Load {
		r.pr.Printf("loaded into %s as %s", r.daemon, strings.Join(req.Names, ", "))
	}
	if storeDir != "" {
		if _, err := source.StoreImage(ctx, storeDir, layoutDir, req.Names); err != nil {
			return err
		}
		r.pr.Printf("recorded in the workspace image store %s as %s", storeDir, strings.Join(req.Names, ", "))
	}
	return r.deliver(ctx, res, extra, source.Request{TarPath: layoutDir})
}

// deliver ends a build: it writes the metadata file, then pushes the
// image src names or, with no-push, reports the digest.
func (r *run) deliver(ctx context.Context, res *build.Result, extra map[string]string, src source.Request) error {
	s := r.s
	if s.MetadataFile != "" {
		b, _ := json.MarshalIndent(res.Metadata, "", "  ")
		if err := outputs.WriteFile(r.path(s.MetadataFile), append(b, '\n')); err != nil {
			return err
		}
	}
	if s.NoPush {
		extra["digest"] = res.Digest
		if err := writeDigestAndEnv(s, res.Digest, extra); err != nil {
			return err
		}
		fmt.Fprintln(r.stdout, res.Digest)
		return nil
	}
	img, err := source.Open(ctx, r.sourceRequest(src))
	if err != nil {
		return err
	}
	defer img.Close()
	return r.push(ctx, img, extra)
}

// buildTool picks the build tool and says why, in one line.
func (r *run) buildTool() (string, error) {
	s := r.s
	tool, why := strings.ToLower(strings.TrimSpace(s.BuildTool)), ""
	k8s := s.KubernetesHost != "" || strings.EqualFold(s.Infrastructure, "kubernetes") || strings.EqualFold(s.Infrastructure, "k8s")
	switch {
	case tool == "buildkit" || tool == "kaniko":
		why = s.Origin("build-tool") + " says so"
	case tool != "":
		return "", fmt.Errorf("%w: %s=%q: want buildkit or kaniko", settings.ErrInvalid, s.Origin("build-tool"), s.BuildTool)
	case k8s && s.BuildxOnK8:
		tool, why = "buildkit", "running in Kubernetes, and CI_USE_BUILDX_ON_K8 is true"
	case k8s:
		tool, why = "kaniko", "running in Kubernetes ("+k8sWhy(s)+"); CI_USE_BUILDX_ON_K8=true picks BuildKit"
	default:
		tool, why = "buildkit", "not in Kubernetes"
	}
	r.pr.Printf("build tool: %s (%s)", tool, why)
	return tool, nil
}

func k8sWhy(s *settings.Settings) string {
	if s.KubernetesHost != "" {
		return "KUBERNETES_SERVICE_HOST is set"
	}
	return s.Origin("infrastructure") + "=" + s.Infrastructure
}

// builder returns the builder of the chosen tool and how to release it.
func (r *run) builder(ctx context.Context, tool string) (build.Builder, func(), error) {
	s := r.s
	if tool == "kaniko" {
		logins := map[string][2]string{}
		for _, l := range [][3]string{{s.BaseRegistry, s.BaseUsername, s.BasePassword}, {s.Registry, s.Username, s.Password}} {
			if l[1] == "" {
				continue
			}
			host := l[0]
			if host == "" && len(r.dests) > 0 {
				host = r.dests[0].RegistryStr()
			}
			if h, err := registry.NormalizeHost(host); err == nil {
				logins[h] = [2]string{l[1], l[2]}
			}
		}
		cfg, err := build.DockerConfig(logins)
		if err != nil {
			return nil, nil, err
		}
		exe := r.path(s.KanikoExecutor)
		return &build.Kaniko{
			Executor: exe, TempDir: os.TempDir(), DockerConfig: cfg,
			Insecure: s.Insecure, SkipTLSVerify: s.SkipTLSVerify, Mirrors: s.RegistryMirrors, Extra: s.KanikoArgs(),
			Progress: r.buildProgressOut(), Logf: r.pr.Printf,
		}, func() {}, nil
	}
	eng, err := r.openEngine(ctx)
	if err != nil {
		return nil, nil, err
	}
	bk := &build.BuildKit{Client: eng.Client, Keychain: r.kc, Progress: r.buildProgressOut(), ProgressMode: r.buildProgressMode(), ContentDir: eng.ContentDir(), Logf: r.pr.Printf}
	return bk, func() { eng.Close() }, nil
}

// buildInDaemon builds with the Docker daemon's built-in BuildKit: the
// image lands in the daemon under every repo:tag (what --load gives), a
// tarball is saved from there, and a push takes the image from the daemon.
// The workspace image store is not written: the daemon is the hand-off.
func (r *run) buildInDaemon(ctx context.Context, req build.Request) error {
	s := r.s
	if r.daemon == nil {
		return fmt.Errorf("%w: PLUGIN_BUILDER_DRIVER=docker needs the Docker daemon, but PLUGIN_DAEMON_OFF is set", settings.ErrInvalid)
	}
	if s.TarPath != "" && s.TarFormat != "docker" {
		return fmt.Errorf("%w: the Docker daemon saves docker tarballs only; PLUGIN_BUILDX_OUTPUT_FORMAT=%s needs the embedded engine or a BuildKit at PLUGIN_BUILDER_REMOTE_CONN", settings.ErrInvalid, s.TarFormat)
	}
	if len(req.Platforms) > 1 {
		return fmt.Errorf("%w: the Docker daemon's builder keeps one platform; build several with the embedded engine", settings.ErrInvalid)
	}
	eng, err := engine.OpenDocker(ctx, r.daemon, s.BuilderTimeout)
	if err != nil {
		return err
	}
	defer eng.Close()
	r.pr.Printf("engine: the BuildKit of %s", r.daemon)
	bk := &build.BuildKit{Client: eng.Client, Keychain: r.kc, Progress: r.buildProgressOut(), ProgressMode: r.buildProgressMode(), Docker: true, Logf: r.pr.Printf}
	start := time.Now()
	res, err := bk.Build(ctx, req)
	if err != nil {
		return err
	}
	r.pr.Printf("built %s (image id) into %s as %s in %.1fs", res.Digest, r.daemon, strings.Join(req.Names, ", "), time.Since(start).Seconds())
	extra := map[string]string{}
	if tarPath := r.path(s.TarPath); tarPath != "" {
		tar, err := createTar(tarPath)
		if err != nil {
			return err
		}
		defer tar.Abort()
		if err := r.daemon.Save(ctx, req.Names, tar); err != nil {
			return err
		}
		if err := tar.Commit(); err != nil {
			return err
		}
		r.pr.Printf("saved docker tarball %s", tarPath)
		extra["IMAGE_TAR_PATH"] = s.TarPath
	}
	return r.deliver(ctx, res, extra, source.Request{Image: req.Names[0], Daemon: r.daemon})
}

// buildRequest turns the settings into a build request; every malformed
// value is reported at once.
func (r *run) buildRequest() (build.Request, error) {
	s := r.s
	var errs []error
	req := build.Request{
		ContextDir:  r.path(s.Context),
		Dockerfile:  r.path(s.Dockerfile),
		Target:      s.Target,
		Platforms:   s.Platforms,
		AddHosts:    s.AddHosts,
		NoCache:     s.NoCache,
		Pull:        s.Pull,
		Network:     s.Network,
		Compression: s.Compression,
		Level:       s.CompressionLevel,
	}
	if s.Compression == "" {
		if s.NoPush {
			// A hand-off: the fastest export, uncompressed layers as
			// docker save writes them; the push-only step gzips them once.
			req.Compression, req.Level = "uncompressed", 0
		} else {
			// Pushed as built: gzip at level 1, measured to export about
			// three times faster than BuildKit's default level.
			req.Compression = "gzip"
			if req.Level == 0 {
				req.Level = 1
			}
		}
	}
	if s.Dockerfile == "" {
		req.Dockerfile = filepath.Join(req.ContextDir, "Dockerfile")
	}
	for _, d := range r.dests {
		req.Names = append(req.Names, d.Name())
	}
	switch s.Compression {
	case "", "gzip", "zstd", "uncompressed":
	default:
		errs = append(errs, fmt.Errorf("%s=%q: want gzip, zstd or uncompressed", s.Origin("compression"), s.Compression))
	}
	if s.TarFormat != "docker" && s.TarFormat != "oci" {
		errs = append(errs, fmt.Errorf("%s=%q: want docker or oci", s.Origin("tar-format"), s.TarFormat))
	}

	args := s.BuildArgs
	origin := s.Origin("build-args")
	if s.MultiBuildArgs {
		args, origin = s.BuildArgsNew, s.Origin("build-args-new")
	}
	given := map[string]bool{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		k = strings.TrimSpace(k)
		if k == "" || strings.ContainsAny(k, " \t") {
			errs = append(errs, fmt.Errorf("%s: malformed build argument %q: want KEY=value", origin, a))
			continue
		}
		if !ok {
			v, ok = r.env.Lookup(k)
			if !ok {
				continue // like docker build --build-arg KEY with KEY unset
			}
		}
		req.BuildArgs = append(req.BuildArgs, build.KV{Key: k, Value: v})
		given[k] = true
	}
	for _, k := range s.BuildArgsFromEnv {
		if v, ok := r.env.Lookup(k); ok && !given[k] {
			req.BuildArgs = append(req.BuildArgs, build.KV{Key: k, Value: v})
			given[k] = true
		}
	}
	// The proxy variables, as the peers pass them (BuildKit keeps them out
	// of the image's history).
	for _, k := range []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		if given[k] {
			continue
		}
		for _, e := range []string{k, "HARNESS_" + k} {
			if v, ok := r.env.Lookup(e); ok && v != "" {
				req.BuildArgs = append(req.BuildArgs, build.KV{Key: k, Value: v})
				given[k] = true
				break
			}
		}
	}

	for _, l := range s.Labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.TrimSpace(k) == "" {
			errs = append(errs, fmt.Errorf("%s: malformed label %q: want key=value", s.Origin("labels"), l))
			continue
		}
		req.Labels = append(req.Labels, build.KV{Key: strings.TrimSpace(k), Value: v})
	}
	if s.AutoLabel {
		// No "created" from the clock, so that a rebuild of the same
		// commit gives the same digest; Drone's build time when it is set.
		if v, ok := r.env.Lookup("DRONE_BUILD_CREATED"); ok && v != "" {
			if n, err := parseUnix(v); err == nil {
				req.Labels = append(req.Labels, build.KV{Key: "org.opencontainers.image.created", Value: n.UTC().Format(time.RFC3339)})
			}
		}
		for _, kv := range [][2]string{{"org.opencontainers.image.revision", s.CommitSHA}, {"org.opencontainers.image.source", s.RemoteURL}, {"org.opencontainers.image.url", s.RepoLink}} {
			if kv[1] != "" {
				req.Labels = append(req.Labels, build.KV{Key: kv[0], Value: kv[1]})
			}
		}
	}

	req.Secrets = map[string][]byte{}
	for _, sec := range s.SecretsFromEnv {
		id, envName, ok := strings.Cut(sec, "=")
		if !ok || id == "" || envName == "" {
			errs = append(errs, fmt.Errorf("%s: malformed secret %q: want id=ENV_NAME", s.Origin("secrets-from-env"), sec))
			continue
		}
		v, ok := r.env.Lookup(envName)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: secret %q: the environment variable %s is not set", s.Origin("secrets-from-env"), id, envName))
			continue
		}
		req.Secrets[id] = []byte(v)
	}
	for _, sec := range s.SecretsFromFile {
		id, p, ok := strings.Cut(sec, "=")
		if !ok || id == "" || p == "" {
			errs = append(errs, fmt.Errorf("%s: malformed secret %q: want id=path", s.Origin("secrets-from-file"), sec))
			continue
		}
		b, err := os.ReadFile(r.path(p))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: secret %q: %w", s.Origin("secrets-from-file"), id, err))
			continue
		}
		req.Secrets[id] = b
	}

	var err error
	if req.CacheFrom, err = parseCache(s.CacheFrom, "cache-from", s); err != nil {
		errs = append(errs, err)
	}
	if req.CacheTo, err = parseCache(s.CacheTo, "cache-to", s); err != nil {
		errs = append(errs, err)
	}
	if s.EnableCache && len(req.CacheFrom) == 0 && len(req.CacheTo) == 0 {
		ref := s.CacheRepo
		if ref == "" && len(r.dests) > 0 {
			ref = r.dests[0].Context().Name() + ":buildcache"
		}
		if ref == "" {
			errs = append(errs, fmt.Errorf("PLUGIN_ENABLE_CACHE needs PLUGIN_CACHE_REPO or a destination to derive the cache reference from"))
		} else {
			req.CacheFrom = []build.CacheEntry{{Type: "registry", Attrs: map[string]string{"ref": ref}}}
			req.CacheTo = []build.CacheEntry{{Type: "registry", Attrs: map[string]string{"ref": ref, "mode": "max"}}}
			r.pr.Printf("layer cache: %s", ref)
		}
	}
	if len(errs) > 0 {
		return req, fmt.Errorf("%w: %w", settings.ErrInvalid, errors.Join(errs...))
	}
	return req, nil
}

func parseUnix(v string) (time.Time, error) {
	var n int64
	_, err := fmt.Sscan(v, &n)
	return time.Unix(n, 0), err
}

// parseCache reads buildx-style cache entries: type=registry,ref=REF,...
// (a bare reference means a registry cache).
func parseCache(entries []string, flag string, s *settings.Settings) ([]build.CacheEntry, error) {
	var out []build.CacheEntry
	for _, e := range entries {
		c := build.CacheEntry{Attrs: map[string]string{}}
		if !strings.Contains(e, "=") {
			c.Type, c.Attrs["ref"] = "registry", e
			out = append(out, c)
			continue
		}
		for _, f := range strings.Split(e, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("%s: malformed cache entry %q: want type=registry,ref=REF[,mode=max] or type=local,src|dest=DIR", s.Origin(flag), e)
			}
			if k == "type" {
				c.Type = v
			} else {
				c.Attrs[k] = v
			}
		}
		if c.Type == "" {
			c.Type = "registry"
		}
		out = append(out, c)
	}
	return out, nil
}

// openEngine connects to the builder the settings name, or starts the
// embedded one, configured for the registries of this run.
func (r *run) openEngine(ctx context.Context) (*engine.Engine, error) {
	s := r.s
	dir := s.EngineDir
	if dir == "" {
		dir = engine.DefaultDir(r.env.Lookup)
	}
	o := engine.Options{
		Addr: s.BuilderAddr, TLSCA: r.path(s.BuilderTLSCA), TLSCert: r.path(s.BuilderCert), TLSKey: r.path(s.BuilderKey),
		Dir: r.path(dir), Binary: s.Buildkitd, Mirrors: s.RegistryMirrors, Keep: s.KeepEngine,
		Wait: 60 * time.Second, Logf: r.pr.Printf,
	}
	if s.BuilderAddr != "" {
		o.Wait = s.BuilderTimeout
	}
	var hosts []string
	for _, d := range r.dests {
		hosts = append(hosts, d.RegistryStr())
	}
	if s.BaseRegistry != "" {
		if h, err := registry.NormalizeHost(s.BaseRegistry); err == nil {
			hosts = append(hosts, h)
		}
	}
	if s.Insecure || s.SkipTLSVerify || s.RegistryCertificate != "" {
		ca := ""
		if s.RegistryCertificate != "" {
			ca = r.path(s.RegistryCertificate)
			if strings.Contains(s.RegistryCertificate, "-----BEGIN") {
				if err := os.MkdirAll(o.Dir, 0o755); err != nil {
					return nil, err
				}
				ca = filepath.Join(o.Dir, "registry-ca.pem")
				if err := os.WriteFile(ca, []byte(s.RegistryCertificate), 0o644); err != nil {
					return nil, err
				}
			}
		}
		for _, h := range hosts {
			reg := engine.Registry{Host: h, HTTP: s.Insecure, Insecure: s.SkipTLSVerify || s.Insecure}
			if ca != "" {
				reg.CAFiles = []string{ca}
			}
			o.Registries = append(o.Registries, reg)
		}
	}
	return engine.Open(ctx, o)
}

// buildProgressOut is where BuildKit's progress goes: the terminal itself
// in TTY mode (its display needs one), else the masked stderr.
func (r *run) buildProgressOut() io.Writer {
	if r.pr.Mode() == progress.TTY && r.tty {
		return r.env.Stderr
	}
	if r.pr.Mode() == progress.Quiet {
		return nil
	}
	return r.stderr
}

func (r *run) buildProgressMode() string {
	switch r.pr.Mode() {
	case progress.TTY:
		if r.tty {
			return "tty"
		}
		return "plain"
	case progress.Quiet:
		return "quiet"
	}
	return "plain"
}

// createTar starts the atomic write of the tarball at path; its directory
// is made first, with the peers' message when that fails.
func createTar(path string) (*files.Atomic, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("%w: failed to create directory for tar path %s: %w", settings.ErrInvalid, filepath.Dir(path), err)
	}
	tar, err := files.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%w: tar path: %w", settings.ErrInvalid, err)
	}
	return tar, nil
}
