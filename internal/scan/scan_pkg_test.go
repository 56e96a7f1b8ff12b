package scan_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/scan"
)

// (harness.Main removes the shared scan kit when the tests end.)
func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// image is a docker-archive of a one-layer image holding files, and its
// scan target and subject.
type image struct {
	archive string
	target  scan.Target
	digest  v1.Hash
}

func makeImage(t *testing.T, fs map[string][]byte) image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, b := range fs {
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(b)), ModTime: time.Unix(1700000000, 0)})
		tw.Write(b)
	}
	tw.Close()
	raw := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "image.tar")
	tag, _ := name.NewTag("hoist.test/scan/app:1")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigName()
	d, _ := img.Digest()
	diff, _ := layer.DiffID()
	return image{archive: p, digest: d, target: scan.Target{Input: p, Config: cfg, DiffIDs: []v1.Hash{diff}}}
}

// vulnerableImage holds the kit's Go program (go-cmp v0.7.0, which the
// kit's database calls CRITICAL) and a file with a GitHub token.
func vulnerableImage(t *testing.T, k *harness.ScanKit) image {
	t.Helper()
	prog, err := os.ReadFile(k.GoBinary)
	if err != nil {
		t.Fatal(err)
	}
	return makeImage(t, map[string][]byte{"app/vulnapp": prog, "app/settings.env": []byte("GITHUB_TOKEN=" + k.Secret + "\n")})
}

type setup struct {
	k       *harness.ScanKit
	ws      string
	records string
	stdout  *bytes.Buffer
	opts    scan.Options
}

func newSetup(t *testing.T, policy scan.Policy) *setup {
	t.Helper()
	k := harness.Scan(t)
	ws := t.TempDir()
	s := &setup{k: k, ws: ws, records: filepath.Join(ws, ".hoist", "scans"), stdout: &bytes.Buffer{}}
	s.opts = scan.Options{Trivy: k.Trivy, CacheDir: t.TempDir(), DBRepositories: []string{k.DBRef}, Policy: policy,
		Stdout: s.stdout, TempDir: t.TempDir(), Records: s.records, Workspace: files.Workspace(ws), Timeout: 5 * time.Minute,
		Env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}}
	return s
}

func allSeverities() []string { return append([]string(nil), scan.Severities...) }

