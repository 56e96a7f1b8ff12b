package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/runid"
)

// Record is the verdict of one scan, stored under the image's manifest
// digest: what was scanned, with which scanner, database and policy, what
// was found, and where the reports went.
type Record struct {
	Digest    string    `json:"digest"`
	MediaType string    `json:"mediaType,omitempty"`
	Source    string    `json:"source"`
	ScannedAt time.Time `json:"scannedAt"`
	// ReusedAt is set when this scan reused the reports Trivy made at
	// ScannedAt (same image, Trivy, database and policy).
	ReusedAt time.Time `json:"reusedAt,omitzero"`
	Scanner  struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"scanner"`
	Hoist    string         `json:"hoist,omitempty"`
	Database *DBInfo        `json:"database,omitempty"`
	Policy   Policy         `json:"policy"`
	Images   []Scanned      `json:"images"`
	Counts   map[string]int `json:"counts"`
	Findings int            `json:"findings"`
	Passed   bool           `json:"passed"`
	Reports  []Report       `json:"reports,omitempty"`
	// Labels name the scan for people (a pipeline's target and variant).
	Labels map[string]string `json:"labels,omitempty"`
	// Run is the identity of the pipeline run that scanned (runid.Run.ID;
	// empty outside CI): a record counts only for the run that made it.
	Run string `json:"run,omitempty"`
	// Path is the record's file.
	Path string `json:"-"`
}

// Scanned is one image Trivy analysed (one per platform of an index).
type Scanned struct {
	Platform string         `json:"platform,omitempty"`
	Config   string         `json:"config"`
	Counts   map[string]int `json:"counts"`
}

// Verdict is "passed" or "FAILED", with the counts.
func (r *Record) Verdict() string {
	if r.Passed {
		return "passed (" + countsText(r.Counts) + ")"
	}
	return "FAILED (" + countsText(r.Counts) + ")"
}

// ErrNoRecord is a digest that has no scan record.
var ErrNoRecord = errors.New("no scan record")

// RecordPath is where the record of digest lives under dir.
func RecordPath(dir string, digest v1.Hash) string {
	return filepath.Join(dir, digest.Algorithm, digest.Hex+".json")
}

// MaxRecord bounds a scan record (a few KiB when hoist wrote it).
const MaxRecord = 1 << 20

// ReadRecord reads the record of digest from dir. The records lie in the
// checkout, and are read before anything says who made them: so through
// ws (no link out of the workspace: a record that is a link to /dev/zero
// is refused), as a regular file only (a FIFO is not waited on, a device
// not read), and at most MaxRecord bytes.
func ReadRecord(ws files.Workspace, dir string, digest v1.Hash) (*Record, error) {
	p := RecordPath(dir, digest)
	b, err := ws.ReadRegular(p, MaxRecord)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w for %s in %s", ErrNoRecord, digest, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("scan record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("scan record %s is not valid JSON: %w", p, err)
	}
	if r.Digest != digest.String() {
		return nil, fmt.Errorf("scan record %s is for %s, not %s", p, r.Digest, digest)
	}
	r.Path = p
	return &r, nil
}

// Subject is what a scan is about: the manifest digest pushed, where it
// came from, and the images Trivy reads.
type Subject struct {
	Digest    v1.Hash
	MediaType string
	From      string
	Targets   []Target
}

// Scan runs Trivy on every target of the subject, writes the reports,
// and records the verdict under the subject's digest. A failed gate is a
// *GateError (with the record written); a scan that could not run is
// ErrScanner, and writes no record.
func (s *Scanner) Scan(ctx context.Context, sub Subject, hoistVersion string) (*Record, error) {
	if len(sub.Targets) == 0 {
		return nil, fmt.Errorf("%w: %s holds no image to scan", ErrScanner, sub.From)
	}
	rec := &Record{Digest: sub.Digest.String(), MediaType: sub.MediaType, Source: sub.From, ScannedAt: s.o.Now().UTC(), Labels: s.o.Labels,
		Hoist: hoistVersion, Database: s.db, Policy: s.o.Policy, Counts: map[string]int{}, Run: s.o.Run.ID}
	rec.Scanner.Name, rec.Scanner.Version = "trivy", TrivyVersion
	start := time.Now()
	dir := filepath.Dir(RecordPath(s.o.Records, sub.Digest))
	if err := s.o.Workspace.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("scan records %s: %w", s.o.Records, err)
	}
	if prev := s.reusable(ctx, sub); prev != nil {
		rec.ScannedAt, rec.ReusedAt = prev.ScannedAt, s.o.Now().UTC()
		s.o.Logf("scan: Trivy's reports of %s for %s are reused: the same image, Trivy, database and policy (remove %s to scan afresh)",
			prev.ScannedAt.Format(time.RFC3339), sub.Digest, prev.Path)
	}
	for i, t := range sub.Targets {
		sc, reports, err := s.scanOne(ctx, t, trivyReportPath(s.o.Records, sub.Digest, i), rec.ReusedAt.IsZero(), len(sub.Targets) > 1)
		if err != nil {
			return nil, err
		}
		rec.Images = append(rec.Images, sc)
		rec.Reports = append(rec.Reports, reports...)
		for k, v := range sc.Counts {
			rec.Counts[k] += v
			rec.Findings += v
		}
	}
	rec.Passed = rec.Findings == 0
	if err := s.write(rec); err != nil {
		return rec, err
	}
	s.o.Logf("scan: %s %s with Trivy %s in %.1fs; record %s", sub.Digest, rec.Verdict(), TrivyVersion, time.Since(start).Seconds(), rec.Path)
	if !rec.Passed && s.o.Policy.ExitCode != 0 {
		return rec, &GateError{Digest: rec.Digest, Counts: rec.Counts, Code: s.o.Policy.ExitCode}
	}
	return rec, nil
}

func (s *Scanner) write(rec *Record) error {
	d, err := v1.NewHash(rec.Digest)
	if err != nil {
		return err
	}
	// Scan made the directory.
	p := RecordPath(s.o.Records, d)
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := s.o.Workspace.WriteAtomic(p, append(b, '\n')); err != nil {
		return fmt.Errorf("scan record: %w", err)
	}
	rec.Path = p
	return nil
}

// trivyReport is the part of Trivy's JSON report the gate reads.
type trivyReport struct {
	SchemaVersion int
	Metadata      struct {
		ImageID string
		DiffIDs []string
	}
	Results []struct {
		Target          string
		Vulnerabilities []struct{ Severity string }
		Secrets         []struct{ Severity string }
	}
}

// trivyReportPath is where Trivy's JSON report of the i-th image of
// digest is kept, beside its record.
func trivyReportPath(dir string, digest v1.Hash, i int) string {
	return filepath.Join(dir, digest.Algorithm, fmt.Sprintf("%s.trivy-%d.json", digest.Hex, i))
}

// reusable returns the record of sub's digest when Trivy's reports it
// kept were made by this run, with this Trivy, this database and this
// policy, for the same images: running Trivy again would give the same
// reports. A scan that reuses them writes the reports asked for from
// them. A record this run did not make (committed to the repository,
// restored from another run's cache) is never reused.
func (s *Scanner) reusable(ctx context.Context, sub Subject) *Record {
	prev, err := ReadRecord(s.o.Workspace, s.o.Records, sub.Digest)
	if err != nil {
		return nil
	}
	if err := s.o.Run.Made(ctx, prev.Run, prev.Path); err != nil {
		s.o.Logf("scan: the record %s kept from an earlier scan is not this run's: Trivy runs afresh (%s)", prev.Path, runid.Reason(err))
		return nil
	}
	if prev.Scanner.Version != TrivyVersion || len(prev.Images) != len(sub.Targets) {
		return nil
	}
	// The exit code decides what a verdict does, not what Trivy reports.
	pp, cp := prev.Policy, s.o.Policy
	pp.ExitCode, cp.ExitCode = 0, 0
	a, _ := json.Marshal(pp)
	b, _ := json.Marshal(cp)
	if string(a) != string(b) || !sameDB(prev.Database, s.db) {
		return nil
	}
	for i, t := range sub.Targets {
		if prev.Images[i].Config != t.Config.String() || prev.Images[i].Platform != t.Platform {
			return nil
		}
		if _, err := os.Stat(trivyReportPath(s.o.Records, sub.Digest, i)); err != nil {
			return nil
		}
	}
	return prev
}

func sameDB(a, b *DBInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Schema == b.Schema && a.UpdatedAt.Equal(b.UpdatedAt) && a.NextUpdate.Equal(b.NextUpdate) && a.DownloadedAt.Equal(b.DownloadedAt) && a.Dir == b.Dir && a.Digest == b.Digest
}

// scanOne runs Trivy on one image (or, when run is false, takes the report
// Trivy made of it before from kept), checks that Trivy read the image
// meant, writes the reports and counts the findings by severity. Trivy's
// JSON report is kept at kept.
func (s *Scanner) scanOne(ctx context.Context, t Target, kept string, run, several bool) (Scanned, []Report, error) {
	sc := Scanned{Platform: t.Platform, Config: t.Config.String(), Counts: map[string]int{}}
	if run {
		if err := s.checkAndRun(ctx, t, kept); err != nil {
			return sc, nil, err
		}
	}
	raw, err := os.ReadFile(kept)
	if err != nil {
		return sc, nil, fmt.Errorf("%w: Trivy's report: %w", ErrScanner, err)
	}
	var rep trivyReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return sc, nil, fmt.Errorf("%w: Trivy's report %s is not valid JSON: %w", ErrScanner, kept, err)
	}
	// The tie between what Trivy read and what is pushed: the config
	// digest (which the manifest names) and the layers' diff_ids.
	if rep.Metadata.ImageID != t.Config.String() {
		return sc, nil, fmt.Errorf("%w: Trivy analysed the image with config %s in %s, but the image to push has config %s", ErrScanner, rep.Metadata.ImageID, t.Input, t.Config)
	}
	if len(t.DiffIDs) > 0 {
		var want []string
		for _, d := range t.DiffIDs {
			want = append(want, d.String())
		}
		if !slices.Equal(rep.Metadata.DiffIDs, want) {
			return sc, nil, fmt.Errorf("%w: Trivy analysed layers %v in %s, but the image to push has %v", ErrScanner, rep.Metadata.DiffIDs, t.Input, want)
		}
	}
	for _, r := range rep.Results {
		for _, v := range r.Vulnerabilities {
			sc.Counts[v.Severity]++
		}
		for _, v := range r.Secrets {
			sc.Counts[v.Severity]++
		}
	}
	findings := 0
	for _, n := range sc.Counts {
		findings += n
	}
	reports, err := s.reports(ctx, kept, raw, t.Platform, several, findings == 0)
	return sc, reports, err
}

// checkAndRun runs Trivy on one image while t.Check checks the bytes it
// reads, and keeps Trivy's JSON report at kept only when both succeeded:
// a verdict on bytes that are not what their digests say is never kept.
// Trivy then keeps no layer analysis of its own (its in-memory cache, not
// the one in --cache-dir): its layer cache is keyed by the diff_ids the
// image config claims, and an analysis of other bytes under a genuine
// diff_id would answer for that layer in every later scan. The check
// runs alongside Trivy, on the other core, rather than before it.
func (s *Scanner) checkAndRun(ctx context.Context, t Target, kept string) error {
	tmp, err := s.o.Workspace.CreateTemp(filepath.Dir(kept), ".hoist-tmp-trivy-*.json")
	if err != nil {
		return err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if t.Check == nil {
		err = s.runTrivy(ctx, t, tmp.Name(), false)
	} else {
		var checkErr error
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error {
			checkErr = t.Check(gctx)
			return checkErr
		})
		g.Go(func() error { return s.runTrivy(gctx, t, tmp.Name(), true) })
		err = g.Wait()
		if checkErr != nil && ctx.Err() == nil && !errors.Is(checkErr, context.Canceled) {
			// The check's verdict wins over Trivy's end (it was
			// stopped when the check failed).
			err = checkErr
		}
	}
	if err != nil {
		return err
	}
	if err := s.o.Workspace.Rename(tmp.Name(), kept); err != nil {
		return fmt.Errorf("%w: keep Trivy's report: %w", ErrScanner, err)
	}
	return nil
}

// runTrivy runs Trivy on one image with the policy; its JSON report is
// written to out. With memory, Trivy's layer cache is its in-memory one.
func (s *Scanner) runTrivy(ctx context.Context, t Target, out string, memory bool) error {
	p := s.o.Policy
	args := []string{"image", "--input", absPath(t.Input), "--cache-dir", s.o.CacheDir,
		"--skip-db-update", "--skip-java-db-update", "--offline-scan", "--skip-version-check", "--disable-telemetry",
		"--quiet", "--no-progress", "--exit-code", "0", "--timeout", s.o.Timeout.String(),
		"--scanners", strings.Join(p.Scanners, ","), "--severity", strings.Join(p.Severities, ","),
		"--format", "json", "--output", out}
	if memory {
		args = append(args, "--cache-backend", "memory")
	}
	if p.IgnoreUnfixed {
		args = append(args, "--ignore-unfixed")
	}
	if p.Packages() {
		args = append(args, "--list-all-pkgs")
	}
	if p.IgnoreFile != "" {
		args = append(args, "--ignorefile", absPath(p.IgnoreFile))
	}
	for _, f := range p.SkipFiles {
		args = append(args, "--skip-files", f)
	}
	for _, d := range p.SkipDirs {
		args = append(args, "--skip-dirs", d)
	}
	_, err := s.run(ctx, "scan of "+t.Input, args...)
	return err
}

// reports writes every report from Trivy's JSON report: json as it is,
// the others with trivy convert. With several platforms each file name
// gets the platform before its extension.
func (s *Scanner) reports(ctx context.Context, jsonPath string, raw []byte, platform string, several, clean bool) ([]Report, error) {
	var out []Report
	for _, r := range s.o.Reports {
		if r.Format == "table" && r.Path == "" && clean {
			// Trivy's table of a report without findings is empty: no
			// process is started to print nothing.
			out = append(out, r)
			continue
		}
		path := r.Path
		if path != "" && several && platform != "" {
			ext := filepath.Ext(path)
			path = strings.TrimSuffix(path, ext) + "." + strings.ReplaceAll(platform, "/", "-") + ext
		}
		if r.Format == "json" {
			if path == "" {
				if _, err := s.o.Stdout.Write(raw); err != nil {
					return nil, err
				}
			} else if err := s.o.Workspace.WriteAtomic(path, raw); err != nil {
				return nil, fmt.Errorf("scan report: %w", err)
			}
			out = append(out, Report{Format: r.Format, Path: path})
			continue
		}
		args := []string{"convert", "--quiet", "--format", r.Format}
		tmp, dest := "", ""
		if path != "" {
			// Trivy writes a temporary file beside the report, renamed
			// when it is whole: never a partial report. A link to the
			// report is followed (the link stays) as for every output,
			// and in the workspace only when it stays inside.
			var err error
			if dest, _, err = s.o.Workspace.Target(path); err != nil {
				return nil, fmt.Errorf("scan report: %w", err)
			}
			f, err := s.o.Workspace.CreateTemp(filepath.Dir(dest), ".hoist-tmp-report-*")
			if err != nil {
				return nil, fmt.Errorf("scan report %s: %w", path, err)
			}
			f.Close()
			tmp = f.Name()
			defer os.Remove(tmp)
			args = append(args, "--output", tmp)
		}
		args = append(args, jsonPath)
		outb, err := s.run(ctx, "convert to "+r.Format, args...)
		if err != nil {
			return nil, err
		}
		if tmp != "" {
			os.Chmod(tmp, 0o644)
			if err := s.o.Workspace.Rename(tmp, dest); err != nil {
				return nil, fmt.Errorf("scan report %s: %w", path, err)
			}
		}
		if path == "" && s.o.Stdout != nil {
			if _, err := s.o.Stdout.Write(outb); err != nil {
				return nil, err
			}
		}
		out = append(out, Report{Format: r.Format, Path: path})
	}
	return out, nil
}
