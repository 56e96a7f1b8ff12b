// Package step runs one Build and Push step: a typed Step in, a Result
// out. Run reads no environment variable, changes no working directory and
// writes to no process-wide logger; everything it prints goes to the
// step's own sinks. The plugin, the CLI and (next) the pipeline runner
// call it, and several steps may run in one process at once.
//
// A step is a build (BuildKit or Kaniko) or a pre-built source, then the
// publishers: the registries (in parallel), and for a build the tarball,
// the Docker daemon and the workspace image store; then the outputs.
package step

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/daemon"
	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/publish"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/runid"
	"github.com/hoist-build/hoist/internal/scan"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/sign"
	"github.com/hoist-build/hoist/internal/source"
)

// ErrInvalid marks a step that is wrong before anything runs: the settings
// it came from.
var ErrInvalid = settings.ErrInvalid

// Step is one step, every path absolute, every value checked.
type Step struct {
	// Build builds the image; when nil, Source names the pre-built image
	// to push (push-only).
	Build  *Build
	Source *source.Request
	// NoPush keeps a build: the outputs of Build, nothing pushed.
	NoPush bool
	// Scan, when set, scans the image with Trivy before anything is
	// pushed, and pushes nothing when the gate fails; ScanOnly scans
	// Source and pushes nothing (hoist scan).
	Scan     *scan.Options
	ScanOnly bool
	// RequireScan is the scan records directory where the image's digest
	// must have a passing record before it is pushed ("" for none).
	RequireScan string
	// Sign, when set, signs the pushed digest in every destination
	// repository after the push.
	Sign *sign.Signer
	// Attest is what is attached to the signed digest (SBOM, provenance).
	Attest Attest
	// Verify, when set, is hoist verify: nothing is built or pushed.
	Verify *VerifyRequest

	// Destinations are every repo:tag the image goes to.
	Destinations []name.Tag
	Login        Login
	Transport    registry.TransportOptions
	Push         Push
	// GzipLevel compresses layers that arrive uncompressed (0: hoist's
	// default); KeepUncompressed pushes them as they are.
	GzipLevel        int
	KeepUncompressed bool
	// CompressCache is the workspace's compression cache ("" for none).
	CompressCache string
	// Run is the pipeline run the step belongs to: the workspace's state
	// (scan records, the compression cache, the image store) vouches for
	// something only when this run made it.
	Run      runid.Run
	Insecure bool
	// TempDir holds temporary layers and tarballs.
	TempDir string
	// Workspace is the working directory, whose content hoist does not
	// own: every file the step writes in it (outputs, tarball, image
	// store, compression cache, scan records and reports) follows no
	// symbolic link out of it (files.Workspace).
	Workspace files.Workspace
	// UseDaemon allows the Docker daemon at DockerHost.
	UseDaemon  bool
	DockerHost string
	Outputs    Outputs

	// Sinks: Stdout and Stderr are masked with Mask by the caller; the
	// step adds to Mask the credentials it obtains. Terminal, when set, is
	// the unmasked terminal BuildKit draws its display on.
	Stdout, Stderr io.Writer
	Terminal       io.Writer
	Mask           *mask.Set
	Progress       progress.Mode
	// Debug logs every registry request of the push.
	Debug bool
	// Notes are printed first (the settings with --debug, what the
	// settings chose).
	Notes []string
	// Version is hoist's version, for scan records and the provenance.
	Version string
}

// Login is how the step obtains credentials.
type Login struct {
	Static registry.Credentials
	Kind   kinds.Kind
	Kinds  *kinds.Config
	// Partial pushes to the registries it has credentials for when
	// another's cannot be obtained.
	Partial bool
}

// Push are the limits of the push.
type Push struct {
	Jobs, MaxParallel, Retries int
	FailFast                   bool
}

// Outputs are the files a CI system reads after the step.
type Outputs struct {
	DigestFile, EnvFile, ArtifactFile, MetadataFile string
	// TarPath is the IMAGE_TAR_PATH value, as the user gave it.
	TarPath string
	// ArtifactType and Registry fill the artifact file.
	ArtifactType, Registry string
}

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

