package kinds

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/registry"
)

// Kind is one registry kind: which registry a step's repository names,
// which hosts are the kind's own, and how hoist logs in to them. Adding a
// kind is a file with one Kind, listed in All.
type Kind interface {
	// Names are how PLUGIN_REGISTRY_TYPE names the kind, lower case.
	Names() []string
	// Owns reports whether host is, by its name, one of the kind's
	// registries.
	Owns(host string) bool
	// Infer is the kind's name for a registry host it owns ("gar" or
	// "gcr" for Google's), "" for any other host.
	Infer(host string) string
	// Registry is the registry (and path prefix) the kind's settings name,
	// which the step's repository is under; "" when the repository is
	// taken as it is.
	Registry(c *Config) (string, error)
	// Keychain returns the kind's login, or nil when the step needs none
	// of it: selected says the step is of this kind, dests are the hosts
	// the step pushes to.
	Keychain(c *Config, selected bool, dests []string) (Keychain, error)
}

// Keychain is a kind's login. It answers for its own registries (anonymous
// elsewhere, so keychains compose), logs in once per step with the cloud's
// SDK, and stops when the context of a resolve ends.
type Keychain interface {
	authn.Keychain
	authn.ContextKeychain
	// Serves reports whether the keychain logs in to host.
	Serves(host string) bool
	// Secrets are the credentials the login obtained, to mask.
	Secrets() []string
	// Prepare readies repositories of its registries (full names,
	// REGISTRY/REPOSITORY) before anything is pushed to them (ECR: they
	// must exist).
	Prepare(ctx context.Context, repos []string) error
}

// All lists every kind; Parse finds one by name.
var All = []Kind{Docker{}, ecrKind{}, googleKind{}, acrKind{}}

// Config holds the settings of every kind, so that one step can push to
// registries of several kinds.
type Config struct {
	// Type is the step's kind name (PLUGIN_REGISTRY_TYPE), lower case.
	Type     string
	Registry string // PLUGIN_REGISTRY
	Repo     string // PLUGIN_REPO
	Username string // PLUGIN_USERNAME: ACR's admin user logs in as a Docker registry
	// Password is PLUGIN_PASSWORD: with user _json_key, _json_key_base64
	// or oauth2accesstoken, Google's registries log in with it.
	Password string
	// ExpandRepo puts a docker kind's repository under its registry.
	ExpandRepo bool
	// OIDCToken serves ECR's web identity, Google's workload identity and
	// Azure's federated credential.
	OIDCToken string

	ECR    ECRConfig
	Google GoogleConfig
	ACR    ACRConfig
	// ECRLogins are ECR registries with AWS credentials of their own
	// (PLUGIN_LOGINS); the rest of ECR's settings apply to them too.
	ECRLogins []ECRLogin

	// HTTP is the client of every cloud login.
	HTTP *http.Client
	// Env is the step's environment: the clouds' default credential
	// chains (AWS, Azure) read it, never the process's. Nil is empty.
	Env Lookup
}

// Parse returns the kind a PLUGIN_REGISTRY_TYPE value names ("" is docker)
// and its canonical name.
func Parse(t string) (Kind, string, error) {
	t = strings.ToLower(strings.TrimSpace(t))
	if t == "" {
		t = "docker"
	}
	for _, k := range All {
		if slices.Contains(k.Names(), t) {
			return k, t, nil
		}
	}
	return nil, "", fmt.Errorf("%q: want docker, ecr, gar, gcr or acr", t)
}

// Infer returns the kind a registry host names: an ECR, Artifact Registry,
// Container Registry or Azure host is that kind, anything else docker. The
// port, if any, is ignored.
func Infer(host string) (Kind, string) {
	for _, k := range All {
		if n := k.Infer(host); n != "" {
			return k, n
		}
	}
	return Docker{}, "docker"
}

// registryPath is PLUGIN_REGISTRY as HOST[/PATH]: without a scheme and
// without leading or trailing slashes.
func registryPath(reg string) string {
	if i := strings.Index(reg, "://"); i >= 0 {
		reg = reg[i+3:]
	}
	return strings.Trim(reg, "/")
}

