package kinds

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/google/externalaccount"

	"github.com/hoist-build/hoist/internal/mask"
)

const cloudPlatform = "https://www.googleapis.com/auth/cloud-platform"

// googleUser is the user an access token logs in as.
const googleUser = "oauth2accesstoken"

// IsGoogleHost reports whether host is Artifact Registry's or Container
// Registry's.
func IsGoogleHost(host string) bool {
	host = hostname(host)
	return strings.HasSuffix(host, "-docker.pkg.dev") || host == "gcr.io" || strings.HasSuffix(host, ".gcr.io")
}

// GoogleConfig holds Artifact Registry's and Container Registry's
// settings.
type GoogleConfig struct {
	// JSONKey is a service-account key's JSON, its base64, or a path to it.
	JSONKey     string
	AccessToken string
	// ProjectID and Location (GAR) name the registry when PLUGIN_REGISTRY
	// does not.
	ProjectID, Location string
	// Workload identity federation, with Config.OIDCToken.
	ProjectNumber, PoolID, ProviderID, ServiceAccount string
	STSURL, IAMURL                                    string
	// Registry is one more registry Google's login serves
	// (PLUGIN_GAR_REGISTRY).
	Registry string
}

// googleKind is Artifact Registry (gar: LOCATION-docker.pkg.dev/PROJECT/...)
// and Container Registry (gcr: gcr.io/PROJECT/...): one login for both.
type googleKind struct{}

func (googleKind) Names() []string       { return []string{"gar", "gcr"} }
func (googleKind) Owns(host string) bool { return IsGoogleHost(host) }
func (googleKind) Infer(host string) string {
	switch {
	case !IsGoogleHost(host):
		return ""
	case strings.HasSuffix(hostname(host), "-docker.pkg.dev"):
		return "gar"
	}
	return "gcr"
}

// Registry is HOST/PROJECT: PLUGIN_REGISTRY as Harness passes it, or built
// from the location (GAR) and project.
func (googleKind) Registry(c *Config) (string, error) {
	reg := registryPath(c.Registry)
	g := c.Google
	if reg != "" {
		if !strings.Contains(reg, "/") && g.ProjectID != "" {
			reg += "/" + g.ProjectID
		}
		return reg, nil
	}
	switch {
	case g.ProjectID == "":
		return "", fmt.Errorf("%w: %s needs PLUGIN_REGISTRY (HOST/PROJECT) or PLUGIN_PROJECT_ID", ErrConfig, strings.ToUpper(c.Type))
	case c.Type == "gcr":
		return "gcr.io/" + g.ProjectID, nil
	case g.Location == "":
		return "", fmt.Errorf("%w: GAR needs PLUGIN_REGISTRY (LOCATION-docker.pkg.dev/PROJECT) or PLUGIN_LOCATION with PLUGIN_PROJECT_ID", ErrConfig)
	}
	return g.Location + "-docker.pkg.dev/" + g.ProjectID, nil
}

func (k googleKind) Keychain(c *Config, selected bool, dests []string) (Keychain, error) {
	if !used(selected, nonEmpty(c.Google.Registry), dests, k.Owns) {
		return nil, nil
	}
	g := &Google{cfg: c.Google, OIDCToken: c.OIDCToken, HTTP: c.HTTP, Env: c.Env}
	if selected {
		// The step's own login (PLUGIN_USERNAME/PLUGIN_PASSWORD) is for
		// the step's registry: a Docker registry connector's to GAR.
		g.user, g.password = c.Username, c.Password
		reg, err := k.Registry(c)
		if err != nil {
			return nil, err
		}
		g.Hosts = append(g.Hosts, hostOf(reg))
	}
	extra, err := extraHosts(c.Google.Registry, "PLUGIN_GAR_REGISTRY")
	g.Hosts = append(g.Hosts, extra...)
	return g, err
}

// Google logs in to Artifact Registry and Container Registry as user
// oauth2accesstoken with an OAuth access token: from a service-account JSON
// key, given ready, or from an OIDC token through workload identity
// federation (Google STS, then the service account's generateAccessToken);
// with none of them, from Application Default Credentials read from the
// step's environment (see ambient).
type Google struct {
	cfg       GoogleConfig
	OIDCToken string
	Hosts     []string
	HTTP      *http.Client
	// Env is the step's environment, where Application Default
	// Credentials are looked for (never the process's).
	Env Lookup
	// user and password are the step's login, in a form Google's
	// registries accept (see loginForm).
	user, password string
	// MetadataProbe bounds the first request to the metadata server
	// (default 3s): off Google's cloud nothing answers there.
	MetadataProbe time.Duration

	once  sync.Once
	token string
	err   error
}

