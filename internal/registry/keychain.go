// Package registry holds what hoist needs to talk to registries: the
// keychain built from the settings, the HTTP transport (CA, TLS, timeouts,
// a request meter) and the destination references.
package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/mask"
)

// ErrCredentials marks a credentials setting that cannot be used.
var ErrCredentials = errors.New("invalid credentials setting")

// Credentials are the login settings of one run.
type Credentials struct {
	// Registry is the host the username and password are for; empty means
	// the registry of DefaultFor.
	Registry string
	Username string
	Password string
	// DefaultFor names the registry used when Registry is empty.
	DefaultFor string
	// Extra are further logins, such as the base-image registry's.
	Extra []Login
	// Config is a docker config.json as JSON content or a file path.
	Config string
	// Lookup reads environment variables (DOCKER_CONFIG, HOME).
	Lookup func(string) (string, bool)
}

// Login is a username and password for one registry, or a token.
type Login struct {
	Registry, Username, Password string
	// Token, when set, is a registry token, sent as it is as a bearer
	// token (Trivy's TRIVY_REGISTRY_TOKEN): no username or password then.
	Token string
	// Setting names the settings, for messages.
	Setting string
}

// Keychain resolves credentials for a registry: the username and password
// for their registry first, then the docker config, then anonymous. It is
// an authn.Keychain, so the same chain serves pushes, pulls and
// BuildKit's session (base images, the layer cache).
type Keychain struct {
	static map[string]authn.AuthConfig
	config *configfile.ConfigFile
	// ConfigSource names where the docker config came from, for logs.
	ConfigSource string

	mu sync.Mutex
	// learned are the secrets credential helpers returned, to mask.
	learned []string
	// looked are the docker config's answers by key (nil: none), so that
	// a credential helper runs once per key and step: a helper is a
	// program on PATH, and after a Kaniko build the build's RUN steps may
	// have replaced it (see Warm).
	looked map[string]*authn.AuthConfig
}

var _ authn.Keychain = (*Keychain)(nil)

// NewKeychain builds the keychain of one run.
func NewKeychain(c Credentials) (*Keychain, error) {
	k := &Keychain{static: map[string]authn.AuthConfig{}}
	host := c.Registry
	if host == "" {
		host = c.DefaultFor
	}
	// The base-image login goes first so that the push login wins for a
	// registry named by both.
	logins := append(append([]Login(nil), c.Extra...), Login{Registry: host, Username: c.Username, Password: c.Password, Setting: "PLUGIN_REGISTRY/PLUGIN_USERNAME/PLUGIN_PASSWORD"})
	for _, l := range logins {
		if l.Username == "" && l.Password == "" && l.Token == "" {
			continue
		}
		h, err := NormalizeHost(l.Registry)
		if err != nil {
			return nil, fmt.Errorf("%w: registry %q (%s): %w", ErrCredentials, l.Registry, l.Setting, err)
		}
		if l.Token != "" {
			k.static[h] = authn.AuthConfig{RegistryToken: l.Token}
			continue
		}
		if l.Username == "" {
			return nil, fmt.Errorf("%w: a password is set for registry %s but no username (%s)", ErrCredentials, h, l.Setting)
		}
		k.static[h] = authn.AuthConfig{Username: l.Username, Password: l.Password}
	}
	cf, src, err := loadConfig(c.Config, c.Lookup)
	if err != nil {
		return nil, err
	}
	k.config, k.ConfigSource = cf, src
	return k, nil
}

// NormalizeHost turns the forms users write for a registry
// ("https://index.docker.io/v1/", "docker.io", "reg:5000/") into the host
// go-containerregistry uses.
func NormalizeHost(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", err
		}
		s = u.Host
	}
	s = strings.TrimSuffix(s, "/")
	if i := strings.Index(s, "/"); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return name.DefaultRegistry, nil
	}
	r, err := name.NewRegistry(s)
	if err != nil {
		return "", err
	}
	return r.RegistryStr(), nil
}

