package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/harness"
)

// logs collects what the engine reports.
type logs struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logs) printf(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, f+"\n", a...)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The embedded engine gives RUN steps a bridge of their own, named after
// its directory, which it removes when it stops.
func TestEngineStartsWithABridge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "engine")
	var l logs
	e, err := engine.Open(ctx, engine.Options{Dir: dir, Env: os.Environ(), Binary: harness.Buildkitd(t), Logf: l.printf})
	if err != nil {
		t.Fatal(err)
	}
	n, err := engine.BridgeFor(dir, nil, os.Getenv("PATH"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Network != "cni" {
		t.Errorf("the worker's network is %q, want cni", e.Network)
	}
	if want := "RUN steps on bridge " + n.Bridge + ", "; !strings.Contains(l.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, l.String())
	}
	br, err := net.InterfaceByName(n.Bridge)
	if err != nil {
		t.Fatalf("no bridge %s while the engine runs: %v", n.Bridge, err)
	}
	addrs, _ := br.Addrs()
	if len(addrs) == 0 || !strings.HasPrefix(addrs[0].String(), "10.177.") {
		t.Errorf("bridge %s has addresses %v, want its gateway in 10.177.0.0/16", n.Bridge, addrs)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(n.Bridge); err == nil {
		t.Errorf("bridge %s is left after the engine stopped", n.Bridge)
	}
}

// Where the CNI plugins are missing, the engine does not start on the
// host's network for a run that did not ask for it: it fails and says what
// to do. A run with PLUGIN_NETWORK=host starts it on the host's network,
// and says so; a later run with the default network refuses that engine,
// one with none may use it.
func TestEngineWithoutBridge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := harness.Buildkitd(t)
	dir := filepath.Join(t.TempDir(), "engine")
	noPlugins := []string{t.TempDir()}

	_, err := engine.Open(ctx, engine.Options{Dir: dir, Env: os.Environ(), Binary: bin, CNIDirs: noPlugins})
	if !errors.Is(err, engine.ErrEngine) || !errors.Is(err, engine.ErrNoBridge) {
		t.Fatalf("Open without CNI plugins = %v, want ErrEngine and ErrNoBridge", err)
	}
	t.Log(err)
	for _, want := range []string{"CNI plugins bridge, host-local, loopback, firewall are in none of " + noPlugins[0],
		"hoist does not fall back to the host's network", "apt-get install containernetworking-plugins iptables", "PLUGIN_NETWORK=host"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "buildkitd.pid")); err == nil {
		t.Error("a buildkitd was started")
	}

	var l logs
	e, err := engine.Open(ctx, engine.Options{Dir: dir, Env: os.Environ(), Binary: bin, CNIDirs: noPlugins, Network: "host", Logf: l.printf})
	if err != nil {
		t.Fatalf("Open with PLUGIN_NETWORK=host: %v", err)
	}
	defer e.Close()
	if e.Network != "host" {
		t.Errorf("the worker's network is %q, want host", e.Network)
	}
	for _, want := range []string{"starting the engine on the host's network, which only runs with PLUGIN_NETWORK=host or none will use",
		"RUN steps on the host's network"} {
		if !strings.Contains(l.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, l.String())
		}
	}

	for _, network := range []string{"", "default"} {
		_, err = engine.Open(ctx, engine.Options{Dir: dir, Env: os.Environ(), Binary: bin, Network: network, Wait: 10 * time.Second})
		if !errors.Is(err, engine.ErrEngine) || !strings.Contains(err.Error(), "the running embedded engine at "+dir+" runs RUN steps on the host's network") ||
			!strings.Contains(err.Error(), "hoist engine stop") {
			t.Errorf("network %q: Open of the running host-network engine = %v", network, err)
		}
	}
	other, err := engine.Open(ctx, engine.Options{Dir: dir, Env: os.Environ(), Binary: bin, Network: "none"})
	if err != nil {
		t.Fatalf("network none: %v", err)
	}
	other.Close()
}

// Where the CNI plugins are there but cannot make the network (here a
// loopback plugin that fails as it does without permission), buildkitd
// exits; hoist says so and does not start it on the host's network unless
// the run asks for host, and leaves no namespace mounted behind.
func TestEngineWhoseBridgeFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := harness.Buildkitd(t)
	dir := filepath.Join(t.TempDir(), "engine")
	cni := t.TempDir()
	// The real plugins, where the engine finds them.
	found, err := engine.BridgeFor(dir, nil, os.Getenv("PATH"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"bridge", "host-local", "firewall"} {
		if err := os.Symlink(filepath.Join(found.CNIDir, p), filepath.Join(cni, p)); err != nil {
			t.Fatal(err)
		}
	}
	failing := "#!/bin/sh\necho '{\"cniVersion\": \"1.0.0\", \"code\": 100, \"msg\": \"operation not permitted (test)\"}'\nexit 1\n"
	if err := os.WriteFile(filepath.Join(cni, "loopback"), []byte(failing), 0o755); err != nil {
		t.Fatal(err)
	}

	_, err = engine.Open(ctx, engine.Options{Dir: dir, Env: os.Environ(), Binary: bin, CNIDirs: []string{cni}})
	if !errors.Is(err, engine.ErrEngine) || !errors.Is(err, engine.ErrNoBridge) {
		t.Fatalf("Open with a failing CNI plugin = %v, want ErrEngine and ErrNoBridge", err)
	}
	t.Log(err)
	for _, want := range []string{"buildkitd could not set up the bridge hoist-", "operation not permitted (test)", "PLUGIN_NETWORK=host"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	assertNoNamespaces(t, dir)

	var l logs
	e, err := engine.Open(ctx, engine.Options{Dir: dir, Env: os.Environ(), Binary: bin, CNIDirs: []string{cni}, Network: "host", Logf: l.printf})
	if err != nil {
		t.Fatalf("Open with PLUGIN_NETWORK=host: %v", err)
	}
	if e.Network != "host" || !strings.Contains(l.String(), "could not set up the bridge") || !strings.Contains(l.String(), "starting the engine on the host's network") {
		t.Errorf("network %q, log:\n%s", e.Network, l.String())
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoNamespaces(t, dir)
}

func assertNoNamespaces(t *testing.T, dir string) {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), dir) {
		t.Errorf("mounts left under %s:\n%s", dir, mounts)
	}
}

// buildkitd runs with what it needs of the environment it is given (its
// PATH, the proxies of its pulls), never the step's secrets: a RUN step
// cannot read them, but a process of its own need not hold them either.
func TestEngineEnvironmentHoldsNoSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "engine")
	env := append(os.Environ(), "PLUGIN_PASSWORD=engine-env-secret-7731", "AWS_SECRET_ACCESS_KEY=engine-env-secret-9902", "HTTPS_PROXY=http://proxy.invalid:3128")
	e, err := engine.Open(ctx, engine.Options{Dir: dir, Env: env, Binary: harness.Buildkitd(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pidText, err := os.ReadFile(filepath.Join(dir, "buildkitd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	environ, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pidText)) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(string(environ), "\x00", "\n")
	for _, want := range []string{"PATH=", "HTTPS_PROXY=http://proxy.invalid:3128"} {
		if !strings.Contains(got, want) {
			t.Errorf("buildkitd's environment lacks %s:\n%s", want, got)
		}
	}
	for _, secret := range []string{"engine-env-secret-7731", "engine-env-secret-9902"} {
		if strings.Contains(got, secret) {
			t.Errorf("buildkitd's environment holds a secret (%s):\n%s", secret, got)
		}
	}
}
