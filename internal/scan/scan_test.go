package scan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// The Trivy version hoist checks for is the one tools/trivy pins (which
// scripts/setup.sh builds and the images carry).
func TestTrivyVersionIsThePin(t *testing.T) {
	p := filepath.Join("..", "..", "tools", "trivy", "go.mod")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse(p, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Require {
		if r.Mod.Path == "github.com/aquasecurity/trivy" {
			if got := strings.TrimPrefix(r.Mod.Version, "v"); got != TrivyVersion {
				t.Errorf("tools/trivy pins %s, TrivyVersion is %s", got, TrivyVersion)
			}
			return
		}
	}
	t.Errorf("%s does not require github.com/aquasecurity/trivy", p)
}

func TestCountsText(t *testing.T) {
	if got := countsText(map[string]int{"LOW": 2, "CRITICAL": 1}); got != "1 CRITICAL, 2 LOW" {
		t.Errorf("got %q", got)
	}
	if got := countsText(nil); got != "no findings" {
		t.Errorf("got %q", got)
	}
}
