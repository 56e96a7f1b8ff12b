package step

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/envlist"
	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/provenance"
	"github.com/hoist-build/hoist/internal/settings"
)

// buildRequest turns the settings into a build request, and the notes to
// print; every malformed value is reported at once. Each concern is read
// by a function of its own that returns its value and its problems:
// composed here.
//
// known is the step's mask: every build secret joins it once read, and a
// build argument or custom label that holds one of its secrets, or a URL
// with a login, is refused (publishedValue).
func buildRequest(s *settings.Settings, env Environ, dests []name.Tag, path func(string) string, known *mask.Set) (build.Request, []string, error) {
	req, notes, errs := requestBase(s, env, dests, path)
	var argFrom map[string]string
	var more []error
	req.BuildArgs, argFrom, more = buildArgsOf(s, env)
	errs = append(errs, more...)
	var custom []build.KV
	req.Labels, custom, more = labelsOf(s, env)
	errs = append(errs, more...)
	req.Secrets, more = buildSecretsOf(s, env, path)
	errs = append(errs, more...)
	// Build secrets are secrets from the moment they are read.
	for _, v := range req.Secrets {
		known.Add(string(v))
	}
	errs = append(errs, publishedErrs(s, req.BuildArgs, argFrom, custom, known)...)
	req.NamedContexts, req.NamedExcludes, more = namedContextsOf(s, env, path, func(dir string) []string {
		return build.Excludes(dir, path(".hoist"), path(s.ImageStore), path(s.CompressCache), path(s.TarPath), fsDestOf(s, path))
	})
	errs = append(errs, more...)
	var err error
	if req.SSHKey, err = sshKeyOf(s); err != nil {
		errs = append(errs, err)
	}
	var note string
	req.CacheFrom, req.CacheTo, note, more = cacheOf(s, dests, known)
	errs = append(errs, more...)
	if note != "" {
		notes = append(notes, note)
	}
	if len(errs) > 0 {
		return req, nil, fmt.Errorf("%w: %w", settings.ErrInvalid, errors.Join(errs...))
	}
	return req, notes, nil
}

// requestBase is what to build: the context, the Dockerfile, the target,
// the platforms, the compression, the names; hoist's own files excluded.
func requestBase(s *settings.Settings, env Environ, dests []name.Tag, path func(string) string) (build.Request, []string, []error) {
	var errs []error
	var notes []string
	req := build.Request{
		ContextDir:  path(s.Context),
		Dockerfile:  path(s.Dockerfile),
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
		// Built as it will be pushed, by this step or by a push-only step
		// from its tarball or the workspace store: gzip at level 1,
		// measured to export about three times faster than BuildKit's
		// default level. The digest the build reports is the one every
		// registry holds.
		req.Compression = "gzip"
		if req.Level == 0 {
			req.Level = 1
		}
	}
	var note string
	req.Dockerfile, req.DockerfileFrom, note = dockerfileOf(s, env, req.ContextDir, path)
	if note != "" {
		notes = append(notes, note)
	}
	// hoist's own files never reach the image, whatever .dockerignore
	// says: the workspace's .hoist, the image store, this step's tarball,
	// every step's temporary files.
	req.Exclude = build.Excludes(req.ContextDir, path(".hoist"), path(s.ImageStore), path(s.CompressCache), path(s.TarPath), fsDestOf(s, path))
	for _, d := range dests {
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
	return req, notes, errs
}

// buildArgsOf is the build arguments, and the setting each came from:
// the settings' (a bare KEY from the environment), PLUGIN_BUILD_ARGS_FROM_ENV,
// and the proxy variables, as the peers pass them. BuildKit keeps those
// out of the image's history, and the provenance never records them
// (envlist.IsProxy): they often carry the proxy's login.
func buildArgsOf(s *settings.Settings, env Environ) ([]build.KV, map[string]string, []error) {
	var errs []error
	var out []build.KV
	args := s.BuildArgs
	origin := s.Origin("build-args")
	if s.MultiBuildArgs {
		args, origin = s.BuildArgsNew, s.Origin("build-args-new")
	}
	given := map[string]bool{}
	argFrom := map[string]string{} // the setting each argument came from
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		k = strings.TrimSpace(k)
		if k == "" || strings.ContainsAny(k, " \t") {
			errs = append(errs, fmt.Errorf("%s: malformed build argument %q: want KEY=value", origin, a))
			continue
		}
		if !ok {
			v, ok = env.Lookup(k)
			if !ok {
				continue // like docker build --build-arg KEY with KEY unset
			}
		}
		out = append(out, build.KV{Key: k, Value: v})
		given[k], argFrom[k] = true, origin
	}
	for _, k := range s.BuildArgsFromEnv {
		if v, ok := env.Lookup(k); ok && !given[k] {
			out = append(out, build.KV{Key: k, Value: v})
			given[k], argFrom[k] = true, s.Origin("build-args-from-env")
		}
	}
	for _, k := range envlist.Proxy {
		if given[k] {
			continue
		}
		for _, e := range []string{k, "HARNESS_" + k} {
			if v, ok := env.Lookup(e); ok && v != "" {
				out = append(out, build.KV{Key: k, Value: v})
				given[k] = true
				break
			}
		}
	}
	return out, argFrom, errs
}