// Serves reports whether this keychain logs in to host.
func (g *Google) Serves(host string) bool {
	return slices.Contains(g.Hosts, host) || IsGoogleHost(host)
}

// Resolve implements authn.Keychain.
func (g *Google) Resolve(res authn.Resource) (authn.Authenticator, error) {
	return g.ResolveContext(context.Background(), res)
}

// ResolveContext implements authn.ContextKeychain.
func (g *Google) ResolveContext(ctx context.Context, res authn.Resource) (authn.Authenticator, error) {
	return resolve(g.Serves, res, func() (authn.AuthConfig, error) {
		tok, err := g.Login(ctx)
		return authn.AuthConfig{Username: googleUser, Password: tok}, err
	})
}

// Secrets returns the access token, once fetched, for masking.
func (g *Google) Secrets() []string { return mask.LoginForms(googleUser, g.token) }

// Prepare has nothing to do: Google's repositories exist or are made by
// the first push.
func (g *Google) Prepare(context.Context, []string) error { return nil }

// Login fetches the access token once per run, from the first of these
// that is set, in the peers' order (plugins/gar hands its OIDC token and
// its key to plugins/docker, which prefers a username and password to
// both, and both to ACCESS_TOKEN): the step's own login
// (PLUGIN_USERNAME _json_key, _json_key_base64 or oauth2accesstoken with
// PLUGIN_PASSWORD); workload identity federation (PLUGIN_OIDC_TOKEN_ID
// with all four of its settings); a service-account key
// (PLUGIN_JSON_KEY); a ready token (PLUGIN_ACCESS_TOKEN, ACCESS_TOKEN);
// else Application Default Credentials from the step's environment.
func (g *Google) Login(ctx context.Context) (string, error) {
	g.once.Do(func() {
		if g.HTTP != nil {
			ctx = context.WithValue(ctx, oauth2.HTTPClient, g.HTTP)
		}
		var ts oauth2.TokenSource
		var what string
		var err error
		workload := g.cfg.ProjectNumber != "" && g.cfg.PoolID != "" && g.cfg.ProviderID != "" && g.cfg.ServiceAccount != ""
		switch {
		case g.password != "" && g.user == googleUser:
			g.token = g.password
			return
		case g.password != "" && (g.user == jsonKeyUser || g.user == jsonKeyBase64User):
			setting := "PLUGIN_PASSWORD (of user " + g.user + ")"
			key, err := loginKey(g.user, g.password)
			if err != nil {
				g.err = err
				return
			}
			if ts, what, err = keySource(ctx, key, setting); err != nil {
				g.err = err
				return
			}
		case g.password != "":
			g.err = fmt.Errorf("%w: PLUGIN_USERNAME %q is no login Google's registries take: use _json_key (PLUGIN_PASSWORD: a service-account key's JSON), _json_key_base64 (its base64) or oauth2accesstoken (an access token)", ErrConfig, clip(g.user))
			return
		case g.OIDCToken != "" && workload:
			if ts, what, err = g.federation(ctx); err != nil {
				g.err = err
				return
			}
		case g.cfg.JSONKey != "":
			key, err := readKey(g.cfg.JSONKey)
			if err != nil {
				g.err = err
				return
			}
			if ts, what, err = keySource(ctx, key, "PLUGIN_JSON_KEY"); err != nil {
				g.err = err
				return
			}
		case g.cfg.AccessToken != "":
			g.token = g.cfg.AccessToken
			return
		case g.OIDCToken != "" && (g.cfg.ProjectNumber != "" || g.cfg.PoolID != "" || g.cfg.ProviderID != "" || g.cfg.ServiceAccount != ""):
			g.err = fmt.Errorf("%w: Google workload identity needs PLUGIN_PROJECT_NUMBER, PLUGIN_POOL_ID, PLUGIN_PROVIDER_ID and PLUGIN_SERVICE_ACCOUNT_EMAIL with PLUGIN_OIDC_TOKEN_ID", ErrConfig)
			return
		default:
			if ts, what, err = g.ambient(ctx); err != nil {
				g.err = err
				return
			}
			if ts == nil {
				g.token, g.err = g.fromMetadata(ctx)
				return
			}
		}
		tok, err := ts.Token()
		if err != nil {
			g.err = fmt.Errorf("%w: Google access token from the %s: %s", ErrLogin, what, safe(err))
			return
		}
		g.token = tok.AccessToken
	})
	return g.token, g.err
}

