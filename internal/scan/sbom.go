package scan

import (
	"bytes"
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
// analysers need no database), from its layer cache when that holds every
// layer. from says which of the three it was.
func (s *Scanner) SBOM(ctx context.Context, t Target, report string) (sbom []byte, from string, err error) {
	t.Input, t.Layerless = absPath(t.Input), absPath(t.Layerless)
	tmp, err := os.CreateTemp(s.o.TempDir, ".hoist-tmp-sbom-*.json")
	if err != nil {
		return nil, "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	image := func(input string) []string {
		return []string{"image", "--input", input, "--cache-dir", s.o.CacheDir,
			"--skip-db-update", "--skip-java-db-update", "--offline-scan", "--skip-version-check", "--disable-telemetry",
			"--quiet", "--no-progress", "--timeout", s.o.Timeout.String(),
			"--format", "cyclonedx", "--output", tmp.Name()}
	}
	what := "SBOM of " + filepath.Base(t.Input)
	from = "the image"
	cached := false
	switch {
	case report != "":
		from = "the scan's report"
		_, err = s.runPriority(ctx, true, what, "convert", "--quiet", "--format", "cyclonedx", "--output", tmp.Name(), report)
	case t.Layerless != "":
		// Trivy's layer cache holds the layers of an image it has read
		// before (a scan step's): then the manifest and config are all it
		// reads. Otherwise it fails on the first layer it lacks, and
		// reads the image, checked first.
		if _, err = s.runPriority(ctx, true, what, image(t.Layerless)...); err == nil {
			cached, from = true, "Trivy's layer cache"
		} else if ctx.Err() == nil {
			if err = check(ctx, t); err == nil {
				_, err = s.runPriority(ctx, true, what, image(t.Input)...)
			}
		}
	default:
		if err = check(ctx, t); err == nil {
			_, err = s.runPriority(ctx, true, what, image(t.Input)...)
		}
	}
	if err != nil {
		return nil, "", err
	}
	st, err := os.Stat(tmp.Name())
	if err != nil {
		return nil, "", err
	}
	if st.Size() > maxSBOM {
		return nil, "", fmt.Errorf("%w: the SBOM of %s is %d bytes, more than the 64 MiB hoist attaches", ErrScanner, t.Config, st.Size())
	}
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		return nil, "", err
	}
	if cached {
		// Trivy names the image by its input: the image's, not the
		// temporary layout's.
		tmpName, _ := json.Marshal(t.Layerless)
		name, _ := json.Marshal(t.Input)
		b = bytes.ReplaceAll(b, tmpName, name)
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
		return nil, "", fmt.Errorf("%w: Trivy's SBOM of %s is not a CycloneDX document", ErrScanner, t.Config)
	}
	for _, p := range bom.Metadata.Component.Properties {
		if p.Name == "aquasecurity:trivy:ImageID" && p.Value != t.Config.String() {
			return nil, "", fmt.Errorf("%w: Trivy's SBOM describes the image with config %s, but the image to push has config %s", ErrScanner, p.Value, t.Config)
		}
	}
	return b, from, nil
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

// check runs t.Check, when there is one.
func check(ctx context.Context, t Target) error {
	if t.Check == nil {
		return nil
	}
	return t.Check(ctx)
}