// loadConfig reads the docker config: JSON content, a file path, or the
// user's own ($DOCKER_CONFIG/config.json, ~/.docker/config.json).
func loadConfig(setting string, lookup func(string) (string, bool)) (*configfile.ConfigFile, string, error) {
	get := func(k string) string {
		if lookup == nil {
			return ""
		}
		v, _ := lookup(k)
		return v
	}
	setting = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(setting), "\ufeff"))
	if setting != "" && !strings.HasPrefix(setting, "{") && !strings.ContainsAny(setting, "/.") {
		// base64 of the JSON, as some CI secrets hold it.
		if b, err := base64.StdEncoding.DecodeString(setting); err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
			setting = string(bytes.TrimSpace(b))
		}
	}
	if setting != "" {
		if strings.HasPrefix(setting, "{") {
			cf := configfile.New("")
			if err := cf.LoadFromReader(strings.NewReader(setting)); err != nil {
				return nil, "", fmt.Errorf("%w: PLUGIN_CONFIG is neither valid JSON (%s) nor a path to an existing config file", ErrCredentials, jsonErr(err))
			}
			return cf, "PLUGIN_CONFIG (JSON)", nil
		}
		if strings.ContainsAny(setting, "{\n") || len(setting) > 4096 {
			// Text around JSON, or something that is no path: never
			// echoed, it may hold credentials.
			return nil, "", fmt.Errorf("%w: PLUGIN_CONFIG must be either valid JSON content (or its base64) or a path to an existing config file; it is neither (%d bytes, not shown)", ErrCredentials, len(setting))
		}
		b, err := os.ReadFile(setting)
		if err != nil {
			return nil, "", fmt.Errorf("%w: PLUGIN_CONFIG must be either valid JSON content (or its base64) or a path to an existing config file: %w", ErrCredentials, err)
		}
		cf := configfile.New(setting)
		if err := cf.LoadFromReader(bytes.NewReader(b)); err != nil {
			return nil, "", fmt.Errorf("%w: docker config %s: %v", ErrCredentials, setting, jsonErr(err))
		}
		return cf, setting, nil
	}
	dir := get("DOCKER_CONFIG")
	if dir == "" {
		if home := get("HOME"); home != "" {
			dir = filepath.Join(home, ".docker")
		}
	}
	if dir == "" {
		return nil, "", nil
	}
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, "", nil // no user config: anonymous
	}
	cf := configfile.New(p)
	if err := cf.LoadFromReader(bytes.NewReader(b)); err != nil {
		return nil, "", fmt.Errorf("%w: docker config %s: %v", ErrCredentials, p, jsonErr(err))
	}
	return cf, p, nil
}

// jsonErr keeps JSON errors short and free of the content (which holds
// secrets).
func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("JSON syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("JSON field %q has the wrong type", te.Field)
	}
	return "not a docker config"
}

// Resolve implements authn.Keychain.
func (k *Keychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	host := res.RegistryStr()
	if ac, ok := k.static[host]; ok {
		return authn.FromConfig(ac), nil
	}
	if k.config == nil {
		return authn.Anonymous, nil
	}
	for _, key := range []string{res.String(), host} {
		if key == name.DefaultRegistry {
			key = authn.DefaultAuthKey
		}
		k.mu.Lock()
		got, ok := k.looked[key]
		k.mu.Unlock()
		if !ok {
			ac, err := k.config.GetAuthConfig(key)
			if err != nil {
				helper := k.config.CredentialHelpers[host]
				if helper == "" {
					helper = k.config.CredentialsStore
				}
				if helper != "" {
					return nil, fmt.Errorf("%w: credential helper docker-credential-%s (named in %s) failed for %s: %w", ErrCredentials, helper, k.ConfigSource, host, err)
				}
				return nil, fmt.Errorf("%w: credentials for %s from %s: %w", ErrCredentials, host, k.ConfigSource, err)
			}
			if ac.Username != "" || ac.Password != "" || ac.Auth != "" || ac.IdentityToken != "" || ac.RegistryToken != "" {
				k.learn(ac.Username, ac.Password, ac.IdentityToken, ac.RegistryToken)
				got = &authn.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth, IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}
			}
			k.mu.Lock()
			if k.looked == nil {
				k.looked = map[string]*authn.AuthConfig{}
			}
			k.looked[key] = got
			k.mu.Unlock()
		}
		if got != nil {
			return authn.FromConfig(*got), nil
		}
	}
	return authn.Anonymous, nil
}

// Warm has the docker config answer for each resource now (running its
// credential helpers), so that later requests for them run no program:
// a step calls it before a Kaniko build, whose RUN steps may replace any
// program of the container.
func (k *Keychain) Warm(res ...authn.Resource) error {
	for _, r := range res {
		if _, err := k.Resolve(r); err != nil {
			return err
		}
	}
	return nil
}

// learn records what a credential helper (or the config) returned, so that
// the step masks it.
func (k *Keychain) learn(user, password string, tokens ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.learned = append(k.learned, mask.LoginForms(user, password)...)
	for _, t := range tokens {
		if t != "" {
			k.learned = append(k.learned, t)
		}
	}
}

// Secrets returns the credential strings this keychain holds statically, so
// that output can be masked.
func (k *Keychain) Secrets() []string {
	var out []string
	k.mu.Lock()
	out = append(out, k.learned...)
	k.mu.Unlock()
	for _, ac := range k.static {
		out = append(out, mask.LoginForms(ac.Username, ac.Password)...)
		if ac.RegistryToken != "" {
			out = append(out, ac.RegistryToken)
		}
	}
	if k.config != nil {
		for _, ac := range k.config.AuthConfigs {
			// The config's auth is decoded into user and password when
			// it is read; its base64 is what a printed config shows.
			out = append(out, mask.LoginForms(ac.Username, ac.Password)...)
			for _, s := range []string{ac.Auth, ac.IdentityToken, ac.RegistryToken} {
				if s != "" {
					out = append(out, s)
				}
			}
		}
	}
	return out
}