// Run runs the step. The Result is returned also with an error, as far
// as the step got.
func Run(ctx context.Context, st Step) (*Result, error) {
	r, err := start(ctx, &st)
	if err != nil {
		return &Result{}, err
	}
	defer r.close()
	switch {
	case st.Verify != nil:
		err = r.verify(ctx)
	case st.ScanOnly:
		err = r.scanOnly(ctx)
	case st.Build != nil:
		err = r.build(ctx)
	default:
		err = r.pushOnly(ctx)
	}
	return &r.res, err
}

// runner is one running step.
type runner struct {
	st     *Step
	pr     *progress.Printer
	tr     http.RoundTripper
	kc     authn.Keychain // the cloud keychains, then the static and docker-config ones
	clouds []kinds.Keychain
	daemon *daemon.Daemon
	// loginFailed holds registries whose credentials could not be had,
	// when Login.Partial lets the step go on without them.
	loginFailed map[string]error
	// regKC is the keychain of the settings (logins, docker config).
	regKC *registry.Keychain
	// scanner is the scan gate, when the step scans.
	scanner *scan.Scanner
	res     Result
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
}

func start(ctx context.Context, st *Step) (*runner, error) {
	if st.Mask == nil {
		st.Mask = &mask.Set{}
	}
	r := &runner{st: st, pr: progress.New(st.Stderr, st.Progress), started: time.Now()}
	if st.Sign != nil {
		// The key's decryption runs alongside the rest of the step; the
		// push writes no manifest until it has succeeded.
		go st.Sign.Unlock()
	}
	regKC, err := registry.NewKeychain(st.Login.Static)
	if err != nil {
		return nil, err
	}
	st.Mask.Add(regKC.Secrets()...)
	r.regKC = regKC
	topts := st.Transport
	topts.Logf = r.pr.Printf
	r.tr, err = registry.NewTransport(topts)
	if err != nil {
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
	kcfg := *st.Login.Kinds
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
	if st.Build == nil || !st.NoPush {
		if err := r.login(ctx); err != nil {
			r.close()
			return nil, err
		}
	}
	if st.UseDaemon {
		r.daemon = daemon.New(st.DockerHost)
	}
	if st.Scan != nil {
		// Trivy and its database are checked before anything is built
		// or pushed.
		o := *st.Scan
		o.Logf = r.pr.Printf
		if o.Remote, err = r.dbRemote(); err != nil {
			r.close()
			return nil, err
		}
		o.Stdout = st.Stderr
		if st.ScanOnly {
			o.Stdout = st.Stdout
		}
		if r.scanner, err = scan.New(ctx, o); err != nil {
			r.close()
			return nil, err
		}
	}
	return r, nil
}

func (r *runner) close() { r.pr.Close() }

// maskLearned adds to the mask what logins obtained so far: the clouds'
// tokens and what credential helpers returned.
func (r *runner) maskLearned() {
	for _, kc := range r.clouds {
		r.st.Mask.Add(kc.Secrets()...)
	}
	r.st.Mask.Add(r.regKC.Secrets()...)
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
	req := *r.st.Source
	req.Daemon = r.daemon
	req.Access = registry.Access{Transport: r.tr, Keychain: r.kc}
	return source.Open(ctx, r.sourceRequest(req))
}

// dbRemote is registry access for the vulnerability database: the
// step's TLS settings and logins, but plain HTTP from loopback only,
// whatever PLUGIN_INSECURE says: the database decides verdicts.
func (r *runner) dbRemote() ([]remote.Option, error) {
	o := r.st.Transport
	o.Insecure = false
	o.HTTPRefused = "The vulnerability database is fetched over HTTPS, or over plain HTTP from loopback only; no setting allows plain HTTP for it (PLUGIN_INSECURE does not apply): serve the mirror over HTTPS (PLUGIN_REGISTRY_CERTIFICATE for a private CA)"
	o.Logf = r.pr.Printf
	tr, err := registry.NewTransport(o)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return []remote.Option{remote.WithAuthFromKeychain(r.kc), remote.WithTransport(tr)}, nil
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
	var dests []name.Tag
	var skipped []publish.Result
	for _, d := range r.st.Destinations {
		if err := r.loginFailed[d.RegistryStr()]; err != nil {
			skipped = append(skipped, publish.Result{Ref: d.Name(), Status: "failed", Err: fmt.Errorf("%w: %w", publish.ErrPush, err)})
			continue
		}
		dests = append(dests, d)
	}
	r.from = img.From
	release, err := r.gate(ctx, img)
	defer release()
	if err != nil {
		return err
	}
	r.pr.Printf("pushing to %d destination(s)", len(dests))
	o := publish.Options{
		Access:       registry.Access{Transport: r.tr, Keychain: r.kc},
		Jobs:         r.st.Push.Jobs,
		MaxParallel:  r.st.Push.MaxParallel,
		Retries:      r.st.Push.Retries,
		FailFast:     r.st.Push.FailFast,
		Progress:     r.pr,
		Events:       r.pr.Push,
		ContentCheck: r.alongside(ctx, img.Digest.String(), dests, img.CheckContent),
	}
	if r.st.Debug {
		o.Debugf = r.pr.Printf
	}
	results := publish.Push(ctx, img.Artifact, dests, o)
	r.pr.Close()
	if err := r.ready(); err != nil {
		// The key or the SBOM failed: no manifest was written.
		return err
	}
	results = append(results, skipped...)
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

// sign signs the digest once per repository that holds it, in parallel,
// and attaches the attestations. A signature that cannot be stored fails
// the step: the image is pushed but unsigned, and the error says so.
func (r *runner) sign(ctx context.Context, digest string, results []publish.Result) error {
	if r.st.Sign == nil {
		return nil
	}
	if err := r.provenance(); err != nil {
		return fmt.Errorf("the image is pushed but not signed: %w", err)
	}
	repos := map[string]name.Repository{}
	for _, res := range results {
		if res.Err != nil {
			continue
		}
		t, err := name.NewTag(res.Ref, name.WeakValidation)
		if err != nil {
			continue
		}
		repos[t.Context().Name()] = t.Context()
	}
	var kinds []string
	for _, a := range r.atts {
		if !slices.Contains(kinds, a.Kind) {
			kinds = append(kinds, a.Kind)
		}
	}
	with := ""
	if len(kinds) > 0 {
		with = " with " + strings.Join(kinds, ", ") + " attestations"
	}
	if err := r.st.Sign.Unlock(); err != nil {
		return fmt.Errorf("the image is pushed but not signed: %w", err)
	}
	if who, issuer := r.st.Sign.Identity(); who != "" {
		r.pr.Printf("keyless: Fulcio certified this step's key for %s (issuer %s)", who, issuer)
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for key, repo := range repos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p sign.Published
			var err error
			if prep := r.prepared[key]; prep != nil {
				p, err = prep.Commit(ctx)
			} else {
				// Not prepared alongside the push (it wrote no manifest,
				// or the preparation failed): all of it now.
				p, err = r.st.Sign.Publish(ctx, repo, digest, r.atts, registry.Access{Transport: r.tr, Keychain: r.kc})
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			r.res.Signed = append(r.res.Signed, key)
			how := "cosign's tags"
			if p.Referrers {
				how = "cosign's tags and OCI referrers"
			}
			r.pr.Printf("signed %s@%s%s (%s)", key, digest, with, how)
		}()
	}
	wg.Wait()
	sort.Strings(r.res.Signed)
	if len(errs) > 0 {
		return fmt.Errorf("the image is pushed but not signed everywhere: %w", errors.Join(errs...))
	}
	r.res.Attested = kinds
	return nil
}

// buildProgress is where BuildKit's progress goes, and in which mode: the
// terminal itself in TTY mode (its display needs one), else the masked
// stderr; nothing when quiet.
func (r *runner) buildProgress() (io.Writer, string) {
	switch r.pr.Mode() {
	case progress.TTY:
		if r.st.Terminal != nil {
			return r.st.Terminal, "tty"
		}
		return r.st.Stderr, "plain"
	case progress.Quiet:
		return nil, "quiet"
	}
	return r.st.Stderr, "plain"
}

// buildKit is a BuildKit builder on an engine, with the step's keychain
// for base images and its progress sinks.
func (r *runner) buildKit(eng *engine.Engine) *build.BuildKit {
	out, mode := r.buildProgress()
	return &build.BuildKit{Client: eng.Client, Keychain: r.kc, Progress: out, ProgressMode: mode, ContentDir: eng.ContentDir(), Docker: eng.Docker, Logf: r.pr.Printf}
}
