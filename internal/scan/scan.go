// Package scan is hoist's scan gate: it runs Trivy, a pinned program
// beside hoist, on the exact image a step pushes (or hoist scan names),
// decides the verdict from Trivy's own report, and records it in the
// workspace, keyed by the image's manifest digest, where a later push-only
// step (any process) looks for a passing record before it pushes.
//
// Nothing here reads the environment: the command layer resolves the
// Trivy executable and the cache directory.
package scan

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hoist-build/hoist/internal/registry"
	"golang.org/x/mod/semver"

	"github.com/hoist-build/hoist/internal/envlist"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/runid"
)

// TrivyVersion is the Trivy release hoist runs: tools/trivy/go.mod pins
// it (a test checks they agree), scripts/setup.sh builds it, the plugin
// images carry it, and a Trivy of any other version is refused.
const TrivyVersion = "0.74.0"

// DBSchema is the version of the vulnerability database schema Trivy
// TrivyVersion reads.
const DBSchema = 2

var (
	// ErrScanner marks a scan that could not run: Trivy missing or of
	// another version, no usable database, Trivy failing.
	ErrScanner = errors.New("scanner")
	// ErrInvalid marks a scan setting that is wrong.
	ErrInvalid = errors.New("invalid scan setting")
)

// GateError is a scan whose gate failed: findings remain after the
// policy's filters. Code is the exit code the policy asks for.
type GateError struct {
	Digest string
	Counts map[string]int
	Code   int
}

func (e *GateError) Error() string {
	return fmt.Sprintf("scan gate failed for %s: %s (Trivy found them with the policy above; fix the image, or adjust --severity, --ignore-unfixed or the ignore file)", e.Digest, countsText(e.Counts))
}

// Formats are the report formats hoist passes to Trivy.
var Formats = []string{"table", "json", "sarif", "cyclonedx", "spdx-json"}

// Severities are Trivy's, lowest first.
var Severities = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// Scanners are the Trivy scanners the gate runs.
var Scanners = []string{"vuln", "secret"}

// Policy is what the gate applies: Trivy's filters and the exit code.
type Policy struct {
	Scanners      []string `json:"scanners"`
	Severities    []string `json:"severities"`
	IgnoreUnfixed bool     `json:"ignoreUnfixed"`
	// IgnoreFile is the ignore file applied ("" for none), and
	// IgnoreDigest its content's digest.
	IgnoreFile   string   `json:"ignoreFile,omitempty"`
	IgnoreDigest string   `json:"ignoreFileDigest,omitempty"`
	SkipFiles    []string `json:"skipFiles,omitempty"`
	SkipDirs     []string `json:"skipDirs,omitempty"`
	// ExitCode is the exit code when the gate fails; 0 reports only.
	ExitCode int `json:"exitCode"`
	// ListPackages keeps every package in Trivy's JSON report (its
	// --list-all-pkgs), from which the SBOM is written.
	ListPackages bool `json:"listAllPkgs,omitempty"`
}

func (p Policy) vuln() bool { return slices.Contains(p.Scanners, "vuln") }

// Packages says whether the gate's reports list every package: a gate
// with the vuln scanner and ListPackages.
func (p Policy) Packages() bool { return p.vuln() && p.ListPackages }

// Report is one report a scan writes: Path "" is the Stdout writer.
type Report struct {
	Format string `json:"format"`
	Path   string `json:"path,omitempty"`
}

// Options configure a Scanner.
type Options struct {
	// Trivy is the executable's path.
	Trivy string
	// CacheDir is Trivy's cache: CacheDir/db holds the database.
	CacheDir string
	// DBRepositories are OCI references Trivy fetches its database from
	// when the cache has no usable one.
	DBRepositories []string
	// StaleWarn scans with a database past its NextUpdate (a warning)
	// instead of failing.
	StaleWarn bool
	// DBDigest, when set, pins the database: the manifest digest of the
	// artifact it must come from (PLUGIN_SCAN_DB_DIGEST).
	DBDigest string
	// Access is how the database repositories are reached: the step's
	// transport (TLS verified, plain HTTP to loopback only) and keychain.
	// hoist fetches the database itself; Trivy never goes to the network.
	Access  registry.Access
	Policy  Policy
	Reports []Report
	// Stdout receives the report without a path (hoist scan's standard
	// output, or the step's log).
	Stdout io.Writer
	// Timeout bounds one Trivy run.
	Timeout time.Duration
	// TempDir holds Trivy's JSON report.
	TempDir string
	// Records is the directory scan records are written to.
	Records string
	// Workspace is where records and reports follow no symbolic link
	// out (files.Workspace).
	Workspace files.Workspace
	// Env is the environment Trivy's own is taken from: only the
	// variables of trivyEnv pass (see there); the flags hoist passes win
	// over them.
	Env []string
	// Labels go into every record as they are (the pipeline's AquaTrivy
	// target name and variant).
	Labels map[string]string
	// Run is the step's pipeline run: its records carry its identity, and
	// a kept record is reused only when this run made it.
	Run runid.Run
	// Now is the clock (tests); nil is time.Now.
	Now  func() time.Time
	Logf func(format string, args ...any)
}

