package outputs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// DRONE_OUTPUT keeps the keys other steps wrote and updates its own.
func TestEnvMerges(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.env")
	os.WriteFile(p, []byte("OTHER=kept\ndigest=old\n"), 0o644)
	if err := Env(p, map[string]string{"digest": "sha256:new", "IMAGE": "r/app:1"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := "OTHER=kept\ndigest=sha256:new\nIMAGE=r/app:1\n"; string(b) != want {
		t.Errorf("env file:\n%s\nwant:\n%s", b, want)
	}
}

func TestDigestAndArtifact(t *testing.T) {
	dir := t.TempDir()
	if err := Digest(filepath.Join(dir, "sub", "digest"), "sha256:abc"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sub", "digest")); string(b) != "sha256:abc\n" {
		t.Errorf("digest file %q", b)
	}
	p := filepath.Join(dir, "artifact.json")
	if err := WriteArtifact(p, Artifact{Data: ArtifactData{RegistryType: "ECR", RegistryURL: "r", Images: []ArtifactImage{{Image: "r/app:1", Digest: "sha256:abc"}}}}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	b, _ := os.ReadFile(p)
	if err := json.Unmarshal(b, &got); err != nil || got["kind"] != "docker/v1" {
		t.Errorf("artifact file: %s (%v)", b, err)
	}
}
