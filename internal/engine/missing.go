package engine

import (
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// setup is the registry access and mirrors an embedded engine was started
// with: what its buildkitd.toml says.
type setup struct {
	// known is false when the configuration could not be read: nothing
	// is known to be configured.
	known      bool
	registries map[string]registrySetup
	mirrors    []string
}

type registrySetup struct {
	HTTP     bool     `toml:"http"`
	Insecure bool     `toml:"insecure"`
	CA       []string `toml:"ca"`
	Mirrors  []string `toml:"mirrors"`
}

// readSetup reads the buildkitd.toml of an embedded engine's directory
// (hoist's own, or any buildkitd started with --config there).
func readSetup(dir string) setup {
	b, err := os.ReadFile(filepath.Join(dir, "buildkitd.toml"))
	if err != nil {
		return setup{}
	}
	var cfg struct {
		Registry map[string]registrySetup `toml:"registry"`
	}
	if err := toml.Unmarshal(b, &cfg); err != nil {
		return setup{}
	}
	s := setup{known: true, registries: map[string]registrySetup{}}
	for h, r := range cfg.Registry {
		if h == "docker.io" {
			s.mirrors = r.Mirrors
		}
		s.registries[h] = r
	}
	return s
}

// setupOf is what launch writes: the registries (plain HTTP as probed)
// and the mirrors.
func setupOf(regs []Registry, mirrors []string) setup {
	s := setup{known: true, registries: map[string]registrySetup{}, mirrors: mirrors}
	for _, r := range regs {
		s.registries[r.Host] = registrySetup{HTTP: r.HTTP, Insecure: r.Insecure, CA: r.CAFiles, Mirrors: r.Mirrors}
	}
	return s
}

// Missing is what a step asks of the engine (its Options) that a running
// embedded engine was not started with.
type Missing struct {
	// Required are settings only the engine uses: Docker Hub mirrors and
	// the access to the base images' registry (PLUGIN_BASE_IMAGE_REGISTRY).
	// Without them the step's pulls fail or go elsewhere.
	Required []string
	// Other is access to the step's destination registries, which hoist
	// pushes to itself: BuildKit needs it only where a FROM or a cache
	// names such a registry.
	Other []string
}

// None reports that nothing is missing.
func (m Missing) None() bool { return len(m.Required) == 0 && len(m.Other) == 0 }

// Missing is what o asks for that the engine was not configured with. An
// engine hoist did not start as the embedded one (a remote BuildKit, the
// Docker daemon's) is its owner's to configure: nothing is missing.
func (e *Engine) Missing(o Options) Missing {
	if !e.embedded() {
		return Missing{}
	}
	return e.setup.missing(o)
}

func (e *Engine) embedded() bool { return e.opts.Addr == "" && !e.Docker && e.opts.Dir != "" }

func (s setup) missing(o Options) Missing {
	var m Missing
	for _, want := range o.Mirrors {
		if !slices.Contains(s.mirrors, want) {
			m.Required = append(m.Required, fmt.Sprintf("Docker Hub mirror %s (PLUGIN_REGISTRY_MIRRORS)", want))
		}
	}
	for _, want := range o.Registries {
		have, ok := s.registries[want.Host]
		var lacks []string
		if want.HTTP && !ok && !loopback(want.Host) {
			// A registry that answers TLS gets http = false when the
			// engine starts: the entry is what counts.
			lacks = append(lacks, "plain HTTP (PLUGIN_INSECURE)")
		}
		if want.Insecure && !have.Insecure {
			lacks = append(lacks, "no TLS verification (PLUGIN_SKIP_TLS_VERIFY)")
		}
		if len(want.CAFiles) > 0 && !holdsCAs(have.CA, want.CAFiles) {
			lacks = append(lacks, "the CA of PLUGIN_REGISTRY_CERTIFICATE")
		}
		var mirrorsLacked bool
		for _, m := range want.Mirrors {
			if !slices.Contains(have.Mirrors, m) {
				lacks = append(lacks, "mirror "+m+" (PLUGIN_BUILDKIT_CONFIG)")
				mirrorsLacked = true
			}
		}
		if len(lacks) == 0 {
			continue
		}
		what := fmt.Sprintf("registry %s: %s", want.Host, strings.Join(lacks, ", "))
		if want.Base || mirrorsLacked {
			m.Required = append(m.Required, what)
		} else {
			m.Other = append(m.Other, what)
		}
	}
	return m
}

// loopback reports a registry host on the loopback: BuildKit reaches it
// over plain HTTP without being told.
func loopback(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// holdsCAs reports whether every CA file of want has its content among
// the files of have (file names differ between steps; contents count).
func holdsCAs(have, want []string) bool {
	sums := map[[32]byte]bool{}
	for _, f := range have {
		if b, err := os.ReadFile(f); err == nil {
			sums[sha256.Sum256(b)] = true
		}
	}
	for _, f := range want {
		b, err := os.ReadFile(f)
		if err != nil || !sums[sha256.Sum256(b)] {
			return false
		}
	}
	return true
}

// Err is the error of a step the running engine at dir cannot serve as
// asked (Required is not empty), saying what to do; nil otherwise.
func (m Missing) Err(dir string) error {
	if len(m.Required) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the running embedded engine at %s was started without what this step needs: %s; it is not restarted while it runs (another step or run may use it): stop it (hoist engine stop, with PLUGIN_ENGINE_DIR=%s) so that the step starts one configured for it, or give the step an engine directory of its own (PLUGIN_ENGINE_DIR)",
		ErrEngine, dir, strings.Join(m.Required, "; "), dir)
}

// Note is what a step is told of the Other access the running engine at
// dir lacks; "" when nothing is missing.
func (m Missing) Note(dir string) string {
	if len(m.Other) == 0 {
		return ""
	}
	return fmt.Sprintf("engine: the running embedded engine at %s was started without %s: hoist's push uses them, BuildKit does not (a FROM or a cache on those registries fails); stop it (hoist engine stop) to start one configured for this step",
		dir, strings.Join(m.Other, "; "))
}

// CAFile is where a registry CA given as PEM content is written in an
// embedded engine's directory: a name of its content, so that steps with
// different CAs never overwrite the file a running engine reads.
func CAFile(dir, pem string) string {
	return filepath.Join(dir, fmt.Sprintf("registry-ca-%x.pem", sha256.Sum256([]byte(pem))))
}

// Dir is the embedded engine's state directory ("" for another builder).
func (e *Engine) Dir() string {
	if !e.embedded() {
		return ""
	}
	return e.opts.Dir
}

// Serves reports whether the engine is the one o names: the same remote
// address, or the embedded engine of the same directory.
func (e *Engine) Serves(o Options) bool {
	if o.Addr != "" || e.opts.Addr != "" {
		return o.Addr == e.opts.Addr && !e.Docker
	}
	return e.embedded() && filepath.Clean(o.Dir) == filepath.Clean(e.opts.Dir)
}
