package step

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/provenance"
	"github.com/hoist-build/hoist/internal/publish"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/scan"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/sign"
	"github.com/hoist-build/hoist/internal/source"
)

// Attest is what a signing step attaches to the digest it signs.
type Attest struct {
	// SBOM attaches each image's CycloneDX SBOM, written by Trivy (with
	// SBOMScan when the step does not scan).
	SBOM     bool
	SBOMScan *scan.Options
	// Provenance, when set, is filled with what the step learns and
	// attached as a SLSA provenance v1 statement.
	Provenance *provenance.Facts
}

// alongside is the check the push runs alongside its uploads, before it
// writes any manifest: the source's content check (verify, when set),
// the signing key's decryption and the SBOM; then, for a signing step,
// the signatures and attestations of digest are made and stored in every
// repository of dests but for their manifests, which sign writes after
// the image's. ctx is the step's: what is prepared outlives the push.
func (r *runner) alongside(ctx context.Context, digest string, dests []name.Tag, verify func(context.Context) error) func(context.Context) error {
	if r.signer == nil && r.sbomDone == nil {
		return verify
	}
	return func(pctx context.Context) error {
		if verify != nil {
			if err := verify(pctx); err != nil {
				return err
			}
		}
		if err := r.ready(); err != nil {
			return err
		}
		r.prepare(ctx, digest, dests)
		return nil
	}
}

