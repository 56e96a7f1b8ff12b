package cli

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/outputs"
)

// cardOf is the card a runner reads: the JSON file, or for /dev/stdout
// the frame in the log (as drone/runner-go's livelog extractor takes it).
type cardOf struct {
	Schema string
	Data   struct {
		RepoTags    []string
		RepoDigests []string
		Size        int64
		SizeString  string
		Image       string
		Digest      string
		Pushed      bool
		Scan        *struct {
			Passed  bool
			Verdict string
			Scanner string
		}
		Signed []string
	} `json:"data"`
}

func readCard(t *testing.T, b []byte) cardOf {
	t.Helper()
	var c cardOf
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("card: %v\n%s", err, b)
	}
	if c.Schema != outputs.CardSchema {
		t.Errorf("card schema %q", c.Schema)
	}
	return c
}

func cardInLog(t *testing.T, log string) cardOf {
	t.Helper()
	m := regexp.MustCompile("(?m)^\x1b]1338;([A-Za-z0-9+/=]*)\x1b]0m$").FindAllStringSubmatch(log, -1)
	if len(m) != 1 {
		t.Fatalf("want one card frame in the log, found %d:\n%q", len(m), log)
	}
	b, err := base64.StdEncoding.DecodeString(m[0][1])
	if err != nil {
		t.Fatal(err)
	}
	return readCard(t, b)
}

// DRONE_CARD_PATH on a push: the card names the image, its tags, the
// digest every registry holds (read back with crane), its size, the scan
// verdict and the signed repositories; it holds none of the settings'
// secrets (the registry password, the cosign key's password), though the
// step had them. /dev/stdout (what Drone's runner sets) gets the frame
// the runner extracts from the log. Without DRONE_CARD_PATH, no card.
func TestCardOnPush(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	b := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	const keyPassword = "card-sign-pw-5521"
	key, _ := keyPair(t, keyPassword)
	dir := t.TempDir()
	cardPath := filepath.Join(dir, "card", "card.json")
	env := scanEnv(t, k, "PLUGIN_PUSH_ONLY", "true", "PLUGIN_SOURCE_TAR_PATH", f.DockerSave, "PLUGIN_SCAN", "true",
		"PLUGIN_REPO", a.Host+"/card/app", "PLUGIN_TAGS", "1.0,latest", "PLUGIN_DESTINATIONS", b.Host+"/card/app:1.0",
		"PLUGIN_REGISTRY", b.Host, "PLUGIN_USERNAME", b.User, "PLUGIN_PASSWORD", b.Password,
		"PLUGIN_SIGN", "true", "PLUGIN_SIGN_KEY", key, "PLUGIN_SIGN_PASSWORD", keyPassword,
		"PLUGIN_SCAN_RECORDS", filepath.Join(dir, "records"), "DRONE_CARD_PATH", cardPath)
	r := mustPush(t, env)
	digest := digestOf(t, a, a.Host+"/card/app:1.0")
	if got := digestOf(t, b, b.Host+"/card/app:1.0"); got != digest {
		t.Fatalf("the registries hold %s and %s", digest, got)
	}
	raw, err := os.ReadFile(cardPath)
	if err != nil {
		t.Fatalf("no card: %v\n%s", err, r)
	}
	c := readCard(t, raw)
	d := c.Data
	if d.Digest != digest || !d.Pushed || d.Image != a.Host+"/card/app:1.0" || d.Size <= 0 || d.SizeString == "" {
		t.Errorf("card data %+v, digest %s", d, digest)
	}
	wantTags := []string{a.Host + "/card/app:1.0", a.Host + "/card/app:latest", b.Host + "/card/app:1.0"}
	if strings.Join(d.RepoTags, " ") != strings.Join(wantTags, " ") {
		t.Errorf("card tags %v, want %v", d.RepoTags, wantTags)
	}
	if len(d.RepoDigests) != 2 || d.RepoDigests[0] != a.Host+"/card/app@"+digest || d.RepoDigests[1] != b.Host+"/card/app@"+digest {
		t.Errorf("card RepoDigests %v", d.RepoDigests)
	}
	if d.Scan == nil || !d.Scan.Passed || !strings.HasPrefix(d.Scan.Scanner, "trivy ") || !strings.HasPrefix(d.Scan.Verdict, "passed") {
		t.Errorf("card scan %+v", d.Scan)
	}
	wantSigned := []string{a.Host + "/card/app", b.Host + "/card/app"}
	sort.Strings(wantSigned)
	if strings.Join(d.Signed, " ") != strings.Join(wantSigned, " ") {
		t.Errorf("card signed %v", d.Signed)
	}
	// The card holds the image, and no secret the step had.
	if !strings.Contains(string(raw), a.Host+"/card/app") {
		t.Fatalf("the card does not name the image:\n%s", raw)
	}
	for _, secret := range []string{b.Password, keyPassword, basic(b.User, b.Password)} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the card holds a secret %q:\n%s", secret, raw)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(cardPath)); len(ents) != 1 {
		t.Errorf("beside the card: %v", ents)
	}

	// Drone's runner: DRONE_CARD_PATH=/dev/stdout, the card framed in the
	// log, the digest still on its own line.
	env["DRONE_CARD_PATH"] = "/dev/stdout"
	env["PLUGIN_SIGN"] = "false"
	r = mustPush(t, env)
	if c := cardInLog(t, r.stdout); c.Data.Digest != digest || !c.Data.Pushed {
		t.Errorf("card in the log %+v", c.Data)
	}
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); lines[len(lines)-1] != digest {
		t.Errorf("stdout does not end with the digest:\n%s", r)
	}

	// hoist push, the CLI: stdout is the digest alone (d=$(hoist push)
	// in a runner's step), the card framed on stderr, in the same log.
	cli := merged(env)
	delete(cli, "PLUGIN_PUSH_ONLY")
	r = hoist(t, cli, "push")
	if r.code != 0 || strings.TrimSpace(r.stdout) != digest {
		t.Errorf("hoist push: stdout %q, want the digest alone\n%s", r.stdout, r)
	}
	if c := cardInLog(t, r.stderr); c.Data.Digest != digest {
		t.Errorf("card on stderr %+v", c.Data)
	}

	// No DRONE_CARD_PATH: no card, in a file or the log.
	delete(env, "DRONE_CARD_PATH")
	r = mustPush(t, env)
	assertNotContains(t, r, "\x1b]1338;")
	assertPushed(t, r, a, a.Host+"/card/app:1.0")
}

