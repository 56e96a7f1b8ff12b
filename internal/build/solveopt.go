package build

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/tonistiigi/fsutil"
)

// solveOpt is the request as BuildKit's solve options: the local mounts,
// the Dockerfile frontend's attributes, the exporters and the session,
// each made by its own part.
func (b *BuildKit) solveOpt(req Request, direct bool) (client.SolveOpt, error) {
	ctxDir, df, err := req.paths()
	if err != nil {
		return client.SolveOpt{}, err
	}
	mounts, err := localMounts(req, ctxDir, df)
	if err != nil {
		return client.SolveOpt{}, err
	}
	attrs, entitlements, err := frontendAttrs(req, filepath.Base(df))
	if err != nil {
		return client.SolveOpt{}, err
	}
	exports, err := b.exports(req, direct)
	if err != nil {
		return client.SolveOpt{}, err
	}
	attachables, err := b.session(req)
	if err != nil {
		return client.SolveOpt{}, err
	}
	return client.SolveOpt{
		Frontend:            "dockerfile.v0",
		FrontendAttrs:       attrs,
		LocalMounts:         mounts,
		Exports:             exports,
		CacheImports:        cacheEntries(req.CacheFrom),
		CacheExports:        cacheEntries(req.CacheTo),
		Session:             attachables,
		AllowedEntitlements: entitlements,
	}, nil
}

// localMounts are the build context (without the request's excludes) and
// the Dockerfile's directory.
func localMounts(req Request, ctxDir, df string) (map[string]fsutil.FS, error) {
	ctxFS, err := fsutil.NewFS(ctxDir)
	if err == nil && len(req.Exclude) > 0 {
		ctxFS, err = fsutil.NewFilterFS(ctxFS, &fsutil.FilterOpt{ExcludePatterns: req.Exclude})
	}
	if err != nil {
		return nil, fmt.Errorf("%w: build context %s: %w", ErrInput, ctxDir, err)
	}
	dfFS, err := fsutil.NewFS(filepath.Dir(df))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	mounts := map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS}
	for name, v := range req.NamedContexts {
		if !filepath.IsAbs(v) {
			continue // an image: the frontend resolves it
		}
		fs, err := fsutil.NewFS(v)
		if err == nil && len(req.NamedExcludes[name]) > 0 {
			fs, err = fsutil.NewFilterFS(fs, &fsutil.FilterOpt{ExcludePatterns: req.NamedExcludes[name]})
		}
		if err != nil {
			return nil, fmt.Errorf("%w: named context %s (%s): %w", ErrInput, name, v, err)
		}
		mounts[namedLocal(name)] = fs
	}
	return mounts, nil
}

// namedLocal is the session's name of the local directory of the named
// context name: apart from the context's and the Dockerfile's.
func namedLocal(name string) string { return "named-context:" + name }

// frontendAttrs are the Dockerfile frontend's attributes (filename is the
// Dockerfile's name in its directory), and the entitlements the network
// mode needs.
func frontendAttrs(req Request, filename string) (attrs map[string]string, entitlements []string, err error) {
	attrs = map[string]string{"filename": filename}
	if req.Target != "" {
		attrs["target"] = req.Target
	}
	for _, kv := range req.BuildArgs {
		attrs["build-arg:"+kv.Key] = kv.Value
	}
	for _, kv := range req.Labels {
		attrs["label:"+kv.Key] = kv.Value
	}
	if len(req.Platforms) > 0 {
		attrs["platform"] = strings.Join(req.Platforms, ",")
	}
	if req.NoCache {
		attrs["no-cache"] = ""
	}
	if req.Pull {
		attrs["image-resolve-mode"] = "pull"
	}
	if len(req.AddHosts) > 0 {
		attrs["add-hosts"] = addHosts(req.AddHosts)
	}
	for name, v := range req.NamedContexts {
		if filepath.IsAbs(v) {
			v = "local:" + namedLocal(name)
		}
		attrs["context:"+name] = v
	}
	switch req.Network {
	case "", "default":
	case "host":
		attrs["force-network-mode"] = "host"
		entitlements = append(entitlements, "network.host")
	case "none":
		attrs["force-network-mode"] = "none"
	default:
		return nil, nil, fmt.Errorf("%w: network %q: want default, host or none", ErrInput, req.Network)
	}
	return attrs, entitlements, nil
}

// addHosts is the frontend's add-hosts attribute: users write host:ip
// (docker --add-host); the frontend reads host=ip. An IPv6 address keeps
// its colons.
func addHosts(in []string) string {
	hosts := make([]string, len(in))
	for i, h := range in {
		if !strings.Contains(h, "=") {
			if host, ip, ok := strings.Cut(h, ":"); ok {
				h = host + "=" + ip
			}
		}
		hosts[i] = h
	}
	return strings.Join(hosts, ",")
}

