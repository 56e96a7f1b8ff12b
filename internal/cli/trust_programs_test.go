package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// A program setting given as a relative path (PLUGIN_SCAN_TRIVY=bin/trivy,
// as the benchmarks and a checkout's tools directory give it) is the file
// under the working directory, although Trivy runs in a directory of its
// own. (That a program looked for by name is never taken from a relative
// PATH entry is envlist's TestLookPathSkipsRelativeEntries: in process,
// a relative entry names the test's directory, not the step's.)
func TestProgramsAreFoundWhereTheSettingsSay(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	tar, _ := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r3"))

	t.Run("a relative path is the working directory's", func(t *testing.T) {
		work := t.TempDir()
		os.MkdirAll(filepath.Join(work, "tools"), 0o755)
		if err := os.Symlink(k.Trivy, filepath.Join(work, "tools", "trivy")); err != nil {
			t.Fatal(err)
		}
		env := scanEnv(t, k, "PLUGIN_SCAN_TRIVY", "tools/trivy")
		r := hoistIn(t, work, env, "scan", tar)
		if r.code != 0 {
			t.Fatalf("scan with a relative Trivy path:\n%s", r)
		}
		assertContains(t, r, "passed")
	})
}
