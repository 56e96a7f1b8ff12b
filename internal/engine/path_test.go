package engine_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/harness"
)

// The embedded engine's programs are looked for on the PATH of the
// environment it is given (the step's), not on the process's: buildkitd
// under a name only that PATH holds starts, and iptables (which the CNI
// plugins run under buildkitd) missing from that PATH means no bridge,
// though the process's PATH has it.
func TestEngineFindsItsProgramsOnItsEnvironmentsPATH(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("iptables is not on the test's PATH, the test proves nothing: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "engine")
	if _, err := engine.BridgeFor(dir, nil, os.Getenv("PATH")); err != nil {
		t.Fatalf("a bridge on the test's PATH: %v", err)
	}
	_, err := engine.BridgeFor(dir, nil, t.TempDir())
	if !errors.Is(err, engine.ErrNoBridge) || !strings.Contains(err.Error(), "iptables is not on PATH") {
		t.Errorf("a bridge on a PATH without iptables: %v, want ErrNoBridge naming iptables", err)
	}

	bin := t.TempDir()
	const name = "buildkitd-hoist-path-test"
	if err := os.Symlink(harness.Buildkitd(t), filepath.Join(bin, name)); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PATH=") {
			env = append(env, e)
		}
	}
	env = append(env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	ctx := context.Background()
	if _, err := engine.Open(ctx, engine.Options{Dir: dir, Binary: name, Env: env[:len(env)-1]}); !errors.Is(err, engine.ErrEngine) || !strings.Contains(err.Error(), "not on PATH") {
		t.Errorf("buildkitd on no PATH of the engine's: %v, want ErrEngine", err)
	}
	e, err := engine.Open(ctx, engine.Options{Dir: dir, Binary: name, Env: env})
	if err != nil {
		t.Fatalf("buildkitd on the engine's PATH: %v", err)
	}
	if e.Network != "cni" {
		t.Errorf("the worker's network is %q, want cni", e.Network)
	}
	if err := e.Close(); err != nil {
		t.Error(err)
	}
}