// exports are the exporters of every output the request asks for: into
// the Docker daemon's store (its builder), into the engine's content
// store (direct), or streamed back as a layout, a tarball, a load.
func (b *BuildKit) exports(req Request, direct bool) ([]client.ExportEntry, error) {
	with := compressionAttrs(req)
	var exports []client.ExportEntry
	if b.Docker {
		if len(req.Names) == 0 {
			return nil, fmt.Errorf("%w: the Docker daemon's builder needs PLUGIN_REPO (and tags) to name the image", ErrInput)
		}
		if req.Out.LayoutDir != "" || req.Out.Tar != nil || req.Out.Load != nil || req.Out.FSTar != nil || req.Out.FSDir != "" || req.Out.Push != "" {
			return nil, fmt.Errorf("%w: the Docker daemon's builder writes into the daemon only", ErrInput)
		}
		exports = append(exports, client.ExportEntry{Type: "moby", Attrs: map[string]string{"name": strings.Join(req.Names, ",")}})
	} else if req.Out.Push != "" {
		if direct || req.Out.LayoutDir != "" || req.Out.Tar != nil || req.Out.Load != nil || req.Out.FSTar != nil || req.Out.FSDir != "" {
			return nil, fmt.Errorf("%w: a push by the builder writes no other output", ErrInput)
		}
		// OCI media types, as the layout export has: the digest is the
		// one hoist's own export would give.
		attrs := map[string]string{"name": req.Out.Push, "push": "true", "push-by-digest": "true", "oci-mediatypes": "true"}
		return []client.ExportEntry{{Type: client.ExporterImage, Attrs: with(attrs)}}, nil
	} else if direct {
		if req.Out.LayoutDir == "" {
			return nil, fmt.Errorf("%w: an export into the engine needs a layout directory", ErrInput)
		}
		exports = append(exports, client.ExportEntry{Type: client.ExporterImage, Attrs: with(nil)})
	} else if req.Out.LayoutDir != "" {
		exports = append(exports, client.ExportEntry{Type: client.ExporterOCI, Attrs: with(map[string]string{"tar": "false"}), OutputDir: req.Out.LayoutDir})
	}
	names := strings.Join(req.Names, ",")
	format := req.Out.TarFormat
	if format == "" {
		format = "docker"
	}
	if format != "docker" && format != "oci" {
		return nil, fmt.Errorf("%w: tar format %q: want docker or oci", ErrInput, format)
	}
	if (req.Out.Load != nil || req.Out.Tar != nil && format == "docker") && len(req.Platforms) > 1 {
		return nil, fmt.Errorf("%w: a docker tarball and the Docker daemon hold one platform, and %d are built; write an OCI tarball (PLUGIN_BUILDX_OUTPUT_FORMAT=oci) or build one platform", ErrInput, len(req.Platforms))
	}
	if req.Out.Tar != nil && !direct {
		exports = append(exports, streamed(format, with(map[string]string{"name": names}), req.Out.Tar))
	}
	if req.Out.Load != nil && !direct {
		exports = append(exports, streamed(client.ExporterDocker, with(map[string]string{"name": names}), req.Out.Load))
	}
	// The filesystem exports are written by BuildKit in either case: the
	// engine's content store holds no filesystem.
	if req.Out.FSTar != nil {
		exports = append(exports, streamed(client.ExporterTar, nil, req.Out.FSTar))
	}
	if req.Out.FSDir != "" {
		exports = append(exports, client.ExportEntry{Type: client.ExporterLocal, OutputDir: req.Out.FSDir})
	}
	return exports, nil
}

// streamed is an exporter whose output streams back to w.
func streamed(typ string, attrs map[string]string, w io.WriteCloser) client.ExportEntry {
	return client.ExportEntry{Type: typ, Attrs: attrs, Output: func(map[string]string) (io.WriteCloser, error) { return w, nil }}
}

// compressionAttrs returns a function that adds the request's layer
// compression to an exporter's attributes.
func compressionAttrs(req Request) func(extra map[string]string) map[string]string {
	// Always forced: BuildKit otherwise reuses whichever variant of a
	// layer it already holds (zstd from an earlier build).
	compression := req.Compression
	if compression == "" {
		compression = "gzip"
	}
	comp := map[string]string{"compression": compression, "force-compression": "true"}
	if req.Level > 0 {
		comp["compression-level"] = strconv.Itoa(req.Level)
	}
	return func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range comp {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
}

// session is what the build's session offers the daemon: registry
// credentials from the keychain, the request's secrets and its SSH key.
func (b *BuildKit) session(req Request) ([]session.Attachable, error) {
	attachables := []session.Attachable{authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: keychainAuth(b.Keychain),
	})}
	if len(req.Secrets) > 0 {
		attachables = append(attachables, secretsprovider.FromMap(req.Secrets))
	}
	if len(req.SSHKey) > 0 {
		agent, err := sshAgent(req.SSHKey, req.TempDir)
		if err != nil {
			return nil, err
		}
		attachables = append(attachables, agent)
	}
	return attachables, nil
}

// sshAgent is the build's default SSH agent, holding key. BuildKit's
// provider loads keys from files only; the file lives while it reads it,
// in dir (never the workspace), readable by its owner only. Errors never
// quote the key.
func sshAgent(key []byte, dir string) (session.Attachable, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: the SSH key needs a temporary directory", ErrInput)
	}
	f, err := os.CreateTemp(dir, "ssh-agent-key-*") // 0600
	if err != nil {
		return nil, fmt.Errorf("ssh agent key: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("ssh agent key: %w", err)
	}
	agent, err := sshprovider.NewSSHAgentProvider([]sshprovider.AgentConfig{{ID: sshforward.DefaultID, Paths: []string{f.Name()}}})
	if err != nil {
		return nil, fmt.Errorf("%w: PLUGIN_SSH_AGENT_KEY is not a private key BuildKit can load (PEM or OpenSSH, without a passphrase): %w", ErrInput, err)
	}
	return agent, nil
}
