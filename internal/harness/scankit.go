package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
)

// ScanKit is what scan tests share: the pinned Trivy, a vulnerability
// database in Trivy's format published to a loopback registry, and a Go
// program whose build info names a module version the database calls
// vulnerable.
type ScanKit struct {
	Trivy string
	// DBRef is the database artifact, for --db-repository.
	DBRef string
	DB    *TrivyDB
	// GoBinary is a static Go program built with
	// github.com/google/go-cmp v0.7.0; it prints "cmp ok".
	GoBinary string
	// Secret is a GitHub personal access token's form, which Trivy's
	// secret scanner finds.
	Secret string
}

// The test advisories, for packages the test images really hold.
var (
	// Alpine 3.19: musl before 1.2.4-r3 (HIGH, fixed); busybox (MEDIUM,
	// no fix).
	AdvMusl    = Advisory{Ecosystem: "alpine 3.19", Package: "musl", ID: "CVE-2099-1001", Severity: "HIGH", Fixed: "1.2.4-r3"}
	AdvBusybox = Advisory{Ecosystem: "alpine 3.19", Package: "busybox", ID: "CVE-2099-1002", Severity: "MEDIUM"}
	// Go: github.com/google/go-cmp before 0.7.1 (CRITICAL).
	AdvGoCmp = Advisory{Ecosystem: "go", Package: "github.com/google/go-cmp", ID: "GHSA-hois-t000-0001", Severity: "CRITICAL", Vulnerable: []string{"< 0.7.1"}, Fixed: "0.7.1"}
)

var scanKit struct {
	sync.Once
	k   *ScanKit
	err string
}

// Scan returns the shared scan kit, making it on first use.
func Scan(t testing.TB) *ScanKit {
	t.Helper()
	trivy := Tool(t, "trivy")
	goTool := Need(t, "go")
	scanKit.Do(func() {
		ft := makeOnce(t, func(ft testing.TB) { scanKit.k = makeScanKit(ft, trivy, goTool) })
		if ft.failed != "" || ft.skipped != "" {
			scanKit.k, scanKit.err = nil, ft.failed+ft.skipped
		}
	})
	if scanKit.k == nil {
		t.Fatalf("making the scan kit failed: %s", scanKit.err)
	}
	return scanKit.k
}

func makeScanKit(t testing.TB, trivy, goTool string) *ScanKit {
	dir, err := os.MkdirTemp("", "hoist-scankit-")
	if err != nil {
		t.Fatal(err)
	}
	atExit(func() { os.RemoveAll(dir) })
	now := time.Now()
	db := WriteTrivyDB(t, filepath.Join(dir, "db"), []Advisory{AdvMusl, AdvBusybox, AdvGoCmp}, now.Add(-time.Hour), now.Add(24*time.Hour), trivydb.SchemaVersion)
	reg := startRegistry(t, RegistryOptions{}, filepath.Join(dir, "registry"), atExit)
	k := &ScanKit{Trivy: trivy, DB: db, DBRef: PushTrivyDB(t, reg, "aquasecurity/trivy-db", db),
		Secret: "ghp_" + "Hoist0Test0Token0Plant3d0Here0abcdef"}
	k.GoBinary = buildGoProgram(t, goTool, filepath.Join(dir, "vulnapp"))
	return k
}

// buildGoProgram builds a static program that uses go-cmp v0.7.0 (from the
// module cache, which hoist's own build fills).
func buildGoProgram(t testing.TB, goTool, dir string) string {
	src := map[string]string{
		"go.mod":  "module example.com/vulnapp\n\ngo 1.22\n\nrequire github.com/google/go-cmp v0.7.0\n",
		"go.sum":  "github.com/google/go-cmp v0.7.0 h1:wk8382ETsv4JYUZwIsn6YpYiWiBsYLSJiTsyBybVuN8=\ngithub.com/google/go-cmp v0.7.0/go.mod h1:pXiqmnSA92OHEEa9HXL2W4E7lf9JzCmGVUdgjX3N/iU=\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"github.com/google/go-cmp/cmp\"\n)\n\nfunc main() {\n\tif cmp.Equal(1, 1) {\n\t\tfmt.Println(\"cmp ok\")\n\t}\n}\n",
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, c := range src {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "vulnapp")
	cmd := exec.Command(goTool, "build", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the vulnerable Go program: %v\n%s", err, b)
	}
	return out
}
