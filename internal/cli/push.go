package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/logs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hoist-build/hoist/internal/daemon"
	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/outputs"
	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/publish"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/source"
	"github.com/hoist-build/hoist/internal/tags"
)

// run holds what every mode of one hoist run shares: the validated
// settings, the destinations, the keychain, the transport, the masked
// output and the progress printer.
type run struct {
	s      *settings.Settings
	env    Env
	stdout *maskWriter
	stderr *maskWriter
	tty    bool
	pr     *progress.Printer
	dests  []name.Tag
	kind   string         // docker, ecr, gar, gcr or acr
	kc     authn.Keychain // the cloud keychains, then the static and docker-config ones
	// loginFailed holds registries whose credentials could not be had,
	// when PLUGIN_PARTIAL_LOGIN lets the run go on without them.
	loginFailed map[string]error
	tr          *http.Transport
	daemon      *daemon.Daemon
}

// newRun validates the settings shared by every mode. needDests is false
// for a build-only run, which may have no repository; building applies the
// automatic and expanded tags.
func newRun(ctx context.Context, s *settings.Settings, env Env, needDests, building bool) (*run, error) {
	if err := checkModes(s); err != nil {
		return nil, err
	}
	r := &run{s: s, env: env, tty: isTerminal(env.Stderr)}
	mode, err := progress.ParseMode(s.Progress, r.tty)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", settings.ErrInvalid, s.Origin("progress"), err)
	}
	if s.Jobs < 1 || s.PushRetry < 0 || s.MaxParallel < 0 {
		return nil, fmt.Errorf("%w: --jobs must be at least 1, --push-retry and --max-parallel at least 0", settings.ErrInvalid)
	}
	tagList := s.Tags
	if building {
		if tagList, err = buildTags(s); err != nil {
			return nil, err
		}
	}
	kind, kindName, err := kindOf(s)
	if err != nil {
		return nil, err
	}
	r.kind = kindName
	// The transport's client carries the cloud logins too; it is made
	// below, once the output mask is in place.
	client := &http.Client{}
	kcfg := kindConfig(s, kindName, r.path, client)
	repo, err := kinds.Repository(kind, kcfg)
	if err != nil {
		return nil, err
	}
	if needDests || s.Repo != "" || len(s.Destinations) > 0 {
		r.dests, err = registry.Destinations(repo, tagList, s.Destinations, s.Insecure)
		if err != nil {
			return nil, err
		}
	}
	defaultFor := name.DefaultRegistry
	if len(r.dests) > 0 {
		defaultFor = r.dests[0].Context().RegistryStr()
	}
	regKC, err := registry.NewKeychain(registry.Credentials{
		Registry:   s.Registry,
		Username:   s.Username,
		Password:   s.Password,
		DefaultFor: defaultFor,
		Extra:      []registry.Login{{Registry: s.BaseRegistry, Username: s.BaseUsername, Password: s.BasePassword, Setting: "PLUGIN_BASE_IMAGE_REGISTRY/USERNAME/PASSWORD"}},
		Config:     s.Config,
		Lookup:     env.Lookup,
	})
	if err != nil {
		return nil, err
	}

	// From here on every byte of output passes through the mask.
	secrets := append(s.Secrets(), regKC.Secrets()...)
	for _, up := range [][2]string{{s.Username, s.Password}, {s.BaseUsername, s.BasePassword}} {
		if up[0] != "" && up[1] != "" {
			secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(up[0]+":"+up[1])))
		}
	}
	r.stdout, r.stderr = newMask(env.Stdout, secrets), newMask(env.Stderr, secrets)
	setLibraryLogs(r.stderr, s.Debug)

	r.tr, err = registry.NewTransport(registry.TransportOptions{CACert: s.RegistryCertificate, SkipVerify: s.SkipTLSVerify, Timeout: s.RegistryTimeout})
	if err != nil {
		r.close()
		return nil, fmt.Errorf("%w: %w", settings.ErrInvalid, err)
	}
	r.pr = progress.New(r.stderr, mode)
	if s.Debug {
		for _, kv := range s.Masked() {
			r.pr.Printf("setting %s=%s (%s)", kv[0], kv[1], s.Origin(kv[0]))
		}
	}
	client.Transport = r.tr
	var hosts []string
	for _, d := range r.dests {
		hosts = append(hosts, d.RegistryStr())
	}
	clouds, err := kinds.Keychains(kcfg, kind, hosts)
	if err != nil {
		r.close()
		return nil, err
	}
	var kcs []authn.Keychain
	for _, c := range clouds {
		kcs = append(kcs, c)
	}
	r.kc = authn.NewMultiKeychain(append(kcs, regKC)...)
	if needDests {
		if err := r.login(ctx, clouds, true); err != nil {
			r.close()
			return nil, err
		}
	}
	if !s.DaemonOff {
		r.daemon = daemon.New(s.DockerHost)
	}
	return r, nil
}