// trivyCounts runs the real Trivy itself on the archive, with the
// database hoist fetched into cache, and counts its findings by
// severity: what the gate's counts must be.
func trivyCounts(t *testing.T, k *harness.ScanKit, cache, archive string, scanners, severities []string) map[string]int {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	harness.Run(t, []string{"HOME=" + t.TempDir()}, k.Trivy, "image", "--input", archive, "--cache-dir", cache, "--skip-db-update", "--skip-java-db-update",
		"--offline-scan", "--skip-version-check", "--disable-telemetry", "--quiet", "--cache-backend", "memory",
		"--scanners", strings.Join(scanners, ","), "--severity", strings.Join(severities, ","), "--format", "json", "--output", out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Results []struct {
			Vulnerabilities []struct{ Severity string }
			Secrets         []struct{ Severity string }
		}
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, r := range rep.Results {
		for _, v := range r.Vulnerabilities {
			counts[v.Severity]++
		}
		for _, v := range r.Secrets {
			counts[v.Severity]++
		}
	}
	return counts
}

// The gate on an image with a vulnerable Go module and a token: Trivy's
// findings (as the real Trivy counts them on its own) fail it with the
// policy's exit code, in a GateError and in the record written under the
// image's digest (read back from the workspace), which names the image's
// config, Trivy's version and the database hoist fetched, by the digest
// its registry holds (crane); the JSON report (a file) names the
// advisory, the table (standard output) too.
func TestGateFailsOnWhatTrivyFinds(t *testing.T) {
	t.Parallel()
	s := newSetup(t, scan.Policy{Scanners: []string{"vuln", "secret"}, Severities: allSeverities(), ExitCode: 7})
	jsonReport := filepath.Join(s.ws, "reports", "trivy.json")
	s.opts.Reports = []scan.Report{{Format: "json", Path: jsonReport}, {Format: "table"}}
	img := vulnerableImage(t, s.k)
	ctx := context.Background()
	sc, err := scan.New(ctx, s.opts)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	rec, err := sc.Scan(ctx, scan.Subject{Digest: img.digest, From: img.archive, Targets: []scan.Target{img.target}}, "test")
	var gate *scan.GateError
	if !errors.As(err, &gate) || gate.Code != 7 || gate.Digest != img.digest.String() {
		t.Fatalf("scan of a vulnerable image: %v, want a GateError with code 7 for %s", err, img.digest)
	}
	want := trivyCounts(t, s.k, s.opts.CacheDir, img.archive, []string{"vuln", "secret"}, allSeverities())
	if want["CRITICAL"] == 0 || len(want) == 0 {
		t.Fatalf("Trivy on its own finds %v: the test proves nothing", want)
	}
	if d := cmp.Diff(want, gate.Counts); d != "" {
		t.Errorf("the gate's counts differ from Trivy's (-trivy +gate):\n%s", d)
	}

	got, err := scan.ReadRecord(files.Workspace(s.ws), s.records, img.digest)
	if err != nil {
		t.Fatalf("read the record back: %v", err)
	}
	if got.Passed || got.Digest != img.digest.String() || !strings.HasPrefix(got.Verdict(), "FAILED") {
		t.Errorf("record: passed=%v digest=%s verdict %q", got.Passed, got.Digest, got.Verdict())
	}
	if d := cmp.Diff(want, got.Counts); d != "" {
		t.Errorf("the record's counts differ from Trivy's (-trivy +record):\n%s", d)
	}
	if len(got.Images) != 1 || got.Images[0].Config != img.target.Config.String() {
		t.Errorf("record images %+v, want the config %s", got.Images, img.target.Config)
	}
	if got.Scanner.Name != "trivy" || got.Scanner.Version != scan.TrivyVersion || got.Hoist != "test" {
		t.Errorf("record scanner %+v, hoist %q", got.Scanner, got.Hoist)
	}
	dbRegistry, _ := name.ParseReference(s.k.DBRef)
	dbDigest := strings.TrimSpace(harness.Run(t, nil, harness.Tool(t, "crane"), "digest", "--insecure", dbRegistry.String()))
	if got.Database == nil || got.Database.Digest != dbDigest || got.Database.Schema != scan.DBSchema {
		t.Errorf("record database %+v, want the one fetched from %s (%s)", got.Database, s.k.DBRef, dbDigest)
	}
	if rec == nil || rec.Path != got.Path {
		t.Errorf("Scan returned %+v", rec)
	}

	b, err := os.ReadFile(jsonReport)
	if err != nil {
		t.Fatalf("the JSON report: %v", err)
	}
	var rep struct {
		Metadata struct{ ImageID string }
	}
	if json.Unmarshal(b, &rep) != nil || rep.Metadata.ImageID != img.target.Config.String() || !bytes.Contains(b, []byte(harness.AdvGoCmp.ID)) {
		t.Errorf("the JSON report does not name the image's config and the advisory %s", harness.AdvGoCmp.ID)
	}
	if !strings.Contains(s.stdout.String(), harness.AdvGoCmp.ID) {
		t.Errorf("the table on standard output does not name %s:\n%s", harness.AdvGoCmp.ID, s.stdout)
	}
}

// The policy's filters are Trivy's: only CRITICAL vulnerabilities count
// with those settings (the token is a secret, not scanned), as Trivy
// itself counts them; exit code 0 reports without failing; a clean
// image passes and its record says so.
func TestPolicyFiltersAndVerdicts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, scan.Policy{Scanners: []string{"vuln"}, Severities: []string{"CRITICAL"}, ExitCode: 0})
	img := vulnerableImage(t, s.k)
	sc, err := scan.New(ctx, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := sc.Scan(ctx, scan.Subject{Digest: img.digest, From: img.archive, Targets: []scan.Target{img.target}}, "test")
	if err != nil {
		t.Fatalf("exit code 0 reports only: %v", err)
	}
	want := trivyCounts(t, s.k, s.opts.CacheDir, img.archive, []string{"vuln"}, []string{"CRITICAL"})
	if d := cmp.Diff(want, rec.Counts); d != "" || rec.Passed || rec.Findings != want["CRITICAL"] || len(want) != 1 {
		t.Errorf("counts %v (findings %d, passed %v), Trivy's %v: %s", rec.Counts, rec.Findings, rec.Passed, want, d)
	}

	clean := makeImage(t, map[string][]byte{"app/readme.txt": []byte("nothing to see\n")})
	s2 := newSetup(t, scan.Policy{Scanners: []string{"vuln", "secret"}, Severities: allSeverities(), ExitCode: 1})
	s2.opts.CacheDir = s.opts.CacheDir // the database is there already
	sc2, err := scan.New(ctx, s2.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc2.Scan(ctx, scan.Subject{Digest: clean.digest, From: clean.archive, Targets: []scan.Target{clean.target}}, "test"); err != nil {
		t.Fatalf("scan of a clean image: %v", err)
	}
	got, err := scan.ReadRecord(files.Workspace(s2.ws), s2.records, clean.digest)
	if err != nil || !got.Passed || got.Findings != 0 || got.Verdict() != "passed (no findings)" {
		t.Errorf("record of a clean image: %+v, %v", got, err)
	}
}

// The tie between what Trivy read and what is pushed: a target whose
// config or layers are not those of the archive Trivy reads is
// ErrScanner naming both, and no record is written.
func TestTrivyMustReadTheImageMeant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, scan.Policy{Scanners: []string{"secret"}, Severities: allSeverities(), ExitCode: 1})
	img := makeImage(t, map[string][]byte{"a.txt": []byte("a")})
	other := makeImage(t, map[string][]byte{"b.txt": []byte("b")})
	sc, err := scan.New(ctx, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	wrongConfig := img.target
	wrongConfig.Config = other.target.Config
	wrongLayers := img.target
	wrongLayers.DiffIDs = other.target.DiffIDs
	for what, tgt := range map[string]scan.Target{"config": wrongConfig, "layers": wrongLayers} {
		_, err := sc.Scan(ctx, scan.Subject{Digest: img.digest, From: img.archive, Targets: []scan.Target{tgt}}, "test")
		if !errors.Is(err, scan.ErrScanner) || !strings.Contains(err.Error(), "Trivy analysed") {
			t.Errorf("another image's %s: %v, want ErrScanner saying what Trivy analysed", what, err)
		}
		if _, err := scan.ReadRecord(files.Workspace(s.ws), s.records, img.digest); !errors.Is(err, scan.ErrNoRecord) {
			t.Errorf("another image's %s: a record was written (%v)", what, err)
		}
	}
	if _, err := sc.Scan(ctx, scan.Subject{Digest: img.digest, From: img.archive}, "test"); !errors.Is(err, scan.ErrScanner) {
		t.Errorf("a subject without targets: %v", err)
	}
}

