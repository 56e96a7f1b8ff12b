package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	got := Config([]Registry{
		{Host: "reg.example.com:5000", CAFiles: []string{"/etc/ca.pem"}},
		{Host: "127.0.0.1:5001", HTTP: true, Insecure: true},
		{Host: "127.0.0.1:5001", HTTP: true, Insecure: true},
	}, []string{"mirror.example.com"}, Network{Mode: "bridge", Bridge: "hoist-0a1b2c3d", Subnet: "10.177.3.0/24", CNIDir: "/usr/lib/cni"})
	for _, want := range []string{
		"[worker.oci]\n  enabled = true\n  gc = true\n  networkMode = \"bridge\"\n  cniBinaryPath = \"/usr/lib/cni\"\n  bridgeName = \"hoist-0a1b2c3d\"\n  bridgeSubnet = \"10.177.3.0/24\"\n[worker.containerd]\n",
		"[registry.\"127.0.0.1:5001\"]\n  http = true\n  insecure = true\n",
		"[registry.\"reg.example.com:5000\"]\n  http = false\n  insecure = false\n  ca = [\"/etc/ca.pem\"]\n",
		"[registry.\"docker.io\"]\n  mirrors = [\"mirror.example.com\"]\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "127.0.0.1:5001") != 1 {
		t.Errorf("a registry is listed twice:\n%s", got)
	}
}

// A registry's mirrors (a buildkitd.toml's, PLUGIN_BUILDKIT_CONFIG) are
// written in its entry; Docker Hub's join PLUGIN_REGISTRY_MIRRORS in one
// docker.io entry (TOML allows a table once).
func TestConfigRegistryMirrors(t *testing.T) {
	t.Parallel()
	got := Config([]Registry{
		{Host: "reg.example.com", Mirrors: []string{"m1.example.com", "m2.example.com:5000"}},
		{Host: "docker.io", Mirrors: []string{"hub-mirror.example.com"}, CAFiles: []string{"/etc/hub-ca.pem"}},
	}, []string{"mirror.example.com"}, Network{Mode: "host"})
	for _, want := range []string{
		"[registry.\"reg.example.com\"]\n  http = false\n  insecure = false\n  mirrors = [\"m1.example.com\", \"m2.example.com:5000\"]\n",
		"[registry.\"docker.io\"]\n  http = false\n  insecure = false\n  ca = [\"/etc/hub-ca.pem\"]\n  mirrors = [\"mirror.example.com\", \"hub-mirror.example.com\"]\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "[registry.\"docker.io\"]") != 1 {
		t.Errorf("docker.io is listed twice:\n%s", got)
	}
	if m := setupOf([]Registry{{Host: "reg.example.com", Mirrors: []string{"m1.example.com"}}}, nil).missing(Options{Registries: []Registry{{Host: "reg.example.com", Mirrors: []string{"m1.example.com", "m3.example.com"}}}}); len(m.Required) != 1 || !strings.Contains(m.Required[0], "registry reg.example.com: mirror m3.example.com (PLUGIN_BUILDKIT_CONFIG)") {
		t.Errorf("a running engine without the mirror: %+v", m)
	}
}

func TestOpenFailsClearly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Addr: "buildkit:1234"}, "want unix://PATH"},
		{Options{Addr: "unix:///nonexistent/buildkitd.sock", Wait: 500 * time.Millisecond}, "did not answer within 500ms"},
		{Options{Dir: t.TempDir(), Binary: "/nonexistent/buildkitd"}, "buildkitd not found at /nonexistent/buildkitd"},
	} {
		_, err := Open(ctx, c.o)
		if !errors.Is(err, ErrEngine) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v) = %v, want %q", c.o, err, c.want)
		}
	}
}
