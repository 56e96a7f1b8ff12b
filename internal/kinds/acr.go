package kinds

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/registry"
)

// ACRUser is the user name an ACR refresh token logs in as.
const ACRUser = "00000000-0000-0000-0000-000000000000"

// IsACRHost reports whether host is an Azure Container Registry.
func IsACRHost(host string) bool {
	host = hostname(host)
	return strings.HasSuffix(host, ".azurecr.io") || strings.HasSuffix(host, ".azurecr.cn") || strings.HasSuffix(host, ".azurecr.us") || strings.HasSuffix(host, ".azurecr.de")
}

// ACRConfig holds Azure Container Registry's settings.
type ACRConfig struct {
	TenantID, ClientID string
	ClientSecret       string
	// ClientCertificate is PEM (certificate and key), or its base64.
	ClientCertificate string
	// AuthorityHost overrides https://login.microsoftonline.com/.
	AuthorityHost string
	// Registry is one more registry ACR's login serves
	// (PLUGIN_ACR_REGISTRY).
	Registry string
}

// acrKind is Azure Container Registry: REGISTRY.azurecr.io/REPO.
type acrKind struct{}

func (acrKind) Names() []string       { return []string{"acr"} }
func (acrKind) Owns(host string) bool { return IsACRHost(host) }
func (acrKind) Infer(host string) string {
	if IsACRHost(host) {
		return "acr"
	}
	return ""
}

// Registry is the host Harness's full repository starts with, or
// PLUGIN_REGISTRY.
func (acrKind) Registry(c *Config) (string, error) {
	if first, _, ok := strings.Cut(c.Repo, "/"); ok && strings.ContainsAny(first, ".:") {
		return first, nil
	}
	if c.Registry == "" {
		return "", fmt.Errorf("%w: ACR needs PLUGIN_REPO as REGISTRY.azurecr.io/REPOSITORY, or PLUGIN_REGISTRY", ErrConfig)
	}
	return registry.NormalizeHost(c.Registry)
}

// Keychain is nil for ACR's admin user, who logs in with PLUGIN_USERNAME
// and PLUGIN_PASSWORD as to any Docker registry, and for a service
// principal's id and secret given as the step's username and password
// (drone-acr's SERVICE_PRINCIPAL_CLIENT_ID and _SECRET): as the peers do,
// such a pair logs in directly, whatever Azure AD settings are set too.
func (k acrKind) Keychain(c *Config, selected bool, dests []string) (Keychain, error) {
	a := c.ACR
	admin := c.Username != "" && (selected && c.Password != "" || a.ClientID == "" && a.ClientSecret == "" && a.ClientCertificate == "" && c.OIDCToken == "")
	if admin || !used(selected, nonEmpty(a.Registry), dests, k.Owns) {
		return nil, nil
	}
	extra, err := extraHosts(a.Registry, "PLUGIN_ACR_REGISTRY")
	if err != nil {
		return nil, err
	}
	kc := &ACR{cfg: a, OIDCToken: c.OIDCToken, HTTP: c.HTTP, Hosts: extra, Env: c.Env}
	if selected && c.Repo != "" {
		reg, err := k.Registry(c)
		if err != nil {
			return nil, err
		}
		kc.Hosts = append(kc.Hosts, reg)
	}
	return kc, nil
}

// ACR logs in to Azure Container Registry: an Azure AD token (service
// principal with a client secret or certificate, an OIDC federated token,
// or the default Azure credential chain) exchanged at the registry's
// /oauth2/exchange for a refresh token, the password of ACRUser.
type ACR struct {
	cfg       ACRConfig
	OIDCToken string
	Hosts     []string
	HTTP      *http.Client
	// Env is the step's environment (workload identity's token file).
	Env Lookup

	credOnce sync.Once
	cred     azcore.TokenCredential
	credErr  error
	what     string

	mu     sync.Mutex
	tokens map[string]string // registry → refresh token
}

// Serves reports whether this keychain logs in to host.
func (a *ACR) Serves(host string) bool {
	return slices.Contains(a.Hosts, host) || IsACRHost(host)
}

// Resolve implements authn.Keychain.
func (a *ACR) Resolve(res authn.Resource) (authn.Authenticator, error) {
	return a.ResolveContext(context.Background(), res)
}

// ResolveContext implements authn.ContextKeychain.
func (a *ACR) ResolveContext(ctx context.Context, res authn.Resource) (authn.Authenticator, error) {
	return resolve(a.Serves, res, func() (authn.AuthConfig, error) {
		tok, err := a.Login(ctx, res.RegistryStr())
		return authn.AuthConfig{Username: ACRUser, Password: tok}, err
	})
}

// Prepare has nothing to do: ACR makes repositories on the first push.
func (a *ACR) Prepare(context.Context, []string) error { return nil }

// Secrets returns the refresh tokens fetched so far, for masking.
func (a *ACR) Secrets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, t := range a.tokens {
		out = append(out, mask.LoginForms(ACRUser, t)...)
	}
	return out
}

// Login returns the registry's refresh token, fetched once per registry.
func (a *ACR) Login(ctx context.Context, registry string) (string, error) {
	a.mu.Lock()
	if t, ok := a.tokens[registry]; ok {
		a.mu.Unlock()
		return t, nil
	}
	a.mu.Unlock()
	cred, err := a.credential()
	if err != nil {
		return "", err
	}
	authority := a.cfg.AuthorityHost
	if authority == "" {
		authority = "https://login.microsoftonline.com/"
	}
	aad, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		return "", failure(err, ErrLogin, "Azure AD token at %s with the %s: %s", authority, a.what, firstLine(err))
	}
	reg, err := name.NewRegistry(registry)
	if err != nil {
		return "", err
	}
	exchange := reg.Scheme() + "://" + registry + "/oauth2/exchange"
	form := url.Values{"grant_type": {"access_token"}, "service": {registry}, "tenant": {a.cfg.TenantID}, "access_token": {aad.Token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, exchange, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := a.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: ACR token exchange at %s: %w", ErrLogin, exchange, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || out.RefreshToken == "" {
		return "", fmt.Errorf("%w: ACR token exchange at %s refused the Azure AD token of the %s (%s)", ErrLogin, exchange, a.what, resp.Status)
	}
	a.mu.Lock()
	if a.tokens == nil {
		a.tokens = map[string]string{}
	}
	a.tokens[registry] = out.RefreshToken
	a.mu.Unlock()
	return out.RefreshToken, nil
}

// firstLine keeps the telling line of an Azure SDK error (the AADSTS code
// and description), not the troubleshooting text and raw response.
func firstLine(err error) string {
	s := err.Error()
	lines := strings.Split(s, "\n")
	for _, key := range []string{"AADSTS", "error_description", "error"} {
		for _, l := range lines {
			if l = strings.TrimSpace(l); strings.Contains(l, key) {
				return strings.Trim(l, ",")
			}
		}
	}
	return strings.TrimSpace(lines[0])
}