// keySource is the token source of a service-account key given as
// setting.
func keySource(ctx context.Context, key []byte, setting string) (oauth2.TokenSource, string, error) {
	var meta struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		TokenURI    string `json:"token_uri"`
	}
	if err := json.Unmarshal(key, &meta); err != nil || meta.Type != "service_account" || meta.ClientEmail == "" {
		return nil, "", fmt.Errorf("%w: %s is not a Google service-account JSON key (it needs \"type\": \"service_account\", client_email and private_key)", ErrConfig, setting)
	}
	creds, err := google.CredentialsFromJSONWithType(ctx, key, google.ServiceAccount, cloudPlatform)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %s", ErrConfig, setting, safe(err))
	}
	return creds.TokenSource, "service-account key of " + meta.ClientEmail + " at " + orDefault(meta.TokenURI, "Google's token endpoint"), nil
}

// federation is workload identity federation: the OIDC token exchanged at
// Google STS, then the service account's generateAccessToken.
func (g *Google) federation(ctx context.Context) (oauth2.TokenSource, string, error) {
	sts := orDefault(g.cfg.STSURL, "https://sts.googleapis.com")
	iam := orDefault(g.cfg.IAMURL, "https://iamcredentials.googleapis.com")
	cfg := externalaccount.Config{
		Audience:                       fmt.Sprintf("//iam.googleapis.com/projects/%s/locations/global/workloadIdentityPools/%s/providers/%s", g.cfg.ProjectNumber, g.cfg.PoolID, g.cfg.ProviderID),
		SubjectTokenType:               "urn:ietf:params:oauth:token-type:jwt",
		TokenURL:                       strings.TrimSuffix(sts, "/") + "/v1/token",
		ServiceAccountImpersonationURL: strings.TrimSuffix(iam, "/") + "/v1/projects/-/serviceAccounts/" + g.cfg.ServiceAccount + ":generateAccessToken",
		Scopes:                         []string{cloudPlatform},
		SubjectTokenSupplier:           oidcSupplier(g.OIDCToken),
	}
	ts, err := externalaccount.NewTokenSource(ctx, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("%w: Google workload identity: %s", ErrConfig, safe(err))
	}
	return ts, "OIDC token through workload identity pool " + g.cfg.PoolID + " at " + sts + " for " + g.cfg.ServiceAccount, nil
}

type oidcSupplier string

func (s oidcSupplier) SubjectToken(context.Context, externalaccount.SupplierOptions) (string, error) {
	return string(s), nil
}

// The user names of the logins Google's registries take besides
// oauth2accesstoken: a service-account key's JSON, or its base64.
const (
	jsonKeyUser       = "_json_key"
	jsonKeyBase64User = "_json_key_base64"
)

// loginKey is the service-account key of a _json_key or _json_key_base64
// login's password.
func loginKey(user, password string) ([]byte, error) {
	if user == jsonKeyUser {
		return []byte(strings.TrimSpace(password)), nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(password))
	if err != nil {
		return nil, fmt.Errorf("%w: PLUGIN_PASSWORD of user _json_key_base64 is not base64 (of a service-account key's JSON)", ErrConfig)
	}
	return b, nil
}

// readKey accepts the key's JSON, its base64 (as Harness passes it), or a
// path.
func readKey(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "{") {
		return []byte(v), nil
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		return b, nil
	}
	if b, err := os.ReadFile(v); err == nil {
		return b, nil
	}
	return nil, fmt.Errorf("%w: PLUGIN_JSON_KEY is neither JSON, nor base64 JSON, nor a readable file", ErrConfig)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// safe keeps an OAuth error's status and error code, never the request
// (which carries the assertion or the token), one line of at most 200
// bytes of each (the token endpoint's answer is not hoist's to print
// whole).
func safe(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code, desc := re.ErrorCode, re.ErrorDescription
		if code == "" {
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if json.Unmarshal(re.Body, &body) == nil {
				code, desc = body.Error, body.Description
			}
		}
		msg := code
		if desc != "" {
			msg += ": " + desc
		}
		if re.Response != nil {
			return fmt.Sprintf("%s (%s)", clip(msg), clip(re.Response.Status))
		}
		return clip(msg)
	}
	s := err.Error()
	if i := strings.Index(s, "Response:"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return clip(s)
}
