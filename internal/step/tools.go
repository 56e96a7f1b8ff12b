package step

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/settings"
)

// buildOf is the build of a build step: the request, the tool, the engine
// or Kaniko, and the build-only outputs.
func buildOf(s *settings.Settings, env Environ, dests []name.Tag, known *mask.Set, path func(string) string) (*Build, error) {
	b := &Build{TarPath: path(s.TarPath), TarFormat: s.TarFormat, Load: s.Load, BuilderTimeout: s.BuilderTimeout}
	var err error
	// Build secrets are secrets from the moment they are read: they
	// join the step's mask there.
	b.Request, b.Notes, err = buildRequest(s, env, dests, path, known)
	if err != nil {
		return nil, err
	}
	if s.Load && len(dests) == 0 {
		load := s.Origin("load")
		if load == "PLUGIN_OUTPUT" {
			load += "=" + s.Output + " (a load into the daemon)"
		}
		return nil, fmt.Errorf("%w: %s needs PLUGIN_REPO (and tags) to name the image in the daemon", settings.ErrInvalid, load)
	}
	tool, why, err := buildTool(s)
	if err != nil {
		return nil, err
	}
	if b.FSType, b.FSDest, err = fsExportOf(s, path); err != nil {
		return nil, err
	}
	b.Tool = tool
	b.Notes = append(b.Notes, fmt.Sprintf("build tool: %s (%s)", tool, why))
	switch s.BuilderPush {
	case "", "auto":
		b.BuilderPush = BuilderPushAuto
	case "true":
		b.BuilderPush = BuilderPushLoopback
	case "false":
		b.BuilderPush = BuilderPushNever
	default:
		return nil, fmt.Errorf("%w: %s=%q: want auto, true or false", settings.ErrInvalid, s.Origin("builder-push"), s.BuilderPush)
	}
	switch s.BuilderDriver {
	case "", "embedded", "remote":
	case "docker":
		if b.FSType != "" {
			return nil, fmt.Errorf("%w: %s=%q: the image's filesystem is written by the embedded engine or a BuildKit at PLUGIN_BUILDER_REMOTE_CONN, and PLUGIN_BUILDER_DRIVER=docker builds into the daemon only", settings.ErrInvalid, s.Origin("build-output"), s.Output)
		}
		if s.BuildkitConfig != "" {
			return nil, fmt.Errorf("%w: %s: a buildkitd.toml configures the embedded engine, and PLUGIN_BUILDER_DRIVER=docker builds with the Docker daemon's BuildKit, which the daemon's owner configures; drop one", settings.ErrInvalid, s.Origin("buildkit-config"))
		}
		if tool == "kaniko" {
			return nil, fmt.Errorf("%w: PLUGIN_BUILDER_DRIVER=docker is a BuildKit builder, and the build tool is kaniko", settings.ErrInvalid)
		}
		if s.TarPath != "" && s.TarFormat != "docker" {
			return nil, fmt.Errorf("%w: the Docker daemon saves docker tarballs only; PLUGIN_BUILDX_OUTPUT_FORMAT=%s needs the embedded engine or a BuildKit at PLUGIN_BUILDER_REMOTE_CONN", settings.ErrInvalid, s.TarFormat)
		}
		if len(b.Request.Platforms) > 1 {
			return nil, fmt.Errorf("%w: the Docker daemon's builder keeps one platform; build several with the embedded engine", settings.ErrInvalid)
		}
		b.InDaemon = true
		return b, nil
	default:
		return nil, fmt.Errorf("%w: %s=%q: want docker, or leave it empty", settings.ErrInvalid, s.Origin("builder-driver"), s.BuilderDriver)
	}
	if s.NoPush && len(dests) > 0 {
		b.Store = path(s.ImageStore)
	}
	if tool == "kaniko" {
		if err := build.KanikoCache(b.Request.CacheFrom, b.Request.CacheTo); err != nil {
			return nil, fmt.Errorf("%w: %w", settings.ErrInvalid, err)
		}
		if err := buildKitOnly(s, why); err != nil {
			return nil, err
		}
		b.Kaniko = kanikoOf(s, env, path)
		if b.Kaniko.Registries, b.Kaniko.Mirrors, err = kanikoRegistries(s, path, b.Kaniko.Mirrors); err != nil {
			return nil, err
		}
		if s.BaseUsername != "" || s.BasePassword != "" {
			b.BaseLogin = registry.Login{Registry: s.BaseRegistry, Username: s.BaseUsername, Password: s.BasePassword, Setting: "PLUGIN_BASE_IMAGE_REGISTRY/USERNAME/PASSWORD"}
		}
		return b, nil
	}
	b.Engine, b.EngineCA, err = engineOf(s, env, dests, path)
	return b, err
}