// hostname is host without its port.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// ArtifactType is how the Harness and Drone artifact file names a kind.
func ArtifactType(name string) string {
	if name == "docker" {
		return "Docker"
	}
	return strings.ToUpper(name)
}

// Repository is the full repository the step's repository names: the
// kind's registry before it, unless it already starts with that registry's
// host (Harness passes ACR's whole repository).
func Repository(k Kind, c *Config) (string, error) {
	if c.Repo == "" {
		return "", nil
	}
	prefix, err := k.Registry(c)
	if err != nil || prefix == "" {
		return c.Repo, err
	}
	host, _, _ := strings.Cut(prefix, "/")
	if strings.HasPrefix(c.Repo, host+"/") {
		return c.Repo, nil
	}
	return prefix + "/" + strings.Trim(c.Repo, "/"), nil
}

// Keychains returns the logins a step needs: the ECR logins of
// registries with credentials of their own (first, each serving its
// registry only), its own kind's, and every other kind's whose registries
// a destination names or whose extra registries are set.
func Keychains(c *Config, step Kind, dests []string) ([]Keychain, error) {
	var out []Keychain
	var own []string
	for _, l := range c.ECRLogins {
		cfg := c.ECR
		cfg.Region, cfg.AccessKey, cfg.SecretKey = l.Region, l.AccessKey, l.SecretKey
		cfg.AssumeRole, cfg.ExternalID, cfg.Registry = "", "", ""
		out = append(out, &ECR{cfg: cfg, Hosts: []string{l.Host}, only: true, setting: l.Setting, HTTP: c.HTTP, Env: c.Env})
		own = append(own, l.Host)
	}
	for _, k := range All {
		kc, err := k.Keychain(c, k == step, dests)
		if err != nil {
			return nil, err
		}
		if e, ok := kc.(*ECR); ok {
			e.except = own
		}
		if kc != nil {
			out = append(out, kc)
		}
	}
	return out, nil
}

// Docker is a plain Docker registry: the repository is taken as it is,
// and its credentials are the static and docker-config ones.
type Docker struct{}

func (Docker) Names() []string                                    { return []string{"docker"} }
func (Docker) Owns(string) bool                                   { return false }
func (Docker) Infer(string) string                                { return "" }
func (Docker) Keychain(*Config, bool, []string) (Keychain, error) { return nil, nil }

// Registry is PLUGIN_REGISTRY with PLUGIN_EXPAND_REPO (Docker Hub aside),
// as the Kaniko plugin does; else the repository is taken as it is.
func (Docker) Registry(c *Config) (string, error) {
	reg := registryPath(c.Registry)
	if !c.ExpandRepo || reg == "" {
		return "", nil
	}
	host, err := registry.NormalizeHost(reg)
	if err != nil {
		return "", fmt.Errorf("%w: PLUGIN_REGISTRY %q: %w", ErrConfig, c.Registry, err)
	}
	switch host {
	case name.DefaultRegistry, "registry-1.docker.io", "registry.hub.docker.com":
		return "", nil
	}
	return reg, nil
}

// extraHosts is a kind's extra-registry setting, normalized.
func extraHosts(v, setting string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	h, err := registry.NormalizeHost(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, setting, err)
	}
	return []string{h}, nil
}

// hostOf is the host of a registry prefix (HOST/PROJECT).
func hostOf(prefix string) string {
	host, _, _ := strings.Cut(prefix, "/")
	return host
}

// used reports whether a kind's login is needed: the step is of the kind,
// it has extra registries, or a destination is on one of its registries.
func used(selected bool, extra []string, dests []string, owns func(string) bool) bool {
	return selected || len(extra) > 0 || slices.ContainsFunc(dests, owns)
}

// resolve is the shared body of the keychains' ResolveContext: anonymous
// for registries the keychain does not serve.
func resolve(serves func(string) bool, res authn.Resource, login func() (authn.AuthConfig, error)) (authn.Authenticator, error) {
	if !serves(res.RegistryStr()) {
		return authn.Anonymous, nil
	}
	ac, err := login()
	if err != nil {
		return nil, err
	}
	return authn.FromConfig(ac), nil
}
