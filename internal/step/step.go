// Package step runs one Build and Push step: a Step (a plain
// configuration with an explicit Mode, checked by Validate; FromSettings
// makes one from the settings) and a Runtime (the output sinks, the mask,
// an engine) in, a Result out. Run reads no environment variable, changes
// no working directory and writes to no process-wide logger; everything it
// prints goes to the Runtime's sinks. The plugin, the CLI and the pipeline
// runner call it, and several steps may run in one process at once.
//
// A step is a build (BuildKit or Kaniko) or a pre-built source, then the
// publishers (publishers.go: the registries, in parallel; for a build the
// Docker daemon, the tarball and the workspace image store, which the one
// build streams); then the outputs.
package step

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/daemon"
	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/publish"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/scan"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/sign"
	"github.com/hoist-build/hoist/internal/source"
)

// ErrInvalid marks a step that is wrong before anything runs: the settings
// it came from, or a configuration Validate refuses.
var ErrInvalid = settings.ErrInvalid

// Result is what a step did.
type Result struct {
	// Digest is the image's digest (the daemon's image id for a build in
	// the daemon).
	Digest string
	// Pushed is set when the step pushed: Destinations holds one result
	// per destination.
	Pushed       bool
	Destinations []publish.Result
	// Scan is the scan record of the image, when the step scanned it or
	// required a record.
	Scan *scan.Record
	// Signed are the repositories that hold the image's signature (and
	// its attestations, Attested).
	Signed   []string
	Attested []string
	// Verification is what hoist verify found valid.
	Verification *sign.Verification
}

// Run runs the step st with the handles of rt. st is checked first
// (Validate): a configuration Run cannot take runs nothing. The Result is
// returned also with an error, as far as the step got.
func Run(ctx context.Context, st Step, rt Runtime) (*Result, error) {
	if err := st.Validate(); err != nil {
		return &Result{}, err
	}
	r, err := start(ctx, &st, rt)
	if err != nil {
		return &Result{}, err
	}
	defer r.close()
	switch st.Mode {
	case ModeVerify:
		err = r.verify(ctx)
	case ModeScanOnly:
		err = r.scanOnly(ctx)
	case ModeBuild, ModeBuildOnly:
		err = r.build(ctx)
	case ModePushOnly:
		if st.Promote != nil {
			err = r.promote(ctx)
			break
		}
		err = r.pushOnly(ctx)
	default:
		err = r.pushOnly(ctx)
	}
	return &r.res, err
}

// runner is one running step.
type runner struct {
	st *Step
	rt Runtime
	// mask is the run's mask (Runtime.Mask).
	mask   *mask.Set
	pr     *progress.Printer
	tr     http.RoundTripper
	kc     authn.Keychain // the cloud keychains, then the static and docker-config ones
	clouds []kinds.Keychain
	daemon *daemon.Daemon
	// signer is the run's signer (Step.Sign), its key decrypted once.
	signer *sign.Signer
	// loginFailed holds registries whose credentials could not be had,
	// when Login.Partial lets the step go on without them.
	loginFailed map[string]error
	// regKC is the keychain of the settings (logins, docker config).
	regKC *registry.Keychain
	// scanner is the scan gate, when the step scans.
	scanner *scan.Scanner
	// pubs are the step's publishers (runner.publishers).
	pubs *publishers
	res  Result
	// started is when the step started; built is the build's result;
	// atts are the attestations to attach to the signed digest.
	started time.Time
	built   *build.Result
	from    string
	atts    []sign.Attestation
	// sbomDone is closed when the SBOM, written alongside the push, is
	// done (sbomErr its error); nil when the step writes none.
	sbomDone chan struct{}
	sbomErr  error
	// prepared holds, by repository, the signatures and attestations
	// signed and stored (all but their manifests) alongside the push.
	prepared map[string]*sign.Prepared
	// existing are the repositories not pushed to because they hold one
	// of their tags already (Push.SkipExisting), by full name: the tag.
	existing map[string]name.Tag
}

