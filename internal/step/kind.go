package step

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/settings"
)

// kindOf is the step's registry kind and why: PLUGIN_REGISTRY_TYPE when it
// is set, else the kind the registry's host names (a runner's ECR, GAR,
// GCR and ACR steps send no type: the peers know it from their image).
// Credentials of one kind with a host that names another are refused, so
// that a VPC endpoint or a private domain never gets a silent push
// elsewhere.
func kindOf(s *settings.Settings) (kinds.Kind, string, string, error) {
	if s.RegistryType != "" {
		k, n, err := kinds.Parse(s.RegistryType)
		if err != nil {
			return nil, "", "", fmt.Errorf("%w: %s=%w", settings.ErrInvalid, s.Origin("registry-type"), err)
		}
		return k, n, s.Origin("registry-type") + " says so", nil
	}
	host, from := registryHost(s)
	k, n := kinds.Infer(host)
	why := fmt.Sprintf("%s names %s", from, host)
	switch {
	case host == "":
		why = "no registry is named (Docker Hub)"
	case n == "docker":
		why = fmt.Sprintf("%s names %s, which is no cloud registry's host", from, host)
	}
	for _, c := range kindCredentials(s) {
		if c.kind == n || (c.kind == "gar" && n == "gcr") || otherwiseUsed(s, c.kind) {
			continue
		}
		where := "the registry " + host
		if host == "" {
			where = "Docker Hub (no PLUGIN_REGISTRY)"
		}
		return nil, "", "", fmt.Errorf("%w: %s (%s credentials) are set, but %s is no %s host, so the registry kind would be %s; set PLUGIN_REGISTRY_TYPE=%s when the registry is a VPC endpoint or a private domain of %s, else remove them",
			settings.ErrInvalid, c.names, strings.ToUpper(c.kind), where, strings.ToUpper(c.kind), n, c.kind, strings.ToUpper(c.kind))
	}
	return k, n, why, nil
}

// registryHost is the host the step's registry is on: PLUGIN_REGISTRY's,
// else the one PLUGIN_REPO starts with; "" for Docker Hub.
func registryHost(s *settings.Settings) (host, from string) {
	if s.Registry != "" {
		h, err := registry.NormalizeHost(s.Registry)
		if err == nil && h != name.DefaultRegistry {
			return h, s.Origin("registry")
		}
		return "", s.Origin("registry")
	}
	first, _, ok := strings.Cut(s.Repo, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return strings.ToLower(first), s.Origin("repo")
	}
	return "", s.Origin("repo")
}

// kindCredential is a group of settings that only one kind uses.
type kindCredential struct{ kind, names string }

// kindCredentials lists the kind-specific credentials that are set. Only
// what a step is given counts: AWS_ACCESS_KEY_ID and the like may be in a
// runner's environment for other tools.
func kindCredentials(s *settings.Settings) []kindCredential {
	var out []kindCredential
	given := func(flag string, prefixes ...string) bool {
		o := s.Origin(flag)
		if !s.IsSet(flag) || o == "default" {
			return false
		}
		for _, p := range prefixes {
			if strings.HasPrefix(o, p) {
				return true
			}
		}
		return len(prefixes) == 0
	}
	set := func(kind string, flags ...string) {
		var names []string
		for _, f := range flags {
			if given(f, "PLUGIN_", "ECR_", "GCR_", "CLIENT_", "TENANT_", "--") {
				names = append(names, s.Origin(f))
			}
		}
		if len(names) > 0 {
			out = append(out, kindCredential{kind, strings.Join(names, " and ")})
		}
	}
	set("ecr", "access-key", "assume-role", "account")
	set("gar", "json-key", "pool-id", "provider-id", "location")
	if s.ClientID != "" && s.TenantID != "" && s.IsSet("client-id") && s.IsSet("tenant-id") {
		out = append(out, kindCredential{"acr", s.Origin("client-id") + " and " + s.Origin("tenant-id")})
	}
	return out
}

// otherwiseUsed reports whether a kind's login serves registries besides
// the step's own: its extra-registry setting is set, or a destination is
// on one of its hosts (a run mixing kinds).
func otherwiseUsed(s *settings.Settings, kind string) bool {
	extra := map[string]string{"ecr": s.ECRRegistry, "gar": s.GARRegistry, "acr": s.ACRRegistry}[kind]
	if extra != "" {
		return true
	}
	k, _, err := kinds.Parse(kind)
	if err != nil {
		return false
	}
	for _, d := range s.Destinations {
		if host, _, ok := strings.Cut(d, "/"); ok && k.Owns(host) {
			return true
		}
	}
	return false
}