// prepare has every repository of dests prepared for signing, at once.
// A repository whose preparation fails is signed after the push (and
// fails there, saying the image is pushed but not signed).
func (r *runner) prepare(ctx context.Context, digest string, dests []name.Tag) {
	if r.signer == nil || r.provenance() != nil {
		return
	}
	repos := map[string]name.Repository{}
	for _, d := range dests {
		repos[d.Context().Name()] = d.Context()
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	r.prepared = map[string]*sign.Prepared{}
	for key, repo := range repos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p, err := r.signer.Prepare(ctx, repo, digest, r.atts, registry.Access{Transport: r.tr, Keychain: r.kc}); err == nil {
				mu.Lock()
				r.prepared[key] = p
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// ready waits for the signing key's decryption and the SBOM, and returns
// the first error.
func (r *runner) ready() error {
	if r.signer != nil {
		if err := r.signer.Unlock(); err != nil {
			return err
		}
	}
	if r.sbomDone != nil {
		<-r.sbomDone
		return r.sbomErr
	}
	return nil
}

// sboms writes the SBOM of every image of targets (one per platform) of
// img.
func (r *runner) sboms(ctx context.Context, img *source.Image, targets []source.ScanTarget) error {
	sc := r.scanner
	if sc == nil {
		o := *r.st.Attest.SBOMScan
		o.Logf = r.pr.Printf
		var err error
		if sc, err = scan.New(ctx, o); err != nil {
			return err
		}
	}
	start := time.Now()
	var froms []string
	for i, t := range targets {
		report := ""
		if sc == r.scanner {
			report = sc.Report(r.res.Scan, i)
		}
		b, from, err := sc.SBOM(ctx, scanTarget(img, t), report)
		if err != nil {
			return err
		}
		if !slices.Contains(froms, from) {
			froms = append(froms, from)
		}
		r.atts = append(r.atts, sign.Attestation{Kind: sign.KindSBOM, Predicate: b})
	}
	r.pr.Printf("sbom: %d CycloneDX SBOM(s) by Trivy %s from %s in %.1fs", len(targets), scan.TrivyVersion, strings.Join(froms, " and "), time.Since(start).Seconds())
	return nil
}

// provenance completes the step's provenance facts with what it did and
// adds the statement to the attestations.
func (r *runner) provenance() error {
	p := r.st.Attest.Provenance
	if p == nil || slices.ContainsFunc(r.atts, func(a sign.Attestation) bool { return a.Kind == sign.KindProvenance }) {
		// None asked, or made already (alongside the push).
		return nil
	}
	f := *p
	f.Hoist, f.Started, f.Finished = r.st.Version, r.started, time.Now()
	if b := r.st.Build; b != nil {
		var bf provenance.Build
		if f.Build != nil {
			bf = *f.Build
		}
		f.Builder = b.Tool
		if df := b.Request.Dockerfile; df != "" {
			if data, err := os.ReadFile(df); err == nil {
				bf.DockerfileDigest = fmt.Sprintf("sha256:%x", sha256.Sum256(data))
			}
		}
		if r.built != nil {
			f.BuilderVersion = r.built.BuilderVersion
			for _, d := range r.built.BaseImages {
				bf.BaseImages = append(bf.BaseImages, provenance.Dependency{URI: d.URI, Digest: d.Digest})
			}
		}
		f.Build = &bf
	} else {
		f.Builder, f.From = "push", r.from
	}
	if rec := r.res.Scan; rec != nil {
		s := &provenance.Scan{Record: rec.Path, Passed: rec.Passed, Verdict: rec.Verdict(),
			Scanner: rec.Scanner.Name + " " + rec.Scanner.Version, ScannedAt: rec.ScannedAt}
		if db := rec.Database; db != nil && db.Digest != "" {
			s.Database, s.DatabaseDigest = db.FetchedFrom, db.Digest
		}
		if data, err := os.ReadFile(rec.Path); err == nil {
			s.RecordDigest = fmt.Sprintf("sha256:%x", sha256.Sum256(data))
		}
		f.Scan = s
	}
	b, err := provenance.Predicate(f)
	if err != nil {
		return fmt.Errorf("%w: provenance: %w", sign.ErrSign, err)
	}
	r.atts = append(r.atts, sign.Attestation{Kind: sign.KindProvenance, Predicate: b})
	return nil
}

// attestOf reads PLUGIN_SBOM and PLUGIN_PROVENANCE: attestations are
// signed with the step's signing key, so each needs PLUGIN_SIGN (signing).
// A step that scans (scanning) writes the SBOM from the gate's report
// (Run has the gate list every package); one that does not runs Trivy
// for it (SBOMScan).
func attestOf(s *settings.Settings, env Environ, signing, scanning bool, path func(string) string) (Attest, error) {
	var a Attest
	if !s.SBOM && !s.Provenance {
		return a, nil
	}
	if !signing {
		var errs []error
		for _, f := range []struct {
			flag string
			on   bool
		}{{"sbom", s.SBOM}, {"provenance", s.Provenance}} {
			if f.on {
				errs = append(errs, fmt.Errorf("%s is a signed attestation of the pushed digest: set PLUGIN_SIGN=true with PLUGIN_SIGN_KEY as well", s.Origin(f.flag)))
			}
		}
		return a, fmt.Errorf("%w: %w", settings.ErrInvalid, errors.Join(errs...))
	}
	if s.SBOM {
		a.SBOM = true
		if !scanning {
			// Trivy writes the SBOM also when the step does not scan:
			// its package analysers need no database.
			pathList, _ := env.Lookup("PATH")
			trivy, err := scan.Find(program(s.ScanTrivy, path), pathList)
			if err != nil {
				return a, fmt.Errorf("PLUGIN_SBOM: %w", err)
			}
			cache := path(s.ScanCacheDir)
			if cache == "" {
				cache = defaultTrivyCache(env.Lookup, env.TempDir)
			}
			a.SBOMScan = &scan.Options{Trivy: trivy, CacheDir: cache, Timeout: s.ScanTimeout, TempDir: env.TempDir, Env: env.Environ}
		}
	}
	if s.Provenance {
		f := &provenance.Facts{}
		f.Source, f.Invocation = provenance.SourceFromCI(env.Lookup)
		a.Provenance = f
	}
	return a, nil
}

// rel is p relative to dir when it lies inside it, else p.
func rel(dir, p string) string {
	if r, err := filepath.Rel(dir, p); err == nil && r != ".." && !strings.HasPrefix(r, "../") {
		return r
	}
	return p
}

// provenanceBuild is what the provenance says of a build: the Dockerfile,
// context, target and platforms, the build arguments (those the mask
// knows to hold no secret, as provenance.SplitArgs makes them public; no
// proxy variable), the labels (likewise). The base images the builder
// resolves are added when the step runs (Run asks the builder for them
// when the step attests its provenance).
func provenanceBuild(s *settings.Settings, env Environ, b *Build, secrets *mask.Set) *provenance.Build {
	req := &b.Request
	pb := &provenance.Build{Dockerfile: rel(env.WorkDir, req.Dockerfile), Context: rel(env.WorkDir, req.ContextDir), Target: s.Target, Platforms: s.Platforms}
	args := map[string]string{}
	for _, kv := range req.BuildArgs {
		args[kv.Key] = kv.Value
	}
	pb.Args, pb.Withheld = provenance.SplitArgs(args, secrets.Contains)
	for _, kv := range req.Labels {
		// A label whose value holds a secret is left out.
		v, ok := provenance.Public(kv.Value)
		if !ok || secrets.Contains(v) {
			continue
		}
		if pb.Labels == nil {
			pb.Labels = map[string]string{}
		}
		pb.Labels[kv.Key] = v
	}
	return pb
}

// sign signs the digest once per repository that holds it, in parallel,
// and attaches the attestations. A signature that cannot be stored fails
// the step: the image is pushed but unsigned, and the error says so.
func (r *runner) sign(ctx context.Context, digest string, results []publish.Result) error {
	if r.signer == nil {
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
	if err := r.signer.Unlock(); err != nil {
		return fmt.Errorf("the image is pushed but not signed: %w", err)
	}
	if who, issuer := r.signer.Identity(); who != "" {
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
				p, err = r.signer.Publish(ctx, repo, digest, r.atts, registry.Access{Transport: r.tr, Keychain: r.kc})
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
