package step

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/hoist-build/hoist/internal/settings"
)

func loadEnv(t *testing.T, env map[string]string, work string) *settings.Settings {
	t.Helper()
	s, err := settings.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, work)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Named contexts: an image by reference, a directory of the working
// directory (links resolved, hoist's files excluded); anything else is an
// error naming the item.
func TestNamedContextsOf(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	os.MkdirAll(filepath.Join(work, "extra"), 0o755)
	os.Symlink(t.TempDir(), filepath.Join(work, "out"))
	os.Symlink("extra", filepath.Join(work, "in"))
	real, _ := filepath.EvalSymlinks(filepath.Join(work, "extra"))
	path := func(p string) string { return filepath.Join(work, p) }
	excl := func(dir string) []string { return []string{"x-" + filepath.Base(dir)} }
	s := loadEnv(t, map[string]string{"PLUGIN_NAMED_CONTEXT": "a=docker-image://reg.example.com/base:1, b=extra,c=./in"}, work)
	got, ex, errs := namedContextsOf(s, Environ{WorkDir: work}, path, excl)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if d := cmp.Diff(map[string]string{"a": "docker-image://reg.example.com/base:1", "b": real, "c": real}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string][]string{"b": {"x-extra"}, "c": {"x-extra"}}, ex); d != "" {
		t.Errorf("excludes (-want +got):\n%s", d)
	}
	s = loadEnv(t, map[string]string{"PLUGIN_NAMED_CONTEXT": "a=out,b=git://example.com/r,c=docker-image://UPPER/Case:1,d,a=extra,a=extra"}, work)
	_, _, errs = namedContextsOf(s, Environ{WorkDir: work}, path, excl)
	var all []string
	for _, e := range errs {
		all = append(all, e.Error())
	}
	joined := strings.Join(all, "\n")
	for _, want := range []string{
		"PLUGIN_NAMED_CONTEXT: named context a: " + filepath.Join(work, "out") + " is outside the working directory",
		"named context b: git:// is not supported",
		`named context c: "UPPER/Case:1" is not an image reference`,
		`malformed named context "d"`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("errors lack %q:\n%s", want, joined)
		}
	}
}

// The SSH key must be a private key without a passphrase; errors never
// quote it.
func TestSSHKeyOf(t *testing.T) {
	t.Parallel()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	plain, _ := ssh.MarshalPrivateKey(priv, "")
	locked, _ := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("pw"))
	key := string(pem.EncodeToMemory(plain))
	if got, err := sshKeyOf(loadEnv(t, map[string]string{"PLUGIN_SSH_AGENT_KEY": key}, "/work")); err != nil || string(got) != key {
		t.Errorf("a key: %v", err)
	}
	if _, err := sshKeyOf(loadEnv(t, map[string]string{"PLUGIN_SSH_AGENT_KEY": string(pem.EncodeToMemory(locked))}, "/work")); err == nil || !strings.Contains(err.Error(), "protected by a passphrase") {
		t.Errorf("a locked key: %v", err)
	}
	if _, err := sshKeyOf(loadEnv(t, map[string]string{"PLUGIN_SSH_AGENT_KEY": "secret-Zq81"}, "/work")); err == nil || strings.Contains(err.Error(), "secret-Zq81") || !strings.Contains(err.Error(), "not an SSH private key") {
		t.Errorf("not a key: %v", err)
	}
}

// Kaniko has no named contexts, SSH mounts or filesystem export: each is
// refused by name (a buildkitd.toml's registries it has).
func TestBuildKitOnly(t *testing.T) {
	t.Parallel()
	s := loadEnv(t, map[string]string{"PLUGIN_NAMED_CONTEXT": "a=b", "PLUGIN_SSH_AGENT_KEY": "k", "PLUGIN_BUILDKIT_CONFIG": "x = 1", "PLUGIN_OUTPUT": "type=local,dest=d"}, "/work")
	err := buildKitOnly(s, "PLUGIN_BUILD_TOOL says so")
	for _, want := range []string{"PLUGIN_NAMED_CONTEXT (Kaniko has no named build contexts)", "PLUGIN_SSH_AGENT_KEY (Kaniko has no RUN --mount=type=ssh)", "PLUGIN_OUTPUT=type=local (Kaniko exports no filesystem)", "PLUGIN_BUILD_TOOL=buildkit"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "BUILDKIT_CONFIG") {
		t.Errorf("the buildkitd.toml is refused for Kaniko: %v", err)
	}
	if strings.Contains(err.Error(), ": k") {
		t.Errorf("the key is quoted: %v", err)
	}
	if err := buildKitOnly(loadEnv(t, nil, "/work"), ""); err != nil {
		t.Errorf("nothing asked: %v", err)
	}
}
