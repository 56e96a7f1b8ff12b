package step

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/settings"
)

// A buildkitd.toml's registry entries become the embedded engine's
// registries, merged with the step's own; paths resolve against the
// working directory.
func TestBuildkitConfigRegistries(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	ca := filepath.Join(work, "certs", "ca.pem")
	os.MkdirAll(filepath.Dir(ca), 0o755)
	os.WriteFile(ca, []byte("CA"), 0o644)
	config := `
[registry."docker.io"]
  mirrors = ["mirror.example.com"]
[registry."reg.example.com:5000"]
  http = true
  insecure = true
  ca = ["certs/ca.pem"]
`
	os.WriteFile(filepath.Join(work, "bk.toml"), []byte(config), 0o644)
	want := []engine.Registry{
		{Host: "docker.io", Mirrors: []string{"mirror.example.com"}},
		{Host: "reg.example.com:5000", HTTP: true, Insecure: true, CAFiles: []string{ca}},
	}
	for _, v := range []string{config, "bk.toml"} {
		s, err := settings.Load(nil, func(k string) (string, bool) {
			return map[string]string{"PLUGIN_BUILDKIT_CONFIG": v}[k], k == "PLUGIN_BUILDKIT_CONFIG"
		}, work)
		if err != nil {
			t.Fatal(err)
		}
		got, err := buildkitConfigOf(s, func(p string) string { return filepath.Join(work, p) })
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%q (-want +got):\n%s", v, d)
		}
	}
	merged := withConfigRegistries([]engine.Registry{{Host: "reg.example.com:5000", CAFiles: []string{"/own.pem"}}, {Host: "dest.example.com"}}, want)
	if d := cmp.Diff([]engine.Registry{
		{Host: "reg.example.com:5000", HTTP: true, Insecure: true, CAFiles: []string{"/own.pem", ca}},
		{Host: "dest.example.com"},
		{Host: "docker.io", Mirrors: []string{"mirror.example.com"}},
	}, merged); d != "" {
		t.Errorf("merged (-want +got):\n%s", d)
	}
}

// Every key besides the registries' mirrors, http, insecure and ca is
// refused, named; so is the file for a builder hoist does not configure.
func TestBuildkitConfigRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PLUGIN_BUILDKIT_CONFIG": "root = \"/x\"\n[grpc]\n  address = [\"tcp://0.0.0.0:1\"]\n[registry.\"a\"]\n  platforms = [\"linux/amd64\"]\n"}, `this one sets grpc, registry."a".platforms, root`},
		{map[string]string{"PLUGIN_BUILDKIT_CONFIG": "registry = 1\n"}, "registry (a table"},
		{map[string]string{"PLUGIN_BUILDKIT_CONFIG": "[registry.\"a/b\"]\n  http = true\n"}, `[registry."a/b"]: not a registry host`},
		{map[string]string{"PLUGIN_BUILDKIT_CONFIG": "[registry.\"a\"]\n  mirrors = \"m\"\n"}, `registry."a".mirrors: want a list of strings`},
		{map[string]string{"PLUGIN_BUILDKIT_CONFIG": "[registry.\"a\"]\n", "PLUGIN_BUILDER_REMOTE_CONN": "tcp://b:1"}, "this step builds on the BuildKit at PLUGIN_BUILDER_REMOTE_CONN"},
	} {
		s, err := settings.Load(nil, func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }, "/work")
		if err != nil {
			t.Fatal(err)
		}
		_, err = buildkitConfigOf(s, func(p string) string { return p })
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "PLUGIN_BUILDKIT_CONFIG") {
			t.Errorf("%v: %v, want %q", c.env, err, c.want)
		}
	}
}

// For Kaniko, a buildkitd.toml's registries are the executor's
// per-registry flags: Docker Hub's mirrors join PLUGIN_REGISTRY_MIRRORS'.
func TestKanikoRegistries(t *testing.T) {
	t.Parallel()
	config := "[registry.\"docker.io\"]\n  mirrors = [\"hub-mirror.example.com\"]\n[registry.\"reg.example.com\"]\n  mirrors = [\"m.example.com\"]\n  http = true\n  insecure = true\n  ca = [\"ca.pem\"]\n"
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("CA"), 0o644)
	path := func(p string) string { return filepath.Join(dir, p) }
	regs, mirrors, err := kanikoRegistries(loadEnv(t, map[string]string{"PLUGIN_BUILDKIT_CONFIG": config}, dir), path, []string{"own-mirror.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]build.KanikoRegistry{{Host: "index.docker.io"}, {Host: "reg.example.com", Mirrors: []string{"m.example.com"}, PlainHTTP: true, SkipVerify: true, CAFile: path("ca.pem")}}, regs); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"own-mirror.example.com", "hub-mirror.example.com"}, mirrors); d != "" {
		t.Errorf("mirrors (-want +got):\n%s", d)
	}
	two := loadEnv(t, map[string]string{"PLUGIN_BUILDKIT_CONFIG": "[registry.\"r\"]\n  ca = [\"ca.pem\", \"ca.pem\"]\n"}, dir)
	if _, _, err := kanikoRegistries(two, path, nil); !errors.Is(err, settings.ErrInvalid) || !strings.Contains(err.Error(), "one CA file a registry") {
		t.Errorf("two CAs: %v", err)
	}
}
