package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/harness"
)

// A running embedded engine is used as it was started, and what a step
// asks of it that it lacks is said: a Docker Hub mirror or the base
// images' registry access (only the engine uses them) is an error naming
// it and the fix; a destination registry's access (hoist's push uses it
// too) is a note. An engine started with them lacks nothing, a CA counted
// by its content whatever the file's name.
func TestRunningEngineSaysWhatItLacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := harness.Buildkitd(t)
	ca := harness.NewCA(t, t.TempDir())
	pem, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "engine")
	caCopy := filepath.Join(t.TempDir(), "my-ca.pem")
	os.WriteFile(caCopy, pem, 0o644)
	base := engine.Options{Dir: dir, Env: os.Environ(), Binary: bin}

	// Started with a mirror, a base registry with the CA, a destination
	// with no TLS verification.
	withAll := base
	withAll.Mirrors = []string{"mirror.example.com"}
	withAll.Registries = []engine.Registry{{Host: "base.example.com", CAFiles: []string{ca.File}, Base: true}, {Host: "dest.example.com", Insecure: true}}
	first, err := engine.Open(ctx, withAll)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	same := withAll
	same.Registries = []engine.Registry{{Host: "base.example.com", CAFiles: []string{caCopy}, Base: true}, {Host: "dest.example.com", Insecure: true}}
	if m := first.Missing(same); !m.None() {
		t.Errorf("the engine started with them lacks %+v", m)
	}

	var l logs
	for _, c := range []struct {
		name string
		o    func(o *engine.Options)
		err  string // "" for none
		note string
	}{
		{"as started", func(o *engine.Options) { *o = same; o.Logf = l.printf }, "", ""},
		{"another mirror", func(o *engine.Options) { o.Mirrors = []string{"other-mirror.example.com"} },
			"started without what this step needs: Docker Hub mirror other-mirror.example.com (PLUGIN_REGISTRY_MIRRORS)", ""},
		{"another base CA", func(o *engine.Options) {
			o.Registries = []engine.Registry{{Host: "base.example.com", CAFiles: []string{writeFile(t, "other CA")}, Base: true}}
		}, "registry base.example.com: the CA of PLUGIN_REGISTRY_CERTIFICATE", ""},
		{"a base registry without TLS verification", func(o *engine.Options) {
			o.Registries = []engine.Registry{{Host: "other-base.example.com", Insecure: true, Base: true}}
		}, "registry other-base.example.com: no TLS verification (PLUGIN_SKIP_TLS_VERIFY)", ""},
		{"a destination over plain HTTP", func(o *engine.Options) {
			o.Registries = []engine.Registry{{Host: "far.example.com:5000", HTTP: true}, {Host: "127.0.0.1:5000", HTTP: true}}
		}, "", "started without registry far.example.com:5000: plain HTTP (PLUGIN_INSECURE): hoist's push uses them, BuildKit does not"},
	} {
		l = logs{}
		o := base
		o.Logf = l.printf
		c.o(&o)
		o.Logf = l.printf
		e, err := engine.Open(ctx, o)
		if c.err != "" {
			if !errors.Is(err, engine.ErrEngine) || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "hoist engine stop") {
				t.Errorf("%s: %v, want %q and the fix", c.name, err, c.err)
			}
			if e != nil {
				e.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !strings.Contains(l.String(), "using the running embedded engine") {
			t.Errorf("%s: log %q", c.name, l.String())
		}
		if c.note != "" && !strings.Contains(l.String(), c.note) {
			t.Errorf("%s: log lacks %q:\n%s", c.name, c.note, l.String())
		}
		if c.note == "" && strings.Contains(l.String(), "started without") {
			t.Errorf("%s: log %q", c.name, l.String())
		}
		if strings.Contains(l.String(), "127.0.0.1:5000") {
			t.Errorf("%s: a loopback registry is reached over plain HTTP without being told: %s", c.name, l.String())
		}
		e.Close()
	}
}

func writeFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// An engine given to steps serves the options that name it: its
// directory (however written), or its address; not another.
func TestEngineServes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "engine")
	e, err := engine.Open(context.Background(), engine.Options{Dir: dir, Env: os.Environ(), Binary: harness.Buildkitd(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for o, want := range map[*engine.Options]bool{
		{Dir: dir}:                    true,
		{Dir: dir + "/"}:              true,
		{Dir: dir + "-other"}:         false,
		{Dir: dir, Addr: "tcp://x:1"}: false,
		{Addr: engine.Socket(dir)}:    false,
	} {
		if got := e.Serves(*o); got != want {
			t.Errorf("Serves(%+v) = %v, want %v", *o, got, want)
		}
	}
	if e.Dir() != dir {
		t.Errorf("Dir() = %q", e.Dir())
	}
	if a, b := engine.CAFile(dir, "one"), engine.CAFile(dir, "two"); a == b || filepath.Dir(a) != dir {
		t.Errorf("CA files %s, %s", a, b)
	}
}