// The database can be pinned to the digest of the artifact it is
// fetched from: the right digest scans, another is ErrDBDigest before
// anything is scanned.
func TestDatabasePin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := harness.Scan(t)
	dbRef, _ := name.ParseReference(k.DBRef)
	pin := strings.TrimSpace(harness.Run(t, nil, harness.Tool(t, "crane"), "digest", "--insecure", dbRef.String()))
	s := newSetup(t, scan.Policy{Scanners: []string{"vuln"}, Severities: allSeverities(), ExitCode: 1})
	s.opts.DBDigest = pin
	sc, err := scan.New(ctx, s.opts)
	if err != nil {
		t.Fatalf("the pinned digest: %v", err)
	}
	img := makeImage(t, map[string][]byte{"a.txt": []byte("a")})
	rec, err := sc.Scan(ctx, scan.Subject{Digest: img.digest, From: img.archive, Targets: []scan.Target{img.target}}, "test")
	if err != nil || rec.Database.Digest != pin {
		t.Errorf("scan with the pinned database: %v, database %+v", err, rec.Database)
	}
	s2 := newSetup(t, scan.Policy{Scanners: []string{"vuln"}, Severities: allSeverities(), ExitCode: 1})
	s2.opts.DBDigest = "sha256:" + strings.Repeat("0", 64)
	if _, err := scan.New(ctx, s2.opts); !errors.Is(err, scan.ErrDBDigest) {
		t.Errorf("another pinned digest: %v, want ErrDBDigest", err)
	}
	s3 := newSetup(t, scan.Policy{Scanners: []string{"vuln"}, Severities: allSeverities(), ExitCode: 1})
	s3.opts.DBRepositories = nil
	if _, err := scan.New(ctx, s3.opts); !errors.Is(err, scan.ErrScanner) || !strings.Contains(err.Error(), "PLUGIN_SCAN_DB_REPOSITORY") {
		t.Errorf("no database and nowhere to fetch it: %v, want ErrScanner saying what to do", err)
	}
}

