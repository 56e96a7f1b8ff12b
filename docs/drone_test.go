package docs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docs/ci.md shows each Drone pipeline of examples/drone verbatim: the
// files internal/cli's TestDroneRunner runs with Drone's docker runner.
func TestDronePipelinesInCI(t *testing.T) {
	doc, err := os.ReadFile("ci.md")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../examples/drone/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 6 {
		t.Errorf("examples/drone holds %d pipelines, want the document's five and the promotion: %v", len(files), files)
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		block := "(`examples/drone/" + filepath.Base(f) + "`)\n\n```yaml\n" + string(body) + "```\n"
		if !strings.Contains(string(doc), block) {
			t.Errorf("docs/ci.md does not show %s verbatim under a heading naming it", f)
		}
	}
}
