package step

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/runid"
	"github.com/hoist-build/hoist/internal/scan"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/source"
)

// ErrUnscanned is a push refused by PLUGIN_REQUIRE_SCAN: the digest has
// no passing scan record.
var ErrUnscanned = errors.New("not scanned")

// scanOf is the scan gate of the settings: Trivy, its cache, the policy,
// the reports. Every value is checked here, before anything runs.
func scanOf(s *settings.Settings, env Environ, path func(string) string) (*scan.Options, error) {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", s.Origin(flag), fmt.Sprintf(format, args...)))
	}
	o := &scan.Options{StaleWarn: s.ScanStaleDB == "warn", Timeout: s.ScanTimeout, TempDir: env.TempDir, Env: env.Environ, Records: path(s.ScanRecords),
		Workspace: files.Workspace(env.WorkDir)}
	p := &o.Policy
	for _, sc := range s.ScanScanners {
		sc = strings.ToLower(strings.TrimSpace(sc))
		switch {
		case slices.Contains(scan.Scanners, sc):
			if !slices.Contains(p.Scanners, sc) {
				p.Scanners = append(p.Scanners, sc)
			}
		case sc == "misconfig" || sc == "license":
			bad("scanners", "%s is a Trivy scanner hoist's gate does not run; it runs vuln and secret", sc)
		default:
			bad("scanners", "unknown scanner %q: want vuln and/or secret", sc)
		}
	}
	if len(p.Scanners) == 0 && len(s.ScanScanners) == 0 {
		bad("scanners", "no scanner: want vuln and/or secret")
	}
	for _, sev := range s.ScanSeverity {
		sev = strings.ToUpper(strings.TrimSpace(sev))
		if !slices.Contains(scan.Severities, sev) {
			bad("severity", "unknown severity %q: want %s", sev, strings.Join(scan.Severities, ", "))
			continue
		}
		p.Severities = append(p.Severities, sev)
	}
	p.IgnoreUnfixed = s.ScanIgnoreUnfixed
	if f := s.ScanIgnoreFile; f != "" {
		abs := path(f)
		b, err := readInput(path, f, maxConfigFile)
		switch {
		case err == nil:
			p.IgnoreFile, p.IgnoreDigest = abs, fmt.Sprintf("sha256:%x", sha256.Sum256(b))
		case errors.Is(err, os.ErrNotExist) && !s.IsSet("ignorefile"):
			// Trivy's default .trivyignore may be absent.
		default:
			bad("ignorefile", "the ignore file %s cannot be read: %v", abs, err)
		}
	}
	p.SkipFiles, p.SkipDirs = s.ScanSkipFiles, s.ScanSkipDirs
	if s.ScanExitCode < 0 || s.ScanExitCode > 255 {
		bad("exit-code", "%d is not an exit code (0 to 255)", s.ScanExitCode)
	}
	p.ExitCode = s.ScanExitCode
	if len(s.ScanOutput) > len(s.ScanFormat) {
		bad("output", "%d report files for %d formats (%s): give one --format per --output", len(s.ScanOutput), len(s.ScanFormat), strings.Join(s.ScanFormat, ","))
	}
	toStdout := 0
	for i, f := range s.ScanFormat {
		f = strings.ToLower(strings.TrimSpace(f))
		if !slices.Contains(scan.Formats, f) {
			bad("format", "unknown format %q: want %s", f, strings.Join(scan.Formats, ", "))
			continue
		}
		r := scan.Report{Format: f}
		if i < len(s.ScanOutput) && s.ScanOutput[i] != "" {
			r.Path = path(s.ScanOutput[i])
			if st, err := os.Stat(filepath.Dir(r.Path)); err != nil || !st.IsDir() {
				bad("output", "report %s: its directory %s does not exist (create it first; hoist does not guess at report paths)", r.Path, filepath.Dir(r.Path))
			} else if _, _, err := o.Workspace.Target(r.Path); err != nil {
				bad("output", "report %s: %v", r.Path, err)
			}
		} else if toStdout++; toStdout > 1 {
			bad("format", "several formats without a report file: give an --output for each format but one")
		}
		o.Reports = append(o.Reports, r)
	}
	switch s.ScanStaleDB {
	case "fail", "warn":
	default:
		bad("stale-db", "%q: want fail or warn", s.ScanStaleDB)
	}
	if s.ScanTimeout <= 0 {
		bad("scan-timeout", "want a positive duration")
	}
	o.DBRepositories = s.ScanDBRepository
	if s.ScanDBDigest != "" {
		if err := scan.CheckDigest(s.ScanDBDigest); err != nil {
			bad("db-digest", "%v", err)
		}
		o.DBDigest = s.ScanDBDigest
	}
	o.CacheDir = path(s.ScanCacheDir)
	if o.CacheDir == "" {
		o.CacheDir = defaultTrivyCache(env.Lookup, env.TempDir)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", settings.ErrInvalid, errors.Join(errs...))
	}
	pathList, _ := env.Lookup("PATH")
	trivy, err := scan.Find(program(s.ScanTrivy, path), pathList)
	if err != nil {
		return nil, err
	}
	o.Trivy = trivy
	return o, nil
}