// kanikoSecretFlags refuses a secret given as a flag to a Kaniko build:
// the Dockerfile's RUN steps run beside hoist and read its command line
// (/proc/PID/cmdline is readable by every process of the container, even
// though hoist makes itself non-dumpable), while its environment is
// closed to them. Secrets come through the environment, the plugin way.
func kanikoSecretFlags(s *settings.Settings) error {
	if s.PushOnly {
		return nil
	}
	if tool, _, err := buildTool(s); err != nil || tool != "kaniko" {
		return nil
	}
	var given, envs []string
	for _, f := range settings.Fields() {
		if f.Secret && strings.HasPrefix(s.Origin(f.Flag), "--") {
			given = append(given, "--"+f.Flag)
			if len(f.Env) > 0 {
				envs = append(envs, f.Env[0])
			}
		}
	}
	if len(given) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: this step builds with Kaniko, whose Dockerfile RUN steps run beside hoist, and a Dockerfile's RUN can read hoist's command line (/proc/PID/cmdline): "+
		"give the secret in the step's environment instead (%s), as a plugin step does; hoist's environment is closed to them",
		settings.ErrInvalid, strings.Join(given, ", "), strings.Join(envs, ", "))
}

// kanikoTrust refuses what a Kaniko build step cannot be trusted with.
// Kaniko runs the Dockerfile's RUN steps as root in the step's own
// container, beside hoist: they can read what that container holds and
// replace any file in it, for the rest of the step. So hoist signs,
// attests and scans nothing in the container that built with Kaniko: the
// signing key or identity token, Trivy and its database and the CA
// certificates a verdict would rest on would all be the build's to read
// or replace. (PLUGIN_REQUIRE_SCAN reads the record of a pre-built image,
// so it is a push-only setting, refused on every build.)
func kanikoTrust(s *settings.Settings) error {
	if s.PushOnly {
		return nil
	}
	tool, why, err := buildTool(s)
	if err != nil || tool != "kaniko" {
		return nil // a bad tool is reported with the build
	}
	var asked []string
	// A key alone signs what a build pushes (signAsked), and nothing else.
	if on, origin := signAsked(s); on && (s.IsSet("sign") || !s.NoPush) {
		asked = append(asked, origin)
	}
	for _, f := range []struct {
		flag string
		on   bool
	}{{"sbom", s.SBOM}, {"provenance", s.Provenance}, {"scan", s.Scan}} {
		if f.on {
			asked = append(asked, s.Origin(f.flag))
		}
	}
	if len(asked) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: this step builds with Kaniko (%s), which runs the Dockerfile's RUN steps as root in this very container, beside hoist: "+
		"they could read the signing key or identity token and replace Trivy, its database or the CA certificates, so hoist does not sign, attest or scan in the container that built. "+
		"Build only here (PLUGIN_NO_PUSH=true with PLUGIN_TAR_PATH=image.tar), then scan, sign and push that tarball in a step of its own "+
		"(PLUGIN_PUSH_ONLY=true, PLUGIN_SOURCE_TAR_PATH=image.tar, with %s there; docs/usage.md), or build with BuildKit (PLUGIN_BUILD_TOOL=buildkit)",
		settings.ErrInvalid, strings.Join(asked, ", "), why, strings.Join(asked, ", "))
}

// buildTool picks the build tool and says why.
func buildTool(s *settings.Settings) (tool, why string, err error) {
	tool = strings.ToLower(strings.TrimSpace(s.BuildTool))
	k8s := s.KubernetesHost != "" || strings.EqualFold(s.Infrastructure, "kubernetes") || strings.EqualFold(s.Infrastructure, "k8s")
	switch {
	case tool == "buildkit" || tool == "kaniko":
		return tool, s.Origin("build-tool") + " says so", nil
	case tool != "":
		return "", "", fmt.Errorf("%w: %s=%q: want buildkit or kaniko", settings.ErrInvalid, s.Origin("build-tool"), s.BuildTool)
	case k8s && s.BuildxOnK8:
		return "buildkit", "running in Kubernetes, and CI_USE_BUILDX_ON_K8 is true", nil
	case k8s:
		inK8s := "KUBERNETES_SERVICE_HOST is set"
		if s.KubernetesHost == "" {
			inK8s = s.Origin("infrastructure") + "=" + s.Infrastructure
		}
		return "kaniko", "running in Kubernetes (" + inK8s + "); CI_USE_BUILDX_ON_K8=true picks BuildKit", nil
	}
	return "buildkit", "not in Kubernetes", nil
}

