package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// Trivy reads files of its working directory by default: trivy.yaml
// (--config), trivy-secret.yaml (--secret-config), and, without a home
// directory, .trivy/modules (--module-dir, whose modules rewrite results);
// and of its home directory, ~/.trivy/modules. A CI plugin step's working
// directory is the checkout, which the repository writes. None of them
// changes a verdict: a committed file that turns off the package
// analysers, skips the directory holding the package database, ignores
// every fix status, filters the report, disables the secret rule, or
// plants a module, leaves the image failed, with its finding in the
// report on standard output (written by trivy convert).
func TestTrivyConfigInTheCheckoutChangesNoVerdict(t *testing.T) {
	f := harness.Inputs(t)
	k := harness.Scan(t)
	musl, _ := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r2")) // CVE-2099-1001, HIGH, fixed
	secret, _ := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", with(apkImage("musl", "1.2.4-r3"), "rootfs/app/config.env", "GITHUB_TOKEN="+k.Secret+"\n"))
	cache := t.TempDir()
	home := t.TempDir() // an earlier step's home directory
	os.MkdirAll(filepath.Join(home, ".trivy", "modules"), 0o755)
	os.WriteFile(filepath.Join(home, ".trivy", "modules", "planted.wasm"), []byte("not a module"), 0o644)
	for _, c := range []struct {
		name, file, content, image, finding string
		env                                 []string
	}{
		{"control, no file", "", "", musl, "CVE-2099-1001", nil},
		{"trivy.yaml pkg.types", "trivy.yaml", "pkg:\n  types: [library]\n", musl, "CVE-2099-1001", nil},
		{"trivy.yaml scan.skip-dirs", "trivy.yaml", "scan:\n  skip-dirs: [\"/lib\"]\n", musl, "CVE-2099-1001", nil},
		{"trivy.yaml vulnerability.ignore-status", "trivy.yaml", "vulnerability:\n  ignore-status: [fixed, affected, unknown, will_not_fix, fix_deferred, end_of_life, not_affected, under_investigation]\n", musl, "CVE-2099-1001", nil},
		{"trivy.yaml severity (the report trivy convert writes)", "trivy.yaml", "severity: [CRITICAL]\n", musl, "CVE-2099-1001", nil},
		{"a module in the checkout's .trivy/modules", ".trivy/modules/planted.wasm", "not a module", musl, "CVE-2099-1001", nil},
		{"a module in the home directory", "", "", musl, "CVE-2099-1001", []string{"HOME", home}},
		{"control secret, no file", "", "", secret, "github-pat", nil},
		{"trivy-secret.yaml disable-rules", "trivy-secret.yaml", "disable-rules:\n  - github-pat\n", secret, "github-pat", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ws := t.TempDir()
			if c.file != "" {
				os.MkdirAll(filepath.Dir(filepath.Join(ws, c.file)), 0o755)
				os.WriteFile(filepath.Join(ws, c.file), []byte(c.content), 0o644)
			}
			t.Chdir(ws) // a plugin step's working directory is the checkout
			env := with(scanEnv(t, k, "PLUGIN_SCAN_CACHE_DIR", cache, "PLUGIN_SCAN_RECORDS", t.TempDir()), c.env...)
			r := hoistIn(t, ws, env, "scan", c.image)
			if r.code != ExitScan {
				t.Errorf("exit %d, want %d (the image has a finding):\n%s", r.code, ExitScan, r)
			}
			if !strings.Contains(r.stdout, c.finding) {
				t.Errorf("the report on standard output does not name %s:\n%s", c.finding, r)
			}
		})
	}
}