// Scanner runs Trivy with one policy.
type Scanner struct {
	o  Options
	db *DBInfo
}

// DBInfo is the vulnerability database a scan used.
type DBInfo struct {
	Schema       int       `json:"schema"`
	UpdatedAt    time.Time `json:"updatedAt"`
	NextUpdate   time.Time `json:"nextUpdate"`
	DownloadedAt time.Time `json:"downloadedAt,omitzero"`
	Dir          string    `json:"dir"`
	// Repositories are where it may have come from.
	Repositories []string `json:"repositories,omitempty"`
	// Digest is the manifest digest of the artifact hoist fetched it
	// from, and FetchedFrom that artifact's reference; both are empty
	// for a database hoist did not fetch in this run (its origin is
	// unknown: see readOrigin).
	Digest      string `json:"digest,omitempty"`
	FetchedFrom string `json:"fetchedFrom,omitempty"`
	Stale       bool   `json:"stale,omitempty"`
	// unknown says why the database vouches for no digest (Digest is
	// empty): hoist did not fetch it in this run, or it changed since.
	unknown string
}

// New checks Trivy (present, the pinned version) and, when the policy
// scans for vulnerabilities, the database: present, of Trivy's schema and
// not stale, fetched from the database repositories when it is not. Every
// problem is an error that says how to mend it, before anything is built
// or pushed.
func New(ctx context.Context, o Options) (*Scanner, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	// Trivy runs in a directory of its own (runPriority): every path it
	// is given is absolute.
	for _, p := range []*string{&o.CacheDir, &o.TempDir, &o.Records} {
		*p = absPath(*p)
	}
	s := &Scanner{o: o}
	if err := s.checkVersion(ctx); err != nil {
		return nil, err
	}
	if !o.Policy.vuln() {
		return s, nil
	}
	db, err := s.database(ctx)
	if err != nil {
		return nil, err
	}
	s.db = db
	return s, nil
}

// Find returns the Trivy executable: name itself when it is a path, else
// the first match on pathList (the step's PATH), else the file beside
// hoist's own executable.
func Find(name, pathList string) (string, error) {
	if p, ok := envlist.LookPath(name, pathList, envlist.SelfDir()); ok {
		return p, nil
	}
	if strings.ContainsRune(name, filepath.Separator) {
		return "", fmt.Errorf("%w: the Trivy executable %s does not exist or is not executable (PLUGIN_SCAN_TRIVY)", ErrScanner, name)
	}
	return "", fmt.Errorf("%w: Trivy (%s) is neither on PATH nor beside hoist; hoist runs Trivy %s: use a scan variant of hoist's plugin images (hoist/kaniko-scan, hoist/buildkit-scan), or build it with GOEXPERIMENT=jsonv2 CGO_ENABLED=0 go install github.com/aquasecurity/trivy/cmd/trivy@v%s and put it on PATH (or set PLUGIN_SCAN_TRIVY)", ErrScanner, name, TrivyVersion, TrivyVersion)
}

// checkVersion compares Trivy's version with TrivyVersion: the module
// version its Go build information records (read from the file, without
// running it), else what trivy --version prints.
func (s *Scanner) checkVersion(ctx context.Context) error {
	var v struct{ Version string }
	if bi, err := buildinfo.ReadFile(s.o.Trivy); err == nil && bi.Main.Path == "github.com/aquasecurity/trivy" && semver.IsValid(bi.Main.Version) {
		v.Version = bi.Main.Version
	} else {
		out, err := s.run(ctx, "version", "--version", "--format", "json", "--cache-dir", s.o.CacheDir)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(out, &v); err != nil || v.Version == "" {
			return fmt.Errorf("%w: %s --version did not print Trivy's version (%q); is it Trivy?", ErrScanner, s.o.Trivy, firstLine(out))
		}
	}
	if strings.TrimPrefix(v.Version, "v") != TrivyVersion {
		return fmt.Errorf("%w: %s is Trivy %s; hoist runs Trivy %s, whose flags, report format and database schema it was tested with: use hoist's scan image, or build Trivy v%s (GOEXPERIMENT=jsonv2 CGO_ENABLED=0 go install github.com/aquasecurity/trivy/cmd/trivy@v%s)", ErrScanner, s.o.Trivy, v.Version, TrivyVersion, TrivyVersion, TrivyVersion)
	}
	return nil
}