// kanikoOf is the Kaniko builder. Its docker config is written when the
// step runs, from the step's keychain (see runner.kanikoConfig), so that
// Kaniko pulls and pushes with the credentials BuildKit would use.
func kanikoOf(s *settings.Settings, env Environ, path func(string) string) build.Kaniko {
	return build.Kaniko{
		Executor: path(s.KanikoExecutor), TempDir: env.TempDir, Env: env.Environ, Shield: env.Shield,
		Insecure: s.Insecure, SkipTLSVerify: s.SkipTLSVerify, Mirrors: s.RegistryMirrors, Extra: s.KanikoArgs(),
	}
}

// EngineOptions are the BuildKit a build step of the settings s, pushing
// to dests, builds with, and a registry CA given as PEM content (see
// engineOf): what a caller that opens one engine for several steps
// (hoist pipeline run) opens it with. Paths resolve against env.WorkDir.
func EngineOptions(s *settings.Settings, env Environ, dests []name.Tag) (engine.Options, string, error) {
	return engineOf(s, env, dests, func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(env.WorkDir, p)
	})
}

// engineOf is the BuildKit to build with: a remote one, or the embedded
// engine configured for the step's registries; and a registry CA given as
// PEM content, which the step writes into the engine's directory.
func engineOf(s *settings.Settings, env Environ, dests []name.Tag, path func(string) string) (engine.Options, string, error) {
	dir := s.EngineDir
	if dir == "" {
		dir = engine.DefaultDir(env.Lookup)
	}
	o := engine.Options{
		Addr: s.BuilderAddr, TLSCA: path(s.BuilderTLSCA), TLSCert: path(s.BuilderCert), TLSKey: path(s.BuilderKey),
		Dir: path(dir), Binary: program(s.Buildkitd, path), Env: env.Environ, Mirrors: s.RegistryMirrors, Keep: s.KeepEngine,
		Network: s.Network, Wait: 60 * time.Second,
	}
	if s.BuilderAddr != "" {
		o.Wait = s.BuilderTimeout
	}
	cfg, err := buildkitConfigOf(s, path)
	if err != nil {
		return o, "", fmt.Errorf("%w: %w", settings.ErrInvalid, err)
	}
	if !s.Insecure && !s.SkipTLSVerify && s.RegistryCertificate == "" {
		o.Registries = withConfigRegistries(o.Registries, cfg)
		return o, "", nil
	}
	var hosts []string
	for _, d := range dests {
		hosts = append(hosts, d.RegistryStr())
	}
	base := ""
	if s.BaseRegistry != "" {
		if h, err := registry.NormalizeHost(s.BaseRegistry); err == nil {
			hosts, base = append(hosts, h), h
		}
	}
	pem, caFile := "", ""
	if strings.Contains(s.RegistryCertificate, "-----BEGIN") {
		pem = s.RegistryCertificate
	} else if s.RegistryCertificate != "" {
		caFile = path(s.RegistryCertificate)
	}
	for _, h := range hosts {
		// PLUGIN_INSECURE allows plain HTTP; only PLUGIN_SKIP_TLS_VERIFY
		// skips certificate checks.
		reg := engine.Registry{Host: h, HTTP: s.Insecure, Insecure: s.SkipTLSVerify, Base: h == base}
		if caFile != "" {
			reg.CAFiles = []string{caFile}
		}
		o.Registries = append(o.Registries, reg)
	}
	o.Registries = withConfigRegistries(o.Registries, cfg)
	return o, pem, nil
}

// program is a program setting (PLUGIN_SCAN_TRIVY, PLUGIN_BUILDKITD): a
// name, looked for on the step's PATH, or a path, resolved as every path
// setting is (against the working directory). A program runs in a
// directory of its own (Trivy in an empty one), so a relative path would
// name another file there.
func program(name string, path func(string) string) string {
	if strings.ContainsRune(name, filepath.Separator) {
		return path(name)
	}
	return name
}