// The SBOM is Trivy's CycloneDX document of the image: it lists the Go
// module the program was built with, and names the image's config.
func TestSBOMListsThePackages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSetup(t, scan.Policy{Scanners: []string{"secret"}, Severities: allSeverities()})
	img := vulnerableImage(t, s.k)
	sc, err := scan.New(ctx, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	b, from, err := sc.SBOM(ctx, img.target, "")
	if err != nil {
		t.Fatalf("SBOM: %v", err)
	}
	if from != "the image" {
		t.Errorf("SBOM from %q", from)
	}
	var bom struct {
		BOMFormat  string
		Components []struct{ Name, Version string }
	}
	if err := json.Unmarshal(b, &bom); err != nil || bom.BOMFormat != "CycloneDX" {
		t.Fatalf("not CycloneDX: %v", err)
	}
	found := false
	for _, c := range bom.Components {
		if c.Name == "github.com/google/go-cmp" && c.Version == "v0.7.0" {
			found = true
		}
	}
	if !found {
		t.Errorf("the SBOM does not list github.com/google/go-cmp v0.7.0: %+v", bom.Components)
	}
	if !bytes.Contains(b, []byte(img.target.Config.String())) {
		t.Errorf("the SBOM does not name the image's config %s", img.target.Config)
	}
}

// A Trivy that is not the pinned one is refused before anything is
// scanned, saying which version hoist runs; one that does not exist is
// Find's error saying how to get it.
func TestTrivyVersionAndPresence(t *testing.T) {
	t.Parallel()
	fake := filepath.Join(t.TempDir(), "trivy")
	os.WriteFile(fake, []byte("#!/bin/sh\necho '{\"Version\":\"0.1.0\"}'\n"), 0o755)
	_, err := scan.New(context.Background(), scan.Options{Trivy: fake, CacheDir: t.TempDir(), Policy: scan.Policy{Scanners: []string{"secret"}}})
	if !errors.Is(err, scan.ErrScanner) || !strings.Contains(err.Error(), "0.1.0") || !strings.Contains(err.Error(), scan.TrivyVersion) {
		t.Errorf("Trivy 0.1.0: %v, want ErrScanner naming both versions", err)
	}
	k := harness.Scan(t)
	if p, err := scan.Find(k.Trivy, ""); err != nil || p != k.Trivy {
		t.Errorf("Find(%s) = %q, %v", k.Trivy, p, err)
	}
	if _, err := scan.Find(filepath.Join(t.TempDir(), "trivy"), ""); !errors.Is(err, scan.ErrScanner) || !strings.Contains(err.Error(), "PLUGIN_SCAN_TRIVY") {
		t.Errorf("a Trivy path that does not exist: %v", err)
	}
}