func start(ctx context.Context, st *Step, rt Runtime) (*runner, error) {
	if rt.Mask == nil {
		rt.Mask = &mask.Set{}
	}
	rt.Mask.Merge(st.Secrets)
	if rt.Stdout == nil {
		rt.Stdout = io.Discard
	}
	if rt.Stderr == nil {
		rt.Stderr = io.Discard
	}
	r := &runner{st: st, rt: rt, mask: rt.Mask, pr: progress.New(rt.Stderr, st.Progress), started: time.Now()}
	if st.Sign != nil {
		var err error
		if r.signer, err = st.Sign.signer(); err != nil {
			r.close()
			return nil, err
		}
		// The key's decryption runs alongside the rest of the step; the
		// push writes no manifest until it has succeeded.
		go r.signer.Unlock()
	}
	regKC, err := registry.NewKeychain(st.Login.Static)
	if err != nil {
		r.close()
		return nil, err
	}
	r.mask.Add(regKC.Secrets()...)
	r.regKC = regKC
	topts := st.Transport
	topts.Logf = r.pr.Printf
	r.tr, err = registry.NewTransport(topts)
	if err != nil {
		r.close()
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for _, n := range st.Notes {
		r.pr.Printf("%s", n)
	}
	// A routed registry is a local stand-in (hoist pipeline run --local):
	// it takes no login, whatever its host's kind.
	var hosts []string
	for _, d := range st.Destinations {
		if !st.Transport.Routed(d.RegistryStr()) {
			hosts = append(hosts, d.RegistryStr())
		}
	}
	kcfg := st.Login.Kinds
	kcfg.HTTP = &http.Client{Transport: r.tr}
	kind := st.Login.Kind
	if kind != nil {
		if reg, err := kind.Registry(&kcfg); err == nil && st.Transport.Routed(strings.SplitN(reg, "/", 2)[0]) {
			kind = kinds.Docker{}
		}
	}
	r.clouds, err = kinds.Keychains(&kcfg, kind, hosts)
	if err != nil {
		r.close()
		return nil, err
	}
	var kcs []authn.Keychain
	for _, c := range r.clouds {
		kcs = append(kcs, c)
	}
	// A local stand-in gets no credentials, whoever would have them.
	r.kc = st.Transport.StandInKeychain(authn.NewMultiKeychain(append(kcs, regKC)...))
	if st.Mode != ModeBuildOnly {
		if err := r.login(ctx); err != nil {
			r.close()
			return nil, err
		}
	}
	if st.Push.SkipExisting && st.Mode.Pushes() {
		if err := r.skipExisting(ctx); err != nil {
			r.close()
			return nil, err
		}
	}
	if st.UseDaemon {
		r.daemon = daemon.New(st.DockerHost)
	}
	if r.pubs, err = r.publishers(ctx); err != nil {
		r.close()
		return nil, err
	}
	if st.Scan != nil {
		// Trivy and its database are checked before anything is built
		// or pushed.
		if r.scanner, err = r.newScanner(ctx); err != nil {
			r.close()
			return nil, err
		}
	}
	return r, nil
}

// newScanner is the scan gate of the step. With an SBOM to attach, the
// gate's report lists every package: the SBOM is converted from it.
func (r *runner) newScanner(ctx context.Context) (*scan.Scanner, error) {
	o := *r.st.Scan
	o.Logf = r.pr.Printf
	if r.st.Attest.SBOM {
		o.Policy.ListPackages = true
	}
	var err error
	if o.Access, err = r.dbAccess(); err != nil {
		return nil, err
	}
	o.Stdout = r.rt.Stderr
	if r.st.Mode == ModeScanOnly {
		o.Stdout = r.rt.Stdout
	}
	return scan.New(ctx, o)
}

func (r *runner) close() {
	if r.pubs != nil {
		r.pubs.close()
	}
	r.pr.Close()
}

// maskLearned adds to the mask what logins obtained so far: the clouds'
// tokens and what credential helpers returned.
func (r *runner) maskLearned() {
	for _, kc := range r.clouds {
		r.mask.Add(kc.Secrets()...)
	}
	r.mask.Add(r.regKC.Secrets()...)
}

// login obtains the credentials of every destination's registry before
// anything is pushed: a step whose credentials cannot all be obtained
// pushes nothing (unless Login.Partial). The tokens obtained join the
// mask. Each kind then readies its repositories (ECR makes sure they
// exist).
func (r *runner) login(ctx context.Context) error {
	seen := map[string]bool{}
	for _, d := range r.st.Destinations {
		reg := d.Context().Registry
		if seen[reg.RegistryStr()] {
			continue
		}
		seen[reg.RegistryStr()] = true
		a, err := authn.Resolve(ctx, r.kc, reg)
		if err == nil {
			_, err = a.Authorization()
		}
		if err != nil {
			err = fmt.Errorf("credentials for %s: %w", reg.RegistryStr(), err)
			if !r.st.Login.Partial {
				return err
			}
			// Asked to go on: the registry's destinations fail, the
			// others are pushed.
			if r.loginFailed == nil {
				r.loginFailed = map[string]error{}
			}
			r.loginFailed[reg.RegistryStr()] = err
			r.pr.Printf("%v; its destinations are skipped (PLUGIN_PARTIAL_LOGIN)", err)
		}
	}
	r.maskLearned()
	for _, kc := range r.clouds {
		var repos []string
		done := map[string]bool{}
		for _, d := range r.st.Destinations {
			repo := d.Context()
			if kc.Serves(repo.RegistryStr()) && !done[repo.Name()] && r.loginFailed[repo.RegistryStr()] == nil {
				done[repo.Name()] = true
				repos = append(repos, repo.RegistryStr()+"/"+repo.RepositoryStr())
			}
		}
		if err := kc.Prepare(ctx, repos); err != nil {
			return err
		}
	}
	return nil
}

// pushOnly finds the pre-built image and pushes it everywhere.
func (r *runner) pushOnly(ctx context.Context) error {
	start := time.Now()
	img, err := r.openSource(ctx)
	if err != nil {
		return err
	}
	defer img.Close()
	r.pr.Printf("source: %s, %s (ready in %.2fs)", img.From, img.Digest, time.Since(start).Seconds())
	return r.push(ctx, img, nil)
}

// openSource opens the step's pre-built image, with the daemon and the
// registries the step may use.
func (r *runner) openSource(ctx context.Context) (*source.Image, error) {
	src := r.st.Source
	req := source.Request{TarPath: src.TarPath, Image: src.Image, Fallbacks: src.Fallbacks, Store: src.Store}
	req.Daemon = r.daemon
	req.Access = registry.Access{Transport: r.tr, Keychain: r.kc}
	return source.Open(ctx, r.sourceRequest(req))
}

// dbAccess is registry access for the vulnerability database: the
// step's TLS settings and logins, but plain HTTP from loopback only,
// whatever PLUGIN_INSECURE says: the database decides verdicts.
func (r *runner) dbAccess() (registry.Access, error) {
	o := r.st.Transport
	o.Insecure = false
	o.HTTPRefused = "The vulnerability database is fetched over HTTPS, or over plain HTTP from loopback only; no setting allows plain HTTP for it (PLUGIN_INSECURE does not apply): serve the mirror over HTTPS (PLUGIN_REGISTRY_CERTIFICATE for a private CA)"
	o.Logf = r.pr.Printf
	tr, err := registry.NewTransport(o)
	if err != nil {
		return registry.Access{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return registry.Access{Transport: tr, Keychain: r.kc}, nil
}

// sourceRequest completes a source request with what every source shares:
// how uncompressed layers are treated, where temporary files go, logging.
func (r *runner) sourceRequest(req source.Request) source.Request {
	req.Insecure = r.st.Insecure
	req.TempDir = r.st.TempDir
	// Layers that arrive uncompressed are gzipped once, at level 1 of
	// klauspost/compress unless told otherwise (docs/benchmarks.md).
	req.GzipLevel = r.st.GzipLevel
	req.KeepUncompressed = r.st.KeepUncompressed
	req.CompressCache = r.st.CompressCache
	req.Run = r.st.Run
	req.Workspace = r.st.Workspace
	req.Logf = r.pr.Printf
	return req
}

// push publishes img to every destination and writes the outputs; extra
// holds more DRONE_OUTPUT keys.
func (r *runner) push(ctx context.Context, img *source.Image, extra map[string]string) error {
	reg := r.pubs.registries
	dests := reg.pushed()
	r.from = img.From
	release, err := r.gate(ctx, img)
	defer release()
	if err != nil {
		return err
	}
	r.pr.Printf("pushing to %d destination(s)", len(dests))
	pushed, err := reg.Publish(ctx, &Image{Digest: img.Digest.String(), Source: img, Check: r.alongside(ctx, img.Digest.String(), dests, img.CheckContent)})
	if err != nil {
		return err
	}
	results := pushed.Results
	r.pr.Close()
	if err := r.ready(); err != nil {
		// The key or the SBOM failed: no manifest was written.
		return err
	}
	r.res.Digest, r.res.Pushed, r.res.Destinations = img.Digest.String(), true, results
	failed := 0
	for _, res := range results {
		if res.Err != nil {
			failed++
		}
	}
	if err := r.writeOutputs(img.Digest.String(), results, extra); err != nil {
		return err
	}
	if err := r.sign(ctx, img.Digest.String(), results); err != nil {
		return err
	}
	var refs []string
	for _, res := range results {
		if res.Err == nil {
			refs = append(refs, res.Ref)
		}
	}
	if len(refs) > 0 {
		if err := r.writeCard(img.Digest.String(), refs, true, artifactSize(img.Artifact)); err != nil {
			return fmt.Errorf("card %s: %w", r.st.Outputs.CardPath, err)
		}
	}
	if failed > 0 {
		err := fmt.Errorf("%w: %d of %d destination(s) failed (see above)", publish.ErrPush, failed, len(results))
		for _, res := range results {
			for _, bad := range []error{source.ErrDigestMismatch, source.ErrBadInput} {
				if errors.Is(res.Err, bad) {
					// The input is bad, not the registry: exit as for a bad source.
					return fmt.Errorf("%w: %w", err, bad)
				}
			}
		}
		return err
	}
	return nil
}

// buildProgress is where BuildKit's progress goes, and in which mode: the
// terminal itself in TTY mode (its display needs one), else the masked
// stderr; nothing when quiet.
func (r *runner) buildProgress() (io.Writer, string) {
	switch r.pr.Mode() {
	case progress.TTY:
		if r.rt.Terminal != nil {
			return r.rt.Terminal, "tty"
		}
		return r.rt.Stderr, "plain"
	case progress.Quiet:
		return nil, "quiet"
	}
	return r.rt.Stderr, "plain"
}

// buildKit is a BuildKit builder on an engine, with the step's keychain
// for base images and its progress sinks.
func (r *runner) buildKit(eng *engine.Engine) *build.BuildKit {
	out, mode := r.buildProgress()
	return &build.BuildKit{Client: eng.Client, Keychain: r.kc, Progress: out, ProgressMode: mode, ContentDir: eng.ContentDir(), Docker: eng.Docker, Addr: eng.Addr, Logf: r.pr.Printf}
}
