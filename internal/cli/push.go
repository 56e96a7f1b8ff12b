package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/logs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hoist-build/hoist/internal/daemon"
	"github.com/hoist-build/hoist/internal/outputs"
	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/publish"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/source"
)

// gzipLevel is used for layers that arrive uncompressed (docker save).
// Level 1 of klauspost/compress: see docs/benchmarks.md.
const gzipLevel = 1

// runPush is push-only mode: find the image, push it everywhere, report.
func runPush(ctx context.Context, s *settings.Settings, env Env) error {
	if err := checkModes(s); err != nil {
		return err
	}
	tty := isTerminal(env.Stderr)
	mode, err := progress.ParseMode(s.Progress, tty)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", settings.ErrInvalid, s.Origin("progress"), err)
	}
	if s.Jobs < 1 || s.PushRetry < 0 || s.MaxParallel < 0 {
		return fmt.Errorf("%w: --jobs must be at least 1, --push-retry and --max-parallel at least 0", settings.ErrInvalid)
	}
	dests, err := registry.Destinations(s.Repo, s.Tags, s.Destinations, s.Insecure)
	if err != nil {
		return err
	}
	kc, err := registry.NewKeychain(registry.Credentials{
		Registry:   s.Registry,
		Username:   s.Username,
		Password:   s.Password,
		DefaultFor: dests[0].Context().RegistryStr(),
		Config:     s.Config,
		Lookup:     env.Lookup,
	})
	if err != nil {
		return err
	}

	// From here on every byte of output passes through the mask.
	secrets := append(s.Secrets(), kc.Secrets()...)
	if s.Username != "" && s.Password != "" {
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(s.Username+":"+s.Password)))
	}
	stdout, stderr := newMask(env.Stdout, secrets), newMask(env.Stderr, secrets)
	env.Stdout, env.Stderr = stdout, stderr
	defer stderr.Flush()
	defer stdout.Flush()
	setLibraryLogs(stderr, s.Debug)
	defer setLibraryLogs(io.Discard, false)

	tr, err := registry.NewTransport(registry.TransportOptions{CACert: s.RegistryCertificate, SkipVerify: s.SkipTLSVerify, Timeout: s.RegistryTimeout})
	if err != nil {
		return fmt.Errorf("%w: %w", settings.ErrInvalid, err)
	}
	pr := progress.New(stderr, mode)
	defer pr.Close()
	if s.Debug {
		for _, kv := range s.Masked() {
			pr.Printf("setting %s=%s (%s)", kv[0], kv[1], s.Origin(kv[0]))
		}
	}

	var d *daemon.Daemon
	if !s.DaemonOff {
		d = daemon.New(s.DockerHost)
	}
	var fallbacks []string
	if s.Repo != "" {
		for _, t := range dests {
			if t.Context().Name() == mustRepo(s.Repo, s.Insecure) {
				fallbacks = append(fallbacks, t.Name())
			}
		}
	}
	start := time.Now()
	img, err := source.Open(ctx, source.Request{
		TarPath:   s.SourceTarPath,
		Image:     s.SourceImage,
		Fallbacks: fallbacks,
		Daemon:    d,
		Remote:    []remote.Option{remote.WithAuthFromKeychain(kc), remote.WithTransport(tr)},
		Insecure:  s.Insecure,
		GzipLevel: gzipLevel,
		Logf:      pr.Printf,
	})
	if err != nil {
		return err
	}
	defer img.Close()
	pr.Printf("source: %s, %s (ready in %.2fs)", img.From, img.Digest, time.Since(start).Seconds())
	pr.Printf("pushing to %d destination(s)", len(dests))

	results := publish.Push(ctx, img.Artifact, dests, publish.Options{
		Keychain:    kc,
		Transport:   tr,
		Jobs:        s.Jobs,
		MaxParallel: s.MaxParallel,
		Retries:     s.PushRetry,
		FailFast:    s.FailFast,
		Progress:    pr,
	})
	pr.Close()
	failed := summary(stderr, results)
	if err := writeOutputs(s, img.Digest.String(), results); err != nil {
		return err
	}
	if failed > 0 {
		err := fmt.Errorf("%w: %d of %d destination(s) failed (see above)", publish.ErrPush, failed, len(results))
		for _, r := range results {
			if errors.Is(r.Err, source.ErrDigestMismatch) {
				// The input is bad, not the registry: exit as for a bad source.
				return fmt.Errorf("%w: %w", err, source.ErrDigestMismatch)
			}
		}
		return err
	}
	fmt.Fprintln(stdout, img.Digest.String())
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
func writeOutputs(s *settings.Settings, digest string, results []publish.Result) error {
	var ok []publish.Result
	for _, r := range results {
		if r.Err == nil {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	if s.DigestFile != "" {
		if err := outputs.Digest(s.DigestFile, digest); err != nil {
			return err
		}
	}
	if s.OutputFile != "" {
		refs := make([]string, len(ok))
		for i, r := range ok {
			refs[i] = r.Ref
		}
		first, _ := name.NewTag(ok[0].Ref, name.WeakValidation)
		vars := map[string]string{
			"digest":           digest,
			"IMAGE":            ok[0].Ref,
			"IMAGE_REFS":       strings.Join(refs, ","),
			"IMAGE_DIGEST_REF": first.Context().Name() + "@" + digest,
		}
		if err := outputs.Env(s.OutputFile, vars); err != nil {
			return err
		}
	}
	if s.ArtifactFile != "" {
		a := outputs.Artifact{Data: outputs.ArtifactData{RegistryType: s.RegistryType, RegistryURL: registryURL(s, ok[0].Ref)}}
		for _, r := range ok {
			a.Data.Images = append(a.Data.Images, outputs.ArtifactImage{Image: r.Ref, Digest: digest})
		}
		if err := outputs.WriteArtifact(s.ArtifactFile, a); err != nil {
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