func (r *run) close() {
	r.pr.Close()
	setLibraryLogs(io.Discard, false)
	r.stderr.Flush()
	r.stdout.Flush()
}

// path resolves a path setting against the working directory.
func (r *run) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.env.WorkDir, p)
}

// errSkipBuild ends a build that auto-tag skips, successfully.
var errSkipBuild = errors.New("skipped")

// buildTags applies --auto-tag and --expand-tag, as the peers do for builds.
func buildTags(s *settings.Settings) ([]string, error) {
	if s.AutoTag && s.ExpandTag {
		return nil, fmt.Errorf("%w: The auto-tag flag conflicts with the expand-tag flag (PLUGIN_AUTO_TAG and PLUGIN_EXPAND_TAG are both true)", settings.ErrInvalid)
	}
	out := s.Tags
	if s.AutoTag {
		if s.IsSet("tags") && !(len(s.Tags) == 1 && s.Tags[0] == "latest") {
			return nil, fmt.Errorf("%w: The auto-tag flag does not work with user provided tags %v (%s); remove them or PLUGIN_AUTO_TAG", settings.ErrInvalid, s.Tags, s.Origin("tags"))
		}
		t, err := tags.Auto(s.CommitRef, s.RepoBranch, s.AutoTagSuffix)
		if errors.Is(err, tags.ErrSkip) {
			return nil, fmt.Errorf("%w: skipping automated docker build for %s: it is neither a tag nor the default branch (DRONE_REPO_BRANCH=%q)", errSkipBuild, s.CommitRef, s.RepoBranch)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", settings.ErrInvalid, err)
		}
		out = t
	}
	if s.ExpandTag {
		out = tags.Expand(out)
	}
	return out, nil
}

// runPush is push-only mode: find the image, push it everywhere, report.
func runPush(ctx context.Context, s *settings.Settings, env Env) error {
	r, err := newRun(ctx, s, env, true, false)
	if err != nil {
		return err
	}
	defer r.close()
	var fallbacks []string
	if s.Repo != "" {
		for _, t := range r.dests {
			if t.Context().Name() == mustRepo(s.Repo, s.Insecure) {
				fallbacks = append(fallbacks, t.Name())
			}
		}
	}
	start := time.Now()
	img, err := source.Open(ctx, r.sourceRequest(source.Request{
		TarPath:   r.path(s.SourceTarPath),
		Image:     s.SourceImage,
		Fallbacks: fallbacks,
		Store:     r.path(s.ImageStore),
		Daemon:    r.daemon,
		Remote:    []remote.Option{remote.WithAuthFromKeychain(r.kc), remote.WithTransport(r.tr)},
	}))
	if err != nil {
		return err
	}
	defer img.Close()
	r.pr.Printf("source: %s, %s (ready in %.2fs)", img.From, img.Digest, time.Since(start).Seconds())
	return r.push(ctx, img, nil)
}

// sourceRequest completes a source request with what every source shares:
// how uncompressed layers are treated, and logging.
func (r *run) sourceRequest(req source.Request) source.Request {
	req.Insecure = r.s.Insecure
	// Layers that arrive uncompressed are gzipped once, at level 1 of
	// klauspost/compress unless told otherwise (docs/benchmarks.md).
	req.GzipLevel = r.s.CompressionLevel
	req.KeepUncompressed = r.s.Compression == "uncompressed"
	req.Logf = r.pr.Printf
	return req
}

// push publishes img to every destination, prints the summary and writes
// the outputs; extra holds more DRONE_OUTPUT keys.
func (r *run) push(ctx context.Context, img *source.Image, extra map[string]string) error {
	var dests []name.Tag
	var skipped []publish.Result
	for _, d := range r.dests {
		if err := r.loginFailed[d.RegistryStr()]; err != nil {
			skipped = append(skipped, publish.Result{Ref: d.Name(), Status: "failed", Err: fmt.Errorf("%w: %w", publish.ErrPush, err)})
			continue
		}
		dests = append(dests, d)
	}
	r.pr.Printf("pushing to %d destination(s)", len(dests))
	results := publish.Push(ctx, img.Artifact, dests, publish.Options{
		Keychain:    r.kc,
		Transport:   r.tr,
		Jobs:        r.s.Jobs,
		MaxParallel: r.s.MaxParallel,
		Retries:     r.s.PushRetry,
		FailFast:    r.s.FailFast,
		Progress:    r.pr,
	})
	r.pr.Close()
	results = append(results, skipped...)
	failed := summary(r.stderr, results)
	if err := writeOutputs(r.s, img.Digest.String(), results, extra); err != nil {
		return err
	}
	if failed > 0 {
		err := fmt.Errorf("%w: %d of %d destination(s) failed (see above)", publish.ErrPush, failed, len(results))
		for _, res := range results {
			if errors.Is(res.Err, source.ErrDigestMismatch) {
				// The input is bad, not the registry: exit as for a bad source.
				return fmt.Errorf("%w: %w", err, source.ErrDigestMismatch)
			}
		}
		return err
	}
	fmt.Fprintln(r.stdout, img.Digest.String())
	return nil
}

