package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/step"
)

// openEngine opens the run's one engine when a step builds with BuildKit
// in this process (nil otherwise): every such step of every stage builds
// on it (identical builds are built once), given to the step, not reopened
// by its directory. It is started configured for what all those steps ask
// of it (registry access, CAs, Docker Hub mirrors; see engineOptions).
func (r *runner) openEngine(ctx context.Context) (*engine.Engine, error) {
	if !r.needsEngine() {
		return nil, nil
	}
	o := r.o
	dir := lookupDefault(o.Lookup, "PLUGIN_ENGINE_DIR", engine.DefaultDir(o.Lookup))
	opts := engine.Options{Dir: dir, Binary: lookupDefault(o.Lookup, "PLUGIN_BUILDKITD", "buildkitd"), Env: o.Environ,
		Network: r.engineNetwork(),
		Logf:    func(f string, a ...any) { o.Logf(f, a...) }}
	var err error
	if opts.Registries, opts.Mirrors, err = r.engineNeeds(dir); err != nil {
		return nil, err
	}
	return engine.Open(ctx, opts)
}

func (r *runner) needsEngine() bool {
	if r.o.Isolation == "container" {
		return false
	}
	for _, pd := range r.plan.Steps {
		if pd.BuildsInEngine() {
			return true
		}
	}
	return false
}

// engineNetwork is the RUN network the run's engine serves (see
// engine.Options.Network): host or none only when every BuildKit step
// asks for it.
func (r *runner) engineNetwork() string {
	network := ""
	for _, pd := range r.plan.Steps {
		if pd.BuildsInEngine() {
			switch v := pd.Settings.Network; {
			case (v == "host" || v == "none") && (network == "" || network == v):
				network = v
			default:
				return "" // not asked by every step, or asked differently
			}
		}
	}
	return network
}

// engineNeeds are the registries and mirrors the BuildKit steps ask of
// the engine of dir, from their typed settings (step.EngineOptions), one
// entry a registry. A CA given as PEM content is written into dir; one
// given as a file is the checkout's (a stage's workspace is its copy).
func (r *runner) engineNeeds(dir string) ([]engine.Registry, []string, error) {
	byHost := map[string]*engine.Registry{}
	var hosts, mirrors []string
	for _, pd := range r.plan.Steps {
		if !pd.BuildsInEngine() || pd.Settings == nil {
			continue
		}
		s := *pd.Settings
		if c := s.RegistryCertificate; c != "" && !strings.Contains(c, "-----BEGIN") {
			s.RegistryCertificate = InWorkspace(c, r.o.Codebase)
		}
		so, pem, err := step.EngineOptions(&s, step.Environ{Lookup: r.o.Lookup, WorkDir: r.o.Codebase, Environ: r.o.Environ}, pd.Refs)
		if err != nil {
			return nil, nil, err
		}
		if pem != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, nil, err
			}
			ca := engine.CAFile(dir, pem)
			if err := os.WriteFile(ca, []byte(pem), 0o644); err != nil {
				return nil, nil, err
			}
			for i := range so.Registries {
				so.Registries[i].CAFiles = append(so.Registries[i].CAFiles, ca)
			}
		}
		for _, m := range so.Mirrors {
			if !slices.Contains(mirrors, m) {
				mirrors = append(mirrors, m)
			}
		}
		for _, reg := range so.Registries {
			have := byHost[reg.Host]
			if have == nil {
				have = &engine.Registry{Host: reg.Host}
				byHost[reg.Host] = have
				hosts = append(hosts, reg.Host)
			}
			have.HTTP, have.Insecure, have.Base = have.HTTP || reg.HTTP, have.Insecure || reg.Insecure, have.Base || reg.Base
			for _, ca := range reg.CAFiles {
				if _, err := os.Stat(ca); err == nil && !slices.Contains(have.CAFiles, filepath.Clean(ca)) {
					have.CAFiles = append(have.CAFiles, filepath.Clean(ca))
				}
			}
			for _, m := range reg.Mirrors {
				if !slices.Contains(have.Mirrors, m) {
					have.Mirrors = append(have.Mirrors, m)
				}
			}
		}
	}
	// The plan's steps are a map: sorted, the engine's configuration is
	// the same from run to run.
	slices.Sort(hosts)
	slices.Sort(mirrors)
	regs := make([]engine.Registry, len(hosts))
	for i, h := range hosts {
		regs[i] = *byHost[h]
		slices.Sort(regs[i].CAFiles)
	}
	return regs, mirrors, nil
}
