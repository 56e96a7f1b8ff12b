package step

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/settings"
)

// buildkitConfigOf reads PLUGIN_BUILDKIT_CONFIG, a buildkitd.toml as the
// buildx plugins take it (its content; here a file path too): its
// [registry."HOST"] entries (mirrors, http, insecure, ca) become the
// embedded engine's registries. Any other key is refused, named: hoist
// configures its engine from its own settings, and a key it dropped
// would build something else.
func buildkitConfigOf(s *settings.Settings, path func(string) string) ([]engine.Registry, error) {
	v := s.BuildkitConfig
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	origin := s.Origin("buildkit-config")
	if s.BuilderAddr != "" {
		return nil, fmt.Errorf("%s: a buildkitd.toml configures the embedded engine, and this step builds on the BuildKit at %s (%s), which its owner configures; drop one", origin, s.Origin("builder-addr"), s.BuilderAddr)
	}
	content := v
	if !strings.ContainsAny(v, "=[\n") {
		b, err := readInput(path, v, maxConfigFile)
		if err != nil {
			return nil, fmt.Errorf("%s: neither a buildkitd.toml's content nor a file that can be read: %w", origin, err)
		}
		content, origin = string(b), fmt.Sprintf("%s (%s)", origin, path(v))
	}
	var doc map[string]any
	if err := toml.Unmarshal([]byte(content), &doc); err != nil {
		return nil, fmt.Errorf("%s: not a buildkitd.toml: %w", origin, err)
	}
	var refused []string
	for k := range doc {
		if k != "registry" {
			refused = append(refused, k)
		}
	}
	regTable, ok := doc["registry"].(map[string]any)
	if _, given := doc["registry"]; given && !ok {
		refused = append(refused, "registry (a table of [registry.\"HOST\"] entries)")
	}
	var regs []engine.Registry
	for host, entry := range regTable {
		e, ok := entry.(map[string]any)
		if !ok {
			refused = append(refused, fmt.Sprintf("registry.%q (not a table)", host))
			continue
		}
		// BuildKit matches the host as written; Docker Hub is docker.io.
		h := host
		if n, err := registry.NormalizeHost(host); err != nil || strings.ContainsAny(host, "/ ") {
			return nil, fmt.Errorf("%s: [registry.%q]: not a registry host (HOST or HOST:PORT)", origin, host)
		} else if n == "index.docker.io" {
			h = "docker.io"
		}
		r := engine.Registry{Host: h}
		for k, val := range e {
			var err error
			switch k {
			case "mirrors":
				r.Mirrors, err = stringsOf(val)
			case "http":
				r.HTTP, err = boolOf(val)
			case "insecure":
				r.Insecure, err = boolOf(val)
			case "ca":
				if r.CAFiles, err = stringsOf(val); err == nil {
					for i, f := range r.CAFiles {
						r.CAFiles[i] = path(f)
						if _, serr := os.Stat(r.CAFiles[i]); serr != nil {
							err = fmt.Errorf("CA file: %w", serr)
						}
					}
				}
			default:
				refused = append(refused, fmt.Sprintf("registry.%q.%s", host, k))
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("%s: registry.%q.%s: %w", origin, host, k, err)
			}
		}
		regs = append(regs, r)
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return nil, fmt.Errorf("%s: hoist honours only the [registry.\"HOST\"] entries of a buildkitd.toml (mirrors, http, insecure, ca), and this one sets %s: the embedded engine is configured from hoist's settings (hoist settings lists them); drop these keys, or build on a BuildKit of your own configured with them (PLUGIN_BUILDER_REMOTE_CONN)", origin, strings.Join(refused, ", "))
	}
	sort.Slice(regs, func(i, j int) bool { return regs[i].Host < regs[j].Host })
	return regs, nil
}

// withConfigRegistries adds the registries of a buildkitd.toml to the
// step's own: one entry per host, the access of both.
func withConfigRegistries(own, cfg []engine.Registry) []engine.Registry {
	out := append([]engine.Registry(nil), own...)
	for _, c := range cfg {
		i := -1
		for j := range out {
			if out[j].Host == c.Host {
				i = j
			}
		}
		if i < 0 {
			out = append(out, c)
			continue
		}
		out[i].HTTP = out[i].HTTP || c.HTTP
		out[i].Insecure = out[i].Insecure || c.Insecure
		out[i].CAFiles = append(out[i].CAFiles, c.CAFiles...)
		out[i].Mirrors = append(out[i].Mirrors, c.Mirrors...)
	}
	return out
}

func stringsOf(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list of strings")
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("want a list of strings")
		}
		out = append(out, s)
	}
	return out, nil
}

func boolOf(v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("want true or false")
	}
	return b, nil
}

// kanikoRegistries is a buildkitd.toml's registry entries as the Kaniko
// executor's flags, which have the same four: Docker Hub's mirrors join
// mirrors (--registry-mirror), another registry's are --registry-map;
// http is --insecure-registry, insecure --skip-tls-verify-registry, ca
// --registry-certificate (one file a registry).
func kanikoRegistries(s *settings.Settings, path func(string) string, mirrors []string) ([]build.KanikoRegistry, []string, error) {
	cfg, err := buildkitConfigOf(s, path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", settings.ErrInvalid, err)
	}
	var out []build.KanikoRegistry
	for _, r := range cfg {
		k := build.KanikoRegistry{Host: r.Host, Mirrors: r.Mirrors, PlainHTTP: r.HTTP, SkipVerify: r.Insecure}
		if r.Host == "docker.io" {
			k.Host, k.Mirrors = "index.docker.io", nil
			mirrors = append(append([]string(nil), mirrors...), r.Mirrors...)
		}
		switch len(r.CAFiles) {
		case 0:
		case 1:
			k.CAFile = r.CAFiles[0]
		default:
			return nil, nil, fmt.Errorf("%w: %s: registry.%q.ca: Kaniko takes one CA file a registry (--registry-certificate), and %d are given; join them into one PEM file", settings.ErrInvalid, s.Origin("buildkit-config"), r.Host, len(r.CAFiles))
		}
		out = append(out, k)
	}
	return out, mirrors, nil
}