// labelsOf is the image's labels: the custom ones (returned alone too,
// to be checked for secrets), then, with PLUGIN_AUTO_LABEL, the OCI
// labels of the commit.
func labelsOf(s *settings.Settings, env Environ) (all, custom []build.KV, errs []error) {
	for _, l := range s.Labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.TrimSpace(k) == "" {
			errs = append(errs, fmt.Errorf("%s: malformed label %q: want key=value", s.Origin("labels"), l))
			continue
		}
		custom = append(custom, build.KV{Key: strings.TrimSpace(k), Value: v})
	}
	all = append(all, custom...)
	if s.AutoLabel {
		// No "created" from the clock, so that a rebuild of the same
		// commit gives the same digest; Drone's build time when it is set.
		if v, ok := env.Lookup("DRONE_BUILD_CREATED"); ok && v != "" {
			if n, err := parseUnix(v); err == nil {
				all = append(all, build.KV{Key: "org.opencontainers.image.created", Value: n.UTC().Format(time.RFC3339)})
			}
		}
		// The CI's clone URL may carry a login (https://user:token@...):
		// the labels are published with the image, so only what
		// provenance.Public keeps of them is.
		for _, kv := range [][2]string{{"org.opencontainers.image.revision", s.CommitSHA}, {"org.opencontainers.image.source", s.RemoteURL}, {"org.opencontainers.image.url", s.RepoLink}} {
			if v, ok := provenance.Public(kv[1]); ok && v != "" {
				all = append(all, build.KV{Key: kv[0], Value: v})
			}
		}
	}
	return all, custom, errs
}

// buildSecretsOf reads the build secrets: from the environment, from
// files, and buildx-style specs.
func buildSecretsOf(s *settings.Settings, env Environ, path func(string) string) (map[string][]byte, []error) {
	var errs []error
	secrets := map[string][]byte{}
	for _, sec := range s.SecretsFromEnv {
		id, envName, ok := strings.Cut(sec, "=")
		if !ok || id == "" || envName == "" {
			errs = append(errs, fmt.Errorf("%s: malformed secret %q: want id=ENV_NAME", s.Origin("secrets-from-env"), sec))
			continue
		}
		v, ok := env.Lookup(envName)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: secret %q: the environment variable %s is not set", s.Origin("secrets-from-env"), id, envName))
			continue
		}
		secrets[id] = []byte(v)
	}
	for _, sec := range s.SecretsFromFile {
		id, p, ok := strings.Cut(sec, "=")
		if !ok || id == "" || p == "" {
			errs = append(errs, fmt.Errorf("%s: malformed secret %q: want id=path", s.Origin("secrets-from-file"), sec))
			continue
		}
		b, err := readInput(path, p, maxSecretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: secret %q: %w", s.Origin("secrets-from-file"), id, err))
			continue
		}
		secrets[id] = b
	}
	for _, spec := range s.Secret {
		id, v, err := rawSecret(spec, env, path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Origin("secret"), err))
			continue
		}
		secrets[id] = v
	}
	return secrets, errs
}

