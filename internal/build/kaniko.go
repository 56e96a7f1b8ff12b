package build

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/hoist-build/hoist/internal/envlist"
	"github.com/hoist-build/hoist/internal/source"
	"github.com/hoist-build/hoist/internal/tarball"
)

// ErrNoExecutor marks a missing Kaniko executor.
var ErrNoExecutor = errors.New("kaniko executor not found")

// Kaniko builds with the Kaniko executor, daemonless. The executor takes
// over the root filesystem of wherever it runs, so it runs only inside the
// Kaniko image (a container: a CI plugin step or a Kubernetes pod), never
// on a host.
//
// The executor writes the image as a tarball (--no-push --tar-path), and
// hoist pushes it with its own push core. The executor can push too, but
// one destination after another, without cross-repository mounts, digest
// read-back or the per-destination summary; hoist's push core does those
// for every builder alike. See docs/benchmarks.md for the two measured.
type Kaniko struct {
	// Executor is the executor's path (/kaniko/executor in the image).
	Executor string
	// TempDir holds the executor's tarball and docker config; in the
	// image it is under /kaniko, which the executor leaves out of images.
	TempDir string
	// DockerConfig is a docker config.json for base-image pulls and the
	// layer cache (the executor reads $DOCKER_CONFIG).
	DockerConfig []byte
	// Insecure and SkipTLSVerify apply to every registry.
	Insecure, SkipTLSVerify bool
	Mirrors                 []string
	// Registries is per-registry access (a buildkitd.toml's entries,
	// PLUGIN_BUILDKIT_CONFIG), as the executor's per-registry flags.
	Registries []KanikoRegistry
	// Extra are executor flags from the settings (snapshot mode, ...).
	Extra []string
	// Env is the environment the executor's is taken from: only the
	// variables executorEnv lets through, and DOCKER_CONFIG, which names
	// DockerConfig.
	Env []string
	// Shield, when set, is called just before the executor starts, and
	// the build fails if it does: from then on the Dockerfile's RUN
	// steps share this process's container. It is the command layer's
	// hook (the real binary makes itself non-dumpable there and reads the
	// system's CA certificates; internal/cli): a builder changes nothing
	// of the process on its own.
	Shield func() error
	// Progress receives the executor's output.
	Progress io.Writer
	Logf     func(string, ...any)
}

var _ Builder = (*Kaniko)(nil)

// Build runs the executor once; every output is made from its tarball.
func (k *Kaniko) Build(ctx context.Context, req Request) (*Result, error) {
	exe := k.Executor
	if exe == "" {
		exe = "/kaniko/executor"
	}
	if _, err := os.Stat(exe); err != nil {
		return nil, fmt.Errorf("%w at %s: run hoist in its Kaniko image (make images), set PLUGIN_KANIKO_EXECUTOR to the executor, or build with BuildKit (PLUGIN_BUILD_TOOL=buildkit)", ErrNoExecutor, exe)
	}
	if len(req.Platforms) > 1 {
		return nil, fmt.Errorf("%w: Kaniko builds one platform at a time; use PLUGIN_BUILD_TOOL=buildkit for %s", ErrInput, strings.Join(req.Platforms, ","))
	}
	if (req.Out.Load != nil || req.Out.Tar != nil && req.Out.TarFormat != "oci") && len(req.Names) == 0 {
		req.Names = []string{"hoist.local/image:latest"}
	}
	work, err := os.MkdirTemp(k.TempDir, "kaniko-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	tarPath := filepath.Join(work, "image.tar")
	digestFile := filepath.Join(work, "digest")
	if len(req.Exclude) > 0 {
		ctxDir, df, err := req.paths()
		if err != nil {
			return nil, err
		}
		if req.Dockerfile, err = kanikoIgnore(work, ctxDir, df, req.Exclude); err != nil {
			return nil, err
		}
	}
	args, err := k.args(req, tarPath, digestFile)
	if err != nil {
		return nil, err
	}
	// The executor's docker config is always its own (an empty one when
	// it needs no credentials), never one it would find in the
	// environment or the home directory.
	env := envlist.Filter(k.Env, executorEnv)
	cfg := k.DockerConfig
	if cfg == nil {
		cfg = []byte(`{"auths":{}}`)
	}
	dir := filepath.Join(work, "docker")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		return nil, err
	}
	env = append(env, "DOCKER_CONFIG="+dir)
	// From here on the build's RUN steps share this container.
	if k.Shield != nil {
		if err := k.Shield(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBuild, err)
		}
	}
	if err := k.run(ctx, exe, args, env); err != nil {
		return nil, err
	}
	b, _ := os.ReadFile(digestFile)
	digest := strings.TrimSpace(string(b))
	res := &Result{Digest: digest, Metadata: map[string]string{"containerimage.digest": digest}}
	// The executor's version, when it was stamped beside it (hoist's
	// setup and images do).
	if v, err := os.ReadFile(exe + ".version"); err == nil {
		res.BuilderVersion = strings.TrimSpace(string(v))
	}
	if err := k.outputs(ctx, req, tarPath); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBuild, err)
	}
	return res, nil
}

