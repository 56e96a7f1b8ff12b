package outputs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/joho/godotenv"
)

// DRONE_OUTPUT keeps the keys other steps wrote and updates its own.
func TestEnvMerges(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.env")
	os.WriteFile(p, []byte("OTHER=kept\ndigest=old\n"), 0o644)
	if err := Env("", p, map[string]string{"digest": "sha256:new", "IMAGE": "r/app:1"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := "OTHER=kept\nIMAGE=r/app:1\ndigest=sha256:new\n"; string(b) != want {
		t.Errorf("env file:\n%s\nwant:\n%s", b, want)
	}
}

// Values a dotenv reader (the runners read DRONE_OUTPUT with godotenv)
// reads back unchanged, whatever they hold: no value breaks its line or
// adds a key. A line of another step longer than 64 KiB is kept whole.
func TestEnvHostileValues(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.env")
	long := "LONG=" + strings.Repeat("x", 200<<10)
	os.WriteFile(p, []byte(long+"\nexport OTHER='kept as is'\nIMAGE_TAR_PATH=old"), 0o644)
	vars := map[string]string{
		"IMAGE_TAR_PATH": "/w/my image.tar",
		"IMAGE":          "a=b \"quoted\" $HOME ${PATH} \\ back #hash",
		"TAG":            "it's $HOME\\n #not a comment",
		"IMAGE_REFS":     "r/app:1\nINJECTED=yes\r\nX=1",
		"digest":         "sha256:abc",
		"EMPTY":          "",
	}
	if err := Env("", p, vars); err != nil {
		t.Fatal(err)
	}
	got, err := godotenv.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range vars {
		if got[k] != v {
			t.Errorf("%s reads back as %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["INJECTED"]; ok || len(got) != len(vars)+2 {
		t.Errorf("keys %d, want %d (an injected key?): %v", len(got), len(vars)+2, got["INJECTED"])
	}
	if got["LONG"] != long[len("LONG="):] || got["OTHER"] != "kept as is" {
		t.Errorf("the other step's lines changed: LONG %d bytes, OTHER %q", len(got["LONG"]), got["OTHER"])
	}
	if err := Env("", p, map[string]string{"bad key": "v"}); err == nil {
		t.Error("a key that is no variable name was written")
	}
	before, _ := os.ReadFile(p)
	if err := Env("", p, map[string]string{"IMAGE": "both \" and ' quotes"}); err == nil || !strings.Contains(err.Error(), "cannot be written safely") {
		t.Errorf("a value no quoting carries: %v", err)
	}
	if after, _ := os.ReadFile(p); string(after) != string(before) {
		t.Error("a refused value changed the file")
	}
}

func TestDigestAndArtifact(t *testing.T) {
	dir := t.TempDir()
	if err := Digest("", filepath.Join(dir, "sub", "digest"), "sha256:abc"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sub", "digest")); string(b) != "sha256:abc\n" {
		t.Errorf("digest file %q", b)
	}
	p := filepath.Join(dir, "artifact.json")
	if err := WriteArtifact("", p, Artifact{Data: ArtifactData{RegistryType: "ECR", RegistryURL: "r", Images: []ArtifactImage{{Image: "r/app:1", Digest: "sha256:abc"}}}}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	b, _ := os.ReadFile(p)
	if err := json.Unmarshal(b, &got); err != nil || got["kind"] != "docker/v1" {
		t.Errorf("artifact file: %s (%v)", b, err)
	}
}

// Any value written to DRONE_OUTPUT reads back unchanged with godotenv,
// and no value adds a key.
func FuzzEnvRoundTrip(f *testing.F) {
	for _, s := range []string{"sha256:abc", "a b", "x\ny=1", `"'$HOME\`, "#c", "\r\n", "=", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return // file paths and references are text without NUL
		}
		p := filepath.Join(t.TempDir(), "out.env")
		if err := Env("", p, map[string]string{"VALUE": v, "NEXT": "n"}); err != nil {
			if strings.Contains(err.Error(), "cannot be written safely") {
				return // refused, by design
			}
			t.Fatal(err)
		}
		got, err := godotenv.Read(p)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if got["VALUE"] != v || got["NEXT"] != "n" || len(got) != 2 {
			t.Fatalf("%q reads back as %q (%d keys)", v, got["VALUE"], len(got))
		}
	})
}