// publishedErrs refuses a secret in what the image's config publishes:
// BuildKit records every build argument a RUN uses in the image's history
// ("RUN |1 KEY=value ..."), and the labels as they are. The proxy
// variables are the exception BuildKit makes: it keeps them out of the
// history.
func publishedErrs(s *settings.Settings, args []build.KV, argFrom map[string]string, custom []build.KV, known *mask.Set) []error {
	var errs []error
	for _, kv := range args {
		if envlist.IsProxy(kv.Key) {
			continue
		}
		if err := publishedValue("build argument", kv.Key, kv.Value, known); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", argFrom[kv.Key], err))
		}
	}
	for _, kv := range custom {
		if err := publishedValue("label", kv.Key, kv.Value, known); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Origin("labels"), err))
		}
	}
	return errs
}

// cacheOf is the layer cache: --cache-from and --cache-to, or with
// PLUGIN_ENABLE_CACHE a registry cache beside the first destination (and
// a note naming it).
//
// The entries are completed as the buildx plugin completes them
// (build.ResolveCache: Harness's credential placeholders, path-style s3),
// their credentials joining the step's secrets (known); what BuildKit
// cannot honour is an error.
func cacheOf(s *settings.Settings, dests []name.Tag, known *mask.Set) (from, to []build.CacheEntry, note string, errs []error) {
	var err error
	o := build.CacheOptions{S3AccessKey: s.HarnessS3AccessKey, S3SecretKey: s.HarnessS3SecretKey, PathStyle: s.CachePathStyle}
	for _, c := range []struct {
		dst  *[]build.CacheEntry
		raw  []string
		flag string
	}{{&from, s.CacheFrom, "cache-from"}, {&to, s.CacheTo, "cache-to"}} {
		if *c.dst, err = parseCache(c.raw, c.flag, s); err != nil {
			errs = append(errs, err)
			continue
		}
		var secrets []string
		*c.dst, secrets, err = build.ResolveCache(*c.dst, s.Origin(c.flag), o)
		known.Add(secrets...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if s.CacheTLSInsecure && (len(s.CacheFrom)+len(s.CacheTo) > 0 || s.EnableCache) {
		errs = append(errs, fmt.Errorf("%s: BuildKit's layer caches cannot skip certificate checks (the buildx plugin adds tls_insecure_skip_verify, an attribute of Harness's own BuildKit): give the cache an endpoint whose certificate the engine trusts (PLUGIN_REGISTRY_CERTIFICATE for a registry cache), and unset it", s.Origin("cache-tls-insecure")))
	}
	if !s.EnableCache || len(from) > 0 || len(to) > 0 {
		return from, to, "", errs
	}
	ref := s.CacheRepo
	if ref == "" && len(dests) > 0 {
		ref = dests[0].Context().Name() + ":buildcache"
	}
	if ref == "" {
		return from, to, "", append(errs, fmt.Errorf("PLUGIN_ENABLE_CACHE needs PLUGIN_CACHE_REPO or a destination to derive the cache reference from"))
	}
	from = []build.CacheEntry{{Type: "registry", Attrs: map[string]string{"ref": ref}}}
	to = []build.CacheEntry{{Type: "registry", Attrs: map[string]string{"ref": ref, "mode": "max"}}}
	return from, to, "layer cache: " + ref, errs
}

// publishedValue refuses the value of a build argument or label (what)
// named key that the image's config would publish with a secret in it:
// one of the step's known secrets, or a URL with a login. The error
// names the key, never the value, and says what to do instead.
func publishedValue(what, key, value string, known *mask.Set) error {
	switch {
	case known.Contains(value):
		if what == "label" {
			return fmt.Errorf("label %s holds a secret of this step (the value of a secret setting, a login or a build secret): labels are published in the image's config; leave the secret out of the label", key)
		}
		return fmt.Errorf("build argument %s holds a secret of this step (the value of a secret setting, a login or a build secret): BuildKit records a build argument that a RUN uses in the image's history, which is published with the image; pass it as a build secret instead: PLUGIN_SECRET=id=%s,env=VARIABLE (the variable that holds it), read in the Dockerfile with RUN --mount=type=secret,id=%s,env=%s", key, key, key, key)
	case provenance.HasLogin(value):
		if what == "label" {
			return fmt.Errorf("label %s holds a URL with a login (user:password@host, or a token as the user): labels are published in the image's config; give the URL without its login", key)
		}
		return fmt.Errorf("build argument %s holds a URL with a login (user:password@host, or a token as the user): BuildKit records a build argument that a RUN uses in the image's history, which is published with the image; give the URL without its login, and the login as a build secret (PLUGIN_SECRET=id=ID,env=VARIABLE, read with RUN --mount=type=secret,id=ID,env=VARIABLE, or a .netrc mounted as a secret file)", key)
	}
	return nil
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
		for i, f := range strings.Split(e, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
			if !ok || k == "" {
				// The entry is not quoted: it may hold a credential.
				return nil, fmt.Errorf("%s: malformed cache entry (its part %d is not KEY=VALUE): want type=registry,ref=REF[,mode=max], type=local,src|dest=DIR or type=s3,bucket=B,region=R,...", s.Origin(flag), i+1)
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

// dockerfileOf is the Dockerfile to build, which setting chose it, and,
// when hoist chose between two, why. Set, PLUGIN_DOCKERFILE is relative
// to the working directory. Unset, a plugin step takes Dockerfile in the
// working directory, as the peers do (a root Dockerfile with
// PLUGIN_CONTEXT=sub builds), and the context's when the working directory
// has none; the CLI takes the context's, as docker build does.
func dockerfileOf(s *settings.Settings, env Environ, ctxDir string, path func(string) string) (df, from, note string) {
	if s.Dockerfile != "" {
		return path(s.Dockerfile), s.Origin("dockerfile") + ", relative to the working directory", ""
	}
	inCtx := filepath.Join(ctxDir, "Dockerfile")
	if !env.Plugin {
		return inCtx, "the default: Dockerfile in the context; --dockerfile names another", ""
	}
	inWork := path("Dockerfile")
	from = "the default: Dockerfile in the working directory, as the peers read an unset PLUGIN_DOCKERFILE"
	if inWork == inCtx {
		return inCtx, from, ""
	}
	if _, err := os.Stat(inWork); err != nil {
		if _, err := os.Stat(inCtx); err == nil {
			return inCtx, "the default", fmt.Sprintf("dockerfile: %s (no Dockerfile in the working directory, where the peers look when PLUGIN_DOCKERFILE is unset)", inCtx)
		}
		from += ", and the context has none either"
	}
	return inWork, from, ""
}

// rawSecret reads one buildx --secret spec: id=ID[,type=file|env]
// [,src=PATH|source=PATH][,env=NAME]. Without src or env, the variable ID
// is read when it is set, else the file ID, as buildx does.
func rawSecret(spec string, env Environ, path func(string) string) (string, []byte, error) {
	var id, typ, src, envName string
	for _, field := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok {
			return "", nil, fmt.Errorf("malformed secret %q: %q is not KEY=VALUE", spec, field)
		}
		switch strings.ToLower(k) {
		case "id":
			id = v
		case "type":
			typ = v
		case "src", "source":
			src = v
		case "env":
			envName = v
		default:
			return "", nil, fmt.Errorf("malformed secret %q: unknown key %q (want id, type, src, source or env)", spec, k)
		}
	}
	switch {
	case typ != "" && typ != "file" && typ != "env":
		return "", nil, fmt.Errorf("secret %q: type=%s: want file or env", id, typ)
	case typ == "env" && envName == "":
		envName, src = src, ""
	}
	if id == "" {
		id = envName
		if id == "" {
			id = filepath.Base(src)
		}
	}
	if id == "" {
		return "", nil, fmt.Errorf("malformed secret %q: no id", spec)
	}
	if src == "" && envName == "" {
		if _, ok := env.Lookup(id); ok || typ == "env" {
			envName = id
		} else {
			src = id
		}
	}
	if envName != "" {
		v, ok := env.Lookup(envName)
		if !ok {
			return "", nil, fmt.Errorf("secret %q: the environment variable %s is not set", id, envName)
		}
		return id, []byte(v), nil
	}
	b, err := readInput(path, src, maxSecretFile)
	if err != nil {
		return "", nil, fmt.Errorf("secret %q: %w", id, err)
	}
	return id, b, nil
}