// dbDir is where Trivy keeps its database within the cache.
func (s *Scanner) dbDir() string { return filepath.Join(s.o.CacheDir, "db") }

// readDB reads the database's metadata; a missing or unreadable one is an
// error naming the file.
func (s *Scanner) readDB(ctx context.Context) (*DBInfo, error) {
	dir := s.dbDir()
	if st, err := os.Lstat(filepath.Join(dir, "trivy.db")); err != nil {
		return nil, fmt.Errorf("no vulnerability database at %s (no trivy.db)", dir)
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("no vulnerability database at %s (trivy.db is not a regular file: %s)", dir, st.Mode().Type())
	}
	b, err := readSmall(filepath.Join(dir, "metadata.json"), maxDBMeta)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no vulnerability database at %s (no metadata.json)", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("the vulnerability database at %s: %v", dir, err)
	}
	var m struct {
		Version                             int
		NextUpdate, UpdatedAt, DownloadedAt time.Time
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("the vulnerability database's %s is not valid JSON: %v", filepath.Join(dir, "metadata.json"), err)
	}
	d := &DBInfo{Schema: m.Version, UpdatedAt: m.UpdatedAt, NextUpdate: m.NextUpdate, DownloadedAt: m.DownloadedAt, Dir: dir, Repositories: s.o.DBRepositories}
	if o, why := s.readOrigin(ctx, dir, b); o != nil {
		d.Digest, d.FetchedFrom = o.Digest, o.Repository
	} else {
		d.unknown = why
	}
	d.Stale = !m.NextUpdate.IsZero() && s.o.Now().After(m.NextUpdate)
	return d, nil
}

