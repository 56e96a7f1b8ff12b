package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// DroneRunner finds the pinned runner, and what it finds is Drone's docker
// runner with the exec flags the drone tests use.
func TestDroneRunner(t *testing.T) {
	bin := DroneRunner(t)
	dir := t.TempDir()
	// exec's source argument defaults to .drone.yml, which must exist
	// even for --help.
	if err := os.WriteFile(filepath.Join(dir, ".drone.yml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "exec", "--help")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s exec --help: %v\n%s", bin, err, out)
	}
	for _, flag := range []string{"--networks=NETWORKS", "--privileged=PRIVILEGED", "--secrets=SECRETS", "--environ=ENVIRON", "--repo-trusted"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("exec --help lacks %s:\n%s", flag, out)
		}
	}
}