func mustRepo(repo string, insecure bool) string {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(repo, opts...)
	if err != nil {
		return repo
	}
	return r.Name()
}

// summary prints one line per destination and returns how many failed.
func summary(w io.Writer, results []publish.Result) int {
	failed := 0
	width := 0
	for _, r := range results {
		width = max(width, len(r.Ref))
	}
	fmt.Fprintln(w, "summary:")
	for _, r := range results {
		digest := r.Digest
		if digest == "" {
			digest = "-"
		}
		status := "ok (" + r.Status + ")"
		if r.Err != nil {
			failed++
			status = "FAILED: " + strings.ReplaceAll(r.Err.Error(), "\n", " ")
		}
		fmt.Fprintf(w, "  %-*s  %s  %9s  %6.2fs  %s\n", width, r.Ref, digest, progress.Bytes(r.Bytes), r.Duration.Seconds(), status)
	}
	return failed
}

// writeOutputs writes the digest, DRONE_OUTPUT and artifact files when at
// least one destination has the image.
func writeOutputs(s *settings.Settings, digest string, results []publish.Result, extra map[string]string) error {
	var ok []publish.Result
	for _, r := range results {
		if r.Err == nil {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	vars := map[string]string{"digest": digest}
	for k, v := range extra {
		vars[k] = v
	}
	refs := make([]string, len(ok))
	for i, r := range ok {
		refs[i] = r.Ref
	}
	first, _ := name.NewTag(ok[0].Ref, name.WeakValidation)
	vars["IMAGE"] = ok[0].Ref
	vars["IMAGE_REFS"] = strings.Join(refs, ",")
	vars["IMAGE_DIGEST_REF"] = first.Context().Name() + "@" + digest
	if err := writeDigestAndEnv(s, digest, vars); err != nil {
		return err
	}
	if s.ArtifactFile != "" {
		_, kind, _ := kindOf(s)
		a := outputs.Artifact{Data: outputs.ArtifactData{RegistryType: kinds.ArtifactType(kind), RegistryURL: registryURL(s, ok[0].Ref)}}
		for _, r := range ok {
			a.Data.Images = append(a.Data.Images, outputs.ArtifactImage{Image: r.Ref, Digest: digest})
		}
		if err := outputs.WriteArtifact(s.ArtifactFile, a); err != nil {
			return err
		}
	}
	return nil
}

// writeDigestAndEnv writes the digest file and merges vars into
// DRONE_OUTPUT, when those are set.
func writeDigestAndEnv(s *settings.Settings, digest string, vars map[string]string) error {
	if s.DigestFile != "" {
		if err := outputs.Digest(s.DigestFile, digest); err != nil {
			return err
		}
	}
	if s.OutputFile != "" {
		if err := outputs.Env(s.OutputFile, vars); err != nil {
			return err
		}
	}
	return nil
}

func registryURL(s *settings.Settings, ref string) string {
	if s.Registry != "" {
		return s.Registry
	}
	t, err := name.NewTag(ref, name.WeakValidation)
	if err != nil || t.RegistryStr() == name.DefaultRegistry {
		return "https://index.docker.io/v1/"
	}
	return t.RegistryStr()
}

// libLog is where go-containerregistry's loggers write. They are package
// globals there, so they are installed once and pointed at the current run.
var libLog struct {
	once, debugOnce sync.Once
	warn            atomic.Pointer[io.Writer]
	debug           atomic.Pointer[io.Writer]
}

type libWriter struct{ p *atomic.Pointer[io.Writer] }

func (l libWriter) Write(b []byte) (int, error) {
	if w := l.p.Load(); w != nil {
		return (*w).Write(b)
	}
	return len(b), nil
}

// setLibraryLogs routes go-containerregistry's loggers: warnings always,
// request dumps (which it redacts, and which pass through our mask) only
// with --debug.
func setLibraryLogs(w io.Writer, debug bool) {
	libLog.once.Do(func() {
		logs.Warn = log.New(libWriter{&libLog.warn}, "warning: ", 0)
		logs.Progress = log.New(io.Discard, "", 0)
	})
	libLog.warn.Store(&w)
	if debug {
		// Only installed once asked for: go-containerregistry dumps every
		// request when its debug logger writes anywhere.
		libLog.debugOnce.Do(func() { logs.Debug = log.New(libWriter{&libLog.debug}, "debug: ", 0) })
		libLog.debug.Store(&w)
	} else {
		libLog.debug.Store(nil)
	}
}