func (k *Kaniko) args(req Request, tarPath, digestFile string) ([]string, error) {
	ctxDir, df, err := req.paths()
	if err != nil {
		return nil, err
	}
	args := []string{"--context=dir://" + ctxDir, "--dockerfile=" + df, "--no-push", "--tar-path=" + tarPath, "--digest-file=" + digestFile,
		"--log-format=text", "--log-timestamp=false"}
	names := req.Names
	if len(names) == 0 {
		names = []string{"hoist.local/image:latest"}
	}
	for _, n := range names {
		args = append(args, "--destination="+n)
	}
	if req.Target != "" {
		args = append(args, "--target="+req.Target)
	}
	for _, kv := range req.BuildArgs {
		args = append(args, "--build-arg="+kv.Key+"="+kv.Value)
	}
	for _, kv := range req.Labels {
		args = append(args, "--label="+kv.Key+"="+kv.Value)
	}
	if len(req.Platforms) == 1 {
		args = append(args, "--custom-platform="+req.Platforms[0])
	}
	if req.NoCache {
		args = append(args, "--cache=false")
	}
	if err := KanikoCache(req.CacheFrom, req.CacheTo); err != nil {
		return nil, err
	}
	for _, c := range append(append([]CacheEntry(nil), req.CacheFrom...), req.CacheTo...) {
		if c.Type == "registry" && c.Attrs["ref"] != "" && !req.NoCache {
			// Kaniko's layer cache is one repository, read and written.
			repo := c.Attrs["ref"]
			if r, err := name.ParseReference(repo); err == nil {
				repo = r.Context().Name()
			}
			args = append(args, "--cache=true", "--cache-repo="+repo)
			break
		}
	}
	switch req.Network {
	case "", "default", "host":
	default:
		return nil, fmt.Errorf("%w: Kaniko runs RUN steps in its own container's network; PLUGIN_NETWORK=%s needs BuildKit", ErrInput, req.Network)
	}
	if len(req.Secrets) > 0 {
		return nil, fmt.Errorf("%w: Kaniko has no build secrets (RUN --mount=type=secret); use PLUGIN_BUILD_TOOL=buildkit", ErrInput)
	}
	if k.Insecure {
		args = append(args, "--insecure", "--insecure-pull")
	}
	if k.SkipTLSVerify {
		args = append(args, "--skip-tls-verify", "--skip-tls-verify-pull")
	}
	for _, m := range k.Mirrors {
		args = append(args, "--registry-mirror="+m)
	}
	for _, r := range k.Registries {
		args = append(args, r.args()...)
	}
	return append(args, k.Extra...), nil
}

// KanikoRegistry is one registry's access for the executor: its mirrors
// (pull-through, tried first), plain HTTP, no TLS verification, a CA.
type KanikoRegistry struct {
	Host                  string
	Mirrors               []string
	PlainHTTP, SkipVerify bool
	CAFile                string
}

func (r KanikoRegistry) args() []string {
	var args []string
	for _, m := range r.Mirrors {
		args = append(args, "--registry-map="+r.Host+"="+m)
	}
	if r.PlainHTTP {
		args = append(args, "--insecure-registry="+r.Host)
	}
	if r.SkipVerify {
		args = append(args, "--skip-tls-verify-registry="+r.Host)
	}
	if r.CAFile != "" {
		args = append(args, "--registry-certificate="+r.Host+"="+r.CAFile)
	}
	return args
}

// executorEnv are the variables the executor gets from the step's
// environment: where it finds its programs and home, the CA certificates
// and the proxies it pulls through (which the build gets anyway, as build
// arguments), Kaniko's own directory and the container runtime's marker.
// Nothing else: the RUN steps of the Dockerfile run beside the executor,
// as root, and read its environment (/proc/PID/environ), while the step's
// environment holds its secrets (registry passwords, cloud keys, signing
// keys, tokens). The registry credentials Kaniko needs are in its docker
// config.
var executorEnv = append([]string{"PATH", "HOME", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "KANIKO_DIR", "container"}, envlist.Proxy...)

// run runs the executor, streaming its output; a failure reports the exit
// code and the last lines.
func (k *Kaniko) run(ctx context.Context, exe string, args, env []string) error {
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var last []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			if k.Progress != nil {
				fmt.Fprintln(k.Progress, line)
			}
			last = append(last, line)
			if len(last) > 15 {
				last = last[1:]
			}
		}
	}()
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	pw.Close()
	<-done
	if err != nil {
		cause := err
		if ctx.Err() != nil {
			cause = errors.Join(ctx.Err(), err)
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &Error{Err: cause, advice: fmt.Errorf("%w: the kaniko executor exited with code %d; its last lines:\n%s", ErrBuild, ee.ExitCode(), strings.Join(last, "\n"))}
		}
		return &Error{Err: cause, advice: fmt.Errorf("%w: run %s: %w", ErrBuild, exe, err)}
	}
	return nil
}