// database returns a usable database, fetching one when the cache has
// none, one of another schema, or a stale one, and repositories are given.
func (s *Scanner) database(ctx context.Context) (*DBInfo, error) {
	// Scans sharing a cache (parallel steps) check and fetch the database
	// one at a time: the others then find it in place, never half written.
	unlock, err := s.lockCache(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	howTo := fmt.Sprintf("give --db-repository (PLUGIN_SCAN_DB_REPOSITORY: a registry mirroring ghcr.io/aquasecurity/trivy-db:%d), or put a database in %s with trivy image --download-db-only --cache-dir %s; --scanners secret scans without one", DBSchema, s.dbDir(), s.o.CacheDir)
	db, err := s.readDB(ctx)
	problem := ""
	switch {
	case err != nil:
		problem = err.Error()
	case db.Schema != DBSchema:
		problem = fmt.Sprintf("the vulnerability database at %s has schema %d; Trivy %s reads schema %d", db.Dir, db.Schema, TrivyVersion, DBSchema)
	case db.Stale:
		problem = fmt.Sprintf("the vulnerability database at %s is stale: updated %s, next update was due %s", db.Dir, db.UpdatedAt.Format(time.RFC3339), db.NextUpdate.Format(time.RFC3339))
	}
	// A pinned database is one hoist fetched, of that digest: a cache of
	// unknown origin (written by Trivy, by hand, restored from elsewhere)
	// is fetched again.
	pin := s.o.DBDigest
	pinProblem := ""
	switch {
	case pin == "" || db == nil:
	case db.Digest == "":
		pinProblem = fmt.Sprintf("the vulnerability database at %s was not fetched by hoist in this run, so it vouches for no digest (%s), and PLUGIN_SCAN_DB_DIGEST pins %s", db.Dir, db.unknown, pin)
	case db.Digest != pin:
		pinProblem = fmt.Sprintf("the vulnerability database at %s is %s (fetched from %s), but PLUGIN_SCAN_DB_DIGEST pins %s", db.Dir, db.Digest, db.FetchedFrom, pin)
	}
	if problem == "" && pinProblem == "" {
		return s.used(db), nil
	}
	if len(s.o.DBRepositories) == 0 {
		switch {
		case pinProblem != "" && db.Digest != "":
			return nil, fmt.Errorf("%w: %s: nothing was scanned; give --db-repository (PLUGIN_SCAN_DB_REPOSITORY) to fetch the pinned one", ErrDBDigest, pinProblem)
		case pinProblem != "":
			return nil, fmt.Errorf("%w: %s: give --db-repository (PLUGIN_SCAN_DB_REPOSITORY) to fetch the pinned one", ErrScanner, pinProblem)
		}
		if db != nil && db.Schema == DBSchema && db.Stale && s.o.StaleWarn {
			s.o.Logf("warning: %s; scanning with it (PLUGIN_SCAN_STALE_DB=warn)", problem)
			return s.used(db), nil
		}
		if db != nil && db.Schema == DBSchema && db.Stale {
			return nil, fmt.Errorf("%w: %s: %s, or set PLUGIN_SCAN_STALE_DB=warn to scan with it", ErrScanner, problem, howTo)
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrScanner, problem, howTo)
	}
	if problem == "" {
		problem = pinProblem
	}
	s.o.Logf("scan: %s; fetching it from %s", problem, strings.Join(s.o.DBRepositories, ", "))
	if err := s.fetchDB(ctx); err != nil {
		return nil, err
	}
	db, err = s.readDB(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: after fetching from %s: %v", ErrScanner, strings.Join(s.o.DBRepositories, ", "), err)
	}
	if db.Stale && !s.o.StaleWarn {
		return nil, fmt.Errorf("%w: the database fetched from %s is stale too (next update was due %s): refresh the mirror, or set PLUGIN_SCAN_STALE_DB=warn", ErrScanner, db.FetchedFrom, db.NextUpdate.Format(time.RFC3339))
	}
	return s.used(db), nil
}

// used is db, the database a scan uses: when its digest is unknown, the
// log says why the record and the provenance name none.
func (s *Scanner) used(db *DBInfo) *DBInfo {
	if db.Digest == "" {
		s.o.Logf("scan: the vulnerability database at %s is used with no known digest (%s): the scan record and the provenance name none; PLUGIN_SCAN_DB_DIGEST with --db-repository fetches a known one", db.Dir, db.unknown)
	}
	return db
}

// lockCache takes the cache's database lock, waiting at most the scan
// timeout for another scan's fetch.
func (s *Scanner) lockCache(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(s.o.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: the cache directory %s: %w", ErrScanner, s.o.CacheDir, err)
	}
	f, err := os.OpenFile(filepath.Join(s.o.CacheDir, "hoist-db.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrScanner, err)
	}
	deadline := time.Now().Add(s.o.Timeout)
	for syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.Close()
			return nil, fmt.Errorf("%w: another scan held the database of %s for longer than %s", ErrScanner, s.o.CacheDir, s.o.Timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// trivyEnv are the variables Trivy gets of hoist's environment, by
// allowlist: a step's environment holds registry passwords, cloud keys
// and the signing key, none of which Trivy needs. Trivy runs offline
// (hoist fetches the database itself, see db.go), so it gets no proxy,
// no CA and no login either: only where its programs, home and
// temporary files are. And no TRIVY_* setting (TRIVY_INSECURE,
// TRIVY_SERVER or TRIVY_DB_REPOSITORY would change what hoist decided,
// or send the image elsewhere).
var trivyEnv = []string{"PATH", "HOME", "TMPDIR", "XDG_CACHE_HOME"}

// maxStderr bounds what is kept of a Trivy run's standard error.
const maxStderr = 64 << 10

// Target is one image for Trivy: Input is what trivy image --input takes
// (a docker-archive, or an OCI layout directory@manifest digest), Config
// the image's config digest, which Trivy's report must name.
// Layerless, when set, is an OCI layout of the image's manifest and config
// only, which Trivy reads instead of Input when its cache holds every
// layer.
//
// Check, when set, checks the bytes Trivy reads at Input (their digests
// and diff_ids); it is called before Trivy reads them, and not when
// Trivy does not (a reused record, an SBOM converted from the report), so
// that Trivy and its layer cache (keyed by diff_id) never see unchecked
// bytes. Its error is returned as it is.
type Target struct {
	Input     string
	Layerless string
	Config    v1.Hash
	DiffIDs   []v1.Hash
	Platform  string
	Check     func(context.Context) error
}

// countsText is "2 CRITICAL, 1 HIGH" (highest first), or "no findings".
func countsText(c map[string]int) string {
	var parts []string
	for i := len(Severities) - 1; i >= 0; i-- {
		if n := c[Severities[i]]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, Severities[i]))
		}
	}
	if len(parts) == 0 {
		return "no findings"
	}
	return strings.Join(parts, ", ")
}