// trivyLogins adds Trivy's own login for its database repositories to
// the step's logins for those registries (returned, with the secrets to
// mask), as hoist fetches the database:
// TRIVY_USERNAME and TRIVY_PASSWORD (the first pair when they list
// several), or TRIVY_REGISTRY_TOKEN, a registry token sent as a bearer
// token, which wins over them as it does in Trivy. The settings' own
// login for a registry wins over both.
func trivyLogins(dbRepos []string, lookup func(string) (string, bool)) (logins []registry.Login, secrets []string) {
	user, _ := lookup("TRIVY_USERNAME")
	pass, _ := lookup("TRIVY_PASSWORD")
	token, _ := lookup("TRIVY_REGISTRY_TOKEN")
	user, _, _ = strings.Cut(user, ",")
	pass, _, _ = strings.Cut(pass, ",")
	token = strings.TrimSpace(token)
	if user != "" && pass != "" {
		secrets = append(secrets, mask.LoginForms(user, pass)...)
	} else {
		user, pass = "", ""
	}
	if token != "" {
		secrets = append(secrets, token)
	}
	for _, repo := range dbRepos {
		ref, err := name.ParseReference(repo)
		if err != nil {
			continue
		}
		if user != "" {
			logins = append(logins, registry.Login{Registry: ref.Context().RegistryStr(), Username: user, Password: pass, Setting: "TRIVY_USERNAME/TRIVY_PASSWORD"})
		}
		if token != "" {
			logins = append(logins, registry.Login{Registry: ref.Context().RegistryStr(), Token: token, Setting: "TRIVY_REGISTRY_TOKEN"})
		}
	}
	return logins, secrets
}

// defaultTrivyCache is Trivy's own default cache directory.
func defaultTrivyCache(lookup func(string) (string, bool), tempDir string) string {
	if d, ok := lookup("XDG_CACHE_HOME"); ok && d != "" {
		return filepath.Join(d, "trivy")
	}
	if h, ok := lookup("HOME"); ok && h != "" {
		return filepath.Join(h, ".cache", "trivy")
	}
	return filepath.Join(tempDir, "trivy")
}

// gate scans img (PLUGIN_SCAN) and checks its record (PLUGIN_REQUIRE_SCAN)
// before anything is pushed, and starts the SBOM (PLUGIN_SBOM), which is
// written alongside the push from the images Trivy scanned. release ends
// the SBOM and removes those images.
func (r *runner) gate(ctx context.Context, img *source.Image) (release func(), err error) {
	release = func() {}
	if r.scanner != nil || r.st.Attest.SBOM {
		targets, done, err := img.ScanTargets(r.st.TempDir)
		if err != nil {
			return release, fmt.Errorf("%w: prepare %s for Trivy: %w", scan.ErrScanner, img.From, err)
		}
		release = done
		if r.scanner != nil {
			rec, err := r.scanImage(ctx, img, targets)
			r.res.Scan = rec
			if err != nil {
				return release, err
			}
		}
		if r.st.Attest.SBOM {
			sctx, cancel := context.WithCancel(ctx)
			r.sbomDone = make(chan struct{})
			go func() {
				defer close(r.sbomDone)
				r.sbomErr = r.sboms(sctx, img, targets)
			}()
			release = func() {
				cancel()
				<-r.sbomDone
				done()
			}
		}
	}
	if r.st.RequireScan == "" {
		return release, nil
	}
	rec, err := scan.ReadRecord(r.st.Workspace, r.st.RequireScan, img.Digest)
	if errors.Is(err, scan.ErrNoRecord) {
		return release, fmt.Errorf("%w: PLUGIN_REQUIRE_SCAN: %s (%s) has no scan record in %s: nothing was pushed; scan it first (hoist scan, or PLUGIN_SCAN=true on this step) with PLUGIN_SCAN_RECORDS pointing at the same directory", ErrUnscanned, img.Digest, img.From, r.st.RequireScan)
	}
	if err != nil {
		return release, fmt.Errorf("%w: PLUGIN_REQUIRE_SCAN: %w: nothing was pushed", ErrUnscanned, err)
	}
	// The records directory lies in the checkout: a record counts only
	// when this run made it.
	if err := r.st.Run.Made(ctx, rec.Run, rec.Path); err != nil {
		return release, fmt.Errorf("%w: PLUGIN_REQUIRE_SCAN: the scan record %s of %s is not this run's: %s: nothing was pushed; scan the image in this run (a scan step before this one, or PLUGIN_SCAN=true on this step)", ErrUnscanned, rec.Path, img.Digest, runid.Reason(err))
	}
	if !rec.Passed {
		return release, fmt.Errorf("%w: PLUGIN_REQUIRE_SCAN: the scan of %s %s (record %s, %s): nothing was pushed", ErrUnscanned, img.Digest, rec.Verdict(), rec.Path, rec.ScannedAt.Format("2006-01-02T15:04:05Z"))
	}
	r.res.Scan = rec
	r.pr.Printf("scan record: %s %s by Trivy %s on %s (%s)", img.Digest, rec.Verdict(), rec.Scanner.Version, rec.ScannedAt.Format("2006-01-02T15:04:05Z"), rec.Path)
	return release, nil
}

