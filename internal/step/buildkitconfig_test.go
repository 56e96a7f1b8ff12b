package step

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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
