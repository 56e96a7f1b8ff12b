package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// maxSBOM bounds one SBOM: it is signed and stored in the registry as one
// blob.
const maxSBOM = 64 << 20

// SBOM has Trivy write the CycloneDX SBOM of one image, and checks that
// Trivy read the image meant: the SBOM's image id is t's config digest.
// When the gate's JSON report of the image lists its packages (report,
// from Report), the SBOM is converted from it, without reading the image
// again; otherwise Trivy analyses the image, offline (its package
// analysers need no database).
func (s *Scanner) SBOM(ctx context.Context, t Target, report string) ([]byte, error) {
	tmp, err := os.CreateTemp(s.o.TempDir, ".hoist-tmp-sbom-*.json")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := []string{"image", "--input", t.Input, "--cache-dir", s.o.CacheDir,
		"--skip-db-update", "--skip-java-db-update", "--offline-scan", "--skip-version-check", "--disable-telemetry",
		"--quiet", "--no-progress", "--timeout", s.o.Timeout.String(),
		"--format", "cyclonedx", "--output", tmp.Name()}
	if report != "" {
		args = []string{"convert", "--quiet", "--format", "cyclonedx", "--output", tmp.Name(), report}
	}
	if _, err := s.runPriority(ctx, true, "SBOM of "+filepath.Base(t.Input), args...); err != nil {
		return nil, err
	}
	st, err := os.Stat(tmp.Name())
	if err != nil {
		return nil, err
	}
	if st.Size() > maxSBOM {
		return nil, fmt.Errorf("%w: the SBOM of %s is %d bytes, more than the 64 MiB hoist attaches", ErrScanner, t.Config, st.Size())
	}
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		return nil, err
	}
	var bom struct {
		BOMFormat string `json:"bomFormat"`
		Metadata  struct {
			Component struct {
				Properties []struct {
					Name  string `json:"name"`
					Value string `json:"value"`
				} `json:"properties"`
			} `json:"component"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(b, &bom); err != nil || bom.BOMFormat != "CycloneDX" {
		return nil, fmt.Errorf("%w: Trivy's SBOM of %s is not a CycloneDX document", ErrScanner, t.Config)
	}
	for _, p := range bom.Metadata.Component.Properties {
		if p.Name == "aquasecurity:trivy:ImageID" && p.Value != t.Config.String() {
			return nil, fmt.Errorf("%w: Trivy's SBOM describes the image with config %s, but the image to push has config %s", ErrScanner, p.Value, t.Config)
		}
	}
	return b, nil
}

// Report is the gate's JSON report of the i-th image of rec, when it
// lists every package (the SBOM is converted from it); "" otherwise.
func (s *Scanner) Report(rec *Record, i int) string {
	if rec == nil || !rec.Policy.Packages() || !s.o.Policy.Packages() {
		return ""
	}
	d, err := v1.NewHash(rec.Digest)
	if err != nil {
		return ""
	}
	p := trivyReportPath(s.o.Records, d, i)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