// scanImage runs the scanner on the image as it will be pushed.
func (r *runner) scanImage(ctx context.Context, img *source.Image, targets []source.ScanTarget) (*scan.Record, error) {
	sub := scan.Subject{Digest: img.Digest, From: img.From}
	if mt, err := img.Artifact.MediaType(); err == nil {
		sub.MediaType = string(mt)
	}
	for _, t := range targets {
		sub.Targets = append(sub.Targets, scanTarget(img, t))
	}
	r.pr.Printf("scan: %s (%s) with Trivy %s, scanners %s, severities %s", img.Digest, img.From, scan.TrivyVersion,
		strings.Join(r.st.Scan.Policy.Scanners, ","), strings.Join(r.st.Scan.Policy.Severities, ","))
	return r.scanner.Scan(ctx, sub, r.st.Version)
}

// scanOnly is hoist scan: open the source, scan it, write the digest file.
func (r *runner) scanOnly(ctx context.Context) error {
	img, err := r.openSource(ctx)
	if err != nil {
		return err
	}
	defer img.Close()
	r.res.Digest = img.Digest.String()
	targets, release, err := img.ScanTargets(r.st.TempDir)
	if err != nil {
		return fmt.Errorf("%w: prepare %s for Trivy: %w", scan.ErrScanner, img.From, err)
	}
	defer release()
	rec, err := r.scanImage(ctx, img, targets)
	r.res.Scan = rec
	if rec != nil {
		if werr := r.writeDigestAndEnv(img.Digest.String(), map[string]string{"digest": img.Digest.String(), "SCAN_RECORD": rec.Path, "SCAN_PASSED": fmt.Sprint(rec.Passed)}); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// ScanFromSettings is the step of hoist scan: the source of push-only
// (--source-tar-path or --source-image), scanned, nothing pushed.
func ScanFromSettings(s *settings.Settings, env Environ) (Step, error) {
	c := *s
	c.PushOnly, c.NoPush, c.Scan, c.RequireScan = true, false, true, false
	c.Repo, c.Destinations = "", nil
	env.ScanOnly = true
	st, err := FromSettings(&c, env)
	if err != nil {
		return st, err
	}
	// Checked as a step's, then dropped: hoist scan signs and attests
	// nothing.
	st.Sign, st.Attest = nil, Attest{}
	return st, nil
}

// checkForScan checks what Trivy reads of img before it reads it (see
// source.Image.CheckForScan): bytes that are not what their digests say
// are the source's error (exit 3), and nothing is scanned.
func checkForScan(img *source.Image) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := img.CheckForScan(ctx); err != nil {
			return fmt.Errorf("check %s before the scan: %w: nothing was scanned", img.From, err)
		}
		return nil
	}
}

// scanTarget is a source's image as the scanner takes it, its bytes
// checked before Trivy reads them.
func scanTarget(img *source.Image, t source.ScanTarget) scan.Target {
	return scan.Target{Input: t.Input, Layerless: t.Layerless, Config: t.Config, DiffIDs: t.DiffIDs, Platform: t.Platform, Check: checkForScan(img)}
}