// outputs makes every requested output from the executor's tarball.
func (k *Kaniko) outputs(ctx context.Context, req Request, tarPath string) error {
	if req.Out.LayoutDir != "" {
		img, err := source.Open(ctx, source.Request{TarPath: tarPath, TempDir: k.TempDir, KeepUncompressed: true})
		if err != nil {
			return err
		}
		err = writeLayout(req.Out.LayoutDir, img.Artifact)
		img.Close()
		if err != nil {
			return err
		}
	}
	copyTo := func(w io.WriteCloser) error {
		f, err := os.Open(tarPath)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		return err
	}
	if req.Out.Tar != nil {
		if req.Out.TarFormat == "oci" {
			if req.Out.LayoutDir == "" {
				return errors.New("an OCI tarball needs the layout")
			}
			err := tarball.Write(ctx, req.Out.Tar, req.Out.LayoutDir, tarball.OCI, req.Names)
			if cerr := req.Out.Tar.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		} else if err := copyTo(req.Out.Tar); err != nil {
			return err
		}
	}
	if req.Out.Load != nil {
		if err := copyTo(req.Out.Load); err != nil {
			return err
		}
	}
	return nil
}

// writeLayout writes an image into a new OCI layout at dir.
func writeLayout(dir string, a source.Artifact) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	switch x := a.(type) {
	case v1.Image:
		return p.AppendImage(x)
	case v1.ImageIndex:
		return p.AppendIndex(x)
	}
	return fmt.Errorf("cannot write %T to a layout", a)
}

// DockerConfig renders a docker config.json with the credentials of each
// registry host (Docker Hub under the key the Docker CLI uses).
func DockerConfig(auths map[string]authn.AuthConfig) ([]byte, error) {
	cfg := struct {
		Auths map[string]authn.AuthConfig `json:"auths"`
	}{Auths: map[string]authn.AuthConfig{}}
	for host, ac := range auths {
		if host == name.DefaultRegistry {
			host = authn.DefaultAuthKey
		}
		cfg.Auths[host] = ac
	}
	return json.Marshal(cfg)
}

// BaseHosts are the registries of the base images a Dockerfile pulls:
// each stage's FROM, its build arguments expanded as the build expands
// them (the ARGs before the first FROM, with the values of args), other
// than an earlier stage and scratch. The Dockerfile is read with
// BuildKit's own parser.
func BaseHosts(dockerfile string, args []KV) ([]string, error) {
	f, err := os.Open(dockerfile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dockerfile, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dockerfile, err)
	}
	given := map[string]string{}
	for _, kv := range args {
		given[kv.Key] = kv.Value
	}
	lex := shell.NewLex(res.EscapeToken)
	var env []string
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if v, ok := given[kv.Key]; ok {
				env = append(env, kv.Key+"="+v)
			} else if kv.Value != nil {
				v, _, err := lex.ProcessWord(*kv.Value, shell.EnvsFromSlice(env))
				if err != nil {
					return nil, fmt.Errorf("%s: ARG %s: %w", dockerfile, kv.Key, err)
				}
				env = append(env, kv.Key+"="+v)
			}
		}
	}
	named := map[string]bool{"scratch": true}
	var hosts []string
	for _, st := range stages {
		base, _, err := lex.ProcessWord(st.BaseName, shell.EnvsFromSlice(env))
		if err != nil {
			return nil, fmt.Errorf("%s: FROM %s: %w", dockerfile, st.BaseName, err)
		}
		earlier := named[strings.ToLower(base)]
		if st.Name != "" {
			named[strings.ToLower(st.Name)] = true
		}
		if earlier {
			continue
		}
		ref, err := name.ParseReference(base)
		if err != nil {
			continue // the build says what is wrong with it
		}
		if h := ref.Context().RegistryStr(); !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts, nil
}

// KanikoCache refuses the cache entries Kaniko cannot honour: its layer
// cache is one registry repository, read and written.
func KanikoCache(from, to []CacheEntry) error {
	for _, c := range append(append([]CacheEntry(nil), from...), to...) {
		if c.Type != "registry" {
			return fmt.Errorf("%w: Kaniko's layer cache is a registry repository (type=registry,ref=REPO or PLUGIN_ENABLE_CACHE); a type=%s cache needs BuildKit (PLUGIN_BUILD_TOOL=buildkit)", ErrInput, c.Type)
		}
	}
	return nil
}
