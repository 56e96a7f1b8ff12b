package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// DroneRunner returns Drone's docker runner (drone-runner-docker) that
// scripts/setup.sh builds into bin/ at the version pinned in
// tools/drone-runner/VERSION, or ends the test. A binary of another
// version (a stale build after the pin moved) counts as missing.
func DroneRunner(t testing.TB) string {
	t.Helper()
	root := moduleRoot()
	if root == "" {
		Missing(t, "drone-runner-docker: not in a checkout of hoist (no go.mod above the working directory)")
		return ""
	}
	pin, err := os.ReadFile(filepath.Join(root, "tools", "drone-runner", "VERSION"))
	if err != nil {
		t.Fatalf("the runner's pin: %v", err)
	}
	want := strings.TrimSpace(string(pin))
	bin := filepath.Join(root, "bin", "drone-runner-docker")
	if _, err := os.Stat(bin); err != nil {
		Missing(t, "bin/drone-runner-docker is not built (run scripts/setup.sh)")
		return ""
	}
	got, err := os.ReadFile(bin + ".version")
	if err != nil || strings.TrimSpace(string(got)) != want {
		Missing(t, "bin/drone-runner-docker is not the pinned %s (its stamp says %q; run scripts/setup.sh)", want, strings.TrimSpace(string(got)))
		return ""
	}
	return bin
}
