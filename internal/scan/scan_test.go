package scan

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/hoist-build/hoist/internal/envlist"
	"github.com/hoist-build/hoist/internal/files"
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

// Trivy gets of the step's environment what it needs and nothing else:
// no registry password, cloud key or signing key, no TRIVY_* setting
// that would change what hoist decided, and, as it runs offline, no
// proxy (which may hold a password), CA or database login.
func TestTrivyEnv(t *testing.T) {
	t.Parallel()
	got := envlist.Filter([]string{"PATH=/bin", "HOME=/root", "PLUGIN_PASSWORD=pw", "AWS_SECRET_ACCESS_KEY=k", "PLUGIN_SIGN_KEY=-----BEGIN",
		"HTTPS_PROXY=http://p:3128", "no_proxy=localhost", "SSL_CERT_FILE=/ca.pem", "TRIVY_USERNAME=u", "TRIVY_PASSWORD=p",
		"TRIVY_INSECURE=true", "TRIVY_SERVER=http://elsewhere", "DOCKER_CONFIG=/cfg", "NOEQUALS"}, trivyEnv)
	want := []string{"PATH=/bin", "HOME=/root"}
	if !slices.Equal(got, want) {
		t.Errorf("Trivy's environment is %q, want %q", got, want)
	}
}

// Every Trivy process runs in an empty directory of its own under the
// temporary directory, not in hoist's working directory (a plugin step's
// checkout, whose trivy.yaml Trivy would read), with the directory
// removed after; an image scan gets a module directory that does not
// exist. A stand-in executable records where it ran, what that directory
// held and its arguments (TestTrivyConfigInTheCheckoutChangesNoVerdict
// in internal/cli runs the real Trivy).
func TestTrivyRunsInAnEmptyDirectory(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	out := filepath.Join(dir, "seen")
	script := filepath.Join(dir, "trivy")
	os.WriteFile(script, []byte("#!/bin/sh\n{ pwd; ls -A; echo \"$@\"; } > "+out+"\n"), 0o755)
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "trivy.yaml"), []byte("severity: [CRITICAL]\n"), 0o644)
	t.Chdir(ws)
	s := &Scanner{o: Options{Trivy: script, TempDir: tmp, Timeout: time.Minute}}
	if _, err := s.run(t.Context(), "test", "image", "--input", "in.tar"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("the stand-in saw %q: want its directory, empty, and its arguments", b)
	}
	wd := lines[0]
	if filepath.Dir(wd) != tmp || !strings.HasPrefix(filepath.Base(wd), ".hoist-trivy-") {
		t.Errorf("Trivy ran in %s, want a directory of its own in %s", wd, tmp)
	}
	if want := "image --module-dir " + filepath.Join(wd, "no-modules") + " --input in.tar"; lines[1] != want {
		t.Errorf("arguments %q, want %q", lines[1], want)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, ".hoist-trivy-*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// The gate's Trivy runs alongside the check of the bytes it reads, on its
// in-memory layer cache: an analysis of bytes that fail the check is kept
// nowhere (not in --cache-dir, where it would answer for the genuine
// diff_id later), and neither is its report. Here the check fails only
// after Trivy has finished, the worst order.
func TestGateKeepsNothingOfUncheckedBytes(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	args := filepath.Join(dir, "args")
	script := filepath.Join(dir, "trivy")
	// The stand-in writes an empty report where --output says, and its
	// arguments beside it.
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" > "+args+".tmp\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --output ]; then echo '{}' > \"$2\"; fi; shift; done\nmv "+args+".tmp "+args+"\n"), 0o755)
	records := t.TempDir()
	s := &Scanner{o: Options{Trivy: script, TempDir: tmp, Timeout: time.Minute, CacheDir: filepath.Join(dir, "cache"), Workspace: files.Workspace(records)}}
	kept := filepath.Join(records, "report.json")
	bad := errors.New("layer sha256:abc decompresses to sha256:def")
	check := func(ctx context.Context) error {
		for range 500 { // Trivy has finished when its arguments are there.
			if _, err := os.Stat(args); err == nil {
				return bad
			}
			time.Sleep(10 * time.Millisecond)
		}
		return errors.New("the stand-in Trivy never ran")
	}
	err := s.checkAndRun(t.Context(), Target{Input: "in.tar", Check: check}, kept)
	if !errors.Is(err, bad) {
		t.Fatalf("got %v, want the check's error", err)
	}
	b, _ := os.ReadFile(args)
	if !strings.Contains(string(b), "--cache-backend memory") {
		t.Errorf("Trivy ran with %q: want its in-memory layer cache", b)
	}
	if _, err := os.Stat(kept); err == nil {
		t.Errorf("the report of unchecked bytes was kept at %s", kept)
	}
	// Without a check (bytes hoist vouches for), Trivy keeps its layer
	// cache where --cache-dir says.
	os.Remove(args)
	if err := s.checkAndRun(t.Context(), Target{Input: "in.tar"}, kept); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(args); strings.Contains(string(b), "--cache-backend") {
		t.Errorf("Trivy ran with %q: want its default layer cache", b)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("the report was not kept: %v", err)
	}
}