// A build-only step's card: the names it built, the digest its push-only
// step then pushes (read back with crane), its size; not pushed.
func TestCardOnBuildOnly(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir := buildContext(t, "FROM "+f.Base+"\nCOPY hello.txt /hello.txt\n", map[string]string{"hello.txt": "card\n"})
	dir := t.TempDir()
	tar := filepath.Join(dir, "image.tar")
	cardPath := filepath.Join(dir, "card.json")
	r := mustPush(t, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_TAR_PATH", tar, "PLUGIN_REPO", a.Host+"/built/app",
		"PLUGIN_TAGS", "1", "PLUGIN_IMAGE_STORE", filepath.Join(dir, "store"), "DRONE_CARD_PATH", cardPath))
	raw, err := os.ReadFile(cardPath)
	if err != nil {
		t.Fatalf("no card: %v\n%s", err, r)
	}
	d := readCard(t, raw).Data
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": tar, "PLUGIN_REPO": a.Host + "/built/app", "PLUGIN_TAGS": "1"})
	digest := digestOf(t, a, a.Host+"/built/app:1")
	if d.Digest != digest || d.Pushed || d.Image != a.Host+"/built/app:1" || d.Size <= 0 || d.Scan != nil || d.Signed != nil {
		t.Errorf("card data %+v, pushed digest %s", d, digest)
	}
	if len(d.RepoDigests) != 1 || d.RepoDigests[0] != digest {
		t.Errorf("card RepoDigests %v", d.RepoDigests)
	}
}
