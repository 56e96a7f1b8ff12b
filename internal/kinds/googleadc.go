package kinds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/hoist-build/hoist/internal/files"
)

// adcTypes are the Application Default Credentials files hoist reads, as
// Google's libraries do: a service-account key, a user's gcloud login,
// workload identity federation, an impersonated service account.
var adcTypes = []google.CredentialsType{google.ServiceAccount, google.AuthorizedUser, google.ExternalAccount,
	google.ExternalAccountAuthorizedUser, google.ImpersonatedServiceAccount}

// maxADCFile bounds a credentials file's read.
const maxADCFile = 1 << 20

// metadataIP is the GCE/GKE metadata server's address.
const metadataIP = "169.254.169.254"

// ambient is Application Default Credentials, in Google's order, read from
// the step's environment (its GOOGLE_APPLICATION_CREDENTIALS, HOME,
// CLOUDSDK_CONFIG), never the process's: the file
// GOOGLE_APPLICATION_CREDENTIALS names, else gcloud's
// application_default_credentials.json. A nil token source with no error
// means neither is there: the metadata server is next (fromMetadata).
func (g *Google) ambient(ctx context.Context) (oauth2.TokenSource, string, error) {
	path, setting := g.Env.get("GOOGLE_APPLICATION_CREDENTIALS"), "GOOGLE_APPLICATION_CREDENTIALS"
	if path == "" {
		dir := g.Env.get("CLOUDSDK_CONFIG")
		if dir == "" && g.Env.get("HOME") != "" {
			dir = filepath.Join(g.Env.get("HOME"), ".config", "gcloud")
		}
		if dir == "" {
			return nil, "", nil
		}
		path, setting = filepath.Join(dir, "application_default_credentials.json"), "gcloud's application default credentials"
		if _, err := os.Stat(path); err != nil {
			return nil, "", nil
		}
	}
	b, err := files.Workspace("").ReadRegular(path, maxADCFile)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %w", ErrConfig, setting, err)
	}
	var meta struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, "", fmt.Errorf("%w: %s (%s) is no Google credentials JSON file (%s)", ErrConfig, setting, path, jsonProblem(err))
	}
	known := false
	for _, t := range adcTypes {
		known = known || string(t) == meta.Type
	}
	if !known {
		return nil, "", fmt.Errorf("%w: %s (%s) is a credentials file of type %q; hoist reads service_account, authorized_user, external_account, external_account_authorized_user and impersonated_service_account", ErrConfig, setting, path, clip(meta.Type))
	}
	if meta.Type == string(google.ExternalAccount) {
		if err := g.checkExternal(b, setting, path); err != nil {
			return nil, "", err
		}
	}
	creds, err := google.CredentialsFromJSONWithType(ctx, b, google.CredentialsType(meta.Type), cloudPlatform)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s (%s): %s", ErrConfig, setting, path, safe(err))
	}
	what := meta.Type + " credentials of " + setting + " (" + path + ")"
	if meta.ClientEmail != "" {
		what = meta.Type + " key of " + meta.ClientEmail + " from " + setting + " (" + path + ")"
	}
	return creds.TokenSource, what, nil
}

// fromMetadata asks the GCE/GKE metadata server (GCE_METADATA_HOST of the
// step's environment, else 169.254.169.254) for the access token of the
// instance's (or the pod's) service account, as kaniko-gar and
// docker-credential-gcr fall back to. Its first request is bounded by
// MetadataProbe, so that a machine without one fails soon, saying so.
func (g *Google) fromMetadata(ctx context.Context) (string, error) {
	host := g.Env.get("GCE_METADATA_HOST")
	if host == "" {
		host = metadataIP
	}
	probe := g.MetadataProbe
	if probe == 0 {
		probe = 3 * time.Second
	}
	c := metadata.NewWithOptions(&metadata.Options{Client: metadataClient(host)})
	pctx, cancel := context.WithTimeout(ctx, probe)
	email, err := c.EmailWithContext(pctx, "default")
	cancel()
	if err != nil {
		none := "none is set"
		if g.OIDCToken != "" {
			none = "PLUGIN_OIDC_TOKEN_ID is set without them, no other is"
		}
		return "", failure(err, ErrLogin, "a Google registry needs credentials: PLUGIN_JSON_KEY, PLUGIN_ACCESS_TOKEN, PLUGIN_OIDC_TOKEN_ID with the workload identity settings (PLUGIN_PROJECT_NUMBER, PLUGIN_POOL_ID, PLUGIN_PROVIDER_ID, PLUGIN_SERVICE_ACCOUNT_EMAIL), PLUGIN_USERNAME _json_key or oauth2accesstoken with PLUGIN_PASSWORD, or GOOGLE_APPLICATION_CREDENTIALS; %s, and no GCE/GKE metadata server answered at %s within %s (%s)", none, host, probe, metadataProblem(err))
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	body, err := c.GetWithContext(tctx, "instance/service-accounts/default/token")
	if err != nil {
		return "", failure(err, ErrLogin, "Google access token of service account %s from the metadata server at %s: %s", email, host, metadataProblem(err))
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("%w: the metadata server at %s returned no access token for service account %s", ErrLogin, host, email)
	}
	return tok.AccessToken, nil
}

// metadataClient talks to the metadata server at host, never through a
// proxy (it is link-local), whatever host the metadata package picks (it
// reads the process's GCE_METADATA_HOST; the step's is host).
func metadataClient(host string) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		ResponseHeaderTimeout: 10 * time.Second,
	}
	return &http.Client{Transport: hostRewrite{host: host, next: tr}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type hostRewrite struct {
	host string
	next http.RoundTripper
}

func (h hostRewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = "http", h.host, h.host
	return h.next.RoundTrip(r)
}

// metadataProblem is a metadata error without its body beyond a line.
func metadataProblem(err error) string {
	var me *metadata.Error
	if errors.As(err, &me) {
		return fmt.Sprintf("HTTP %d: %s", me.Code, clip(strings.TrimSpace(me.Message)))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			return op.Op + ": " + op.Err.Error()
		}
	}
	return clip(err.Error())
}

// clip keeps a message short.
func clip(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// jsonProblem says where JSON is malformed, never what it holds.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("JSON syntax error at byte %d", se.Offset)
	}
	return "not a JSON object"
}

// checkExternal refuses an external_account file whose token exchange
// or impersonation goes anywhere but Google's STS and IAM credentials
// APIs (or the endpoints PLUGIN_GOOGLE_STS_ENDPOINT and
// PLUGIN_GOOGLE_IAM_ENDPOINT name): such a file sends the content of its
// credential source (any file, any URL it names) to token_url, and a
// file a repository or an earlier step can write would carry the
// runner's secrets away.
func (g *Google) checkExternal(b []byte, setting, path string) error {
	var ext struct {
		TokenURL         string `json:"token_url"`
		ImpersonationURL string `json:"service_account_impersonation_url"`
	}
	if err := json.Unmarshal(b, &ext); err != nil {
		return fmt.Errorf("%w: %s (%s) is no Google credentials JSON file (%s)", ErrConfig, setting, path, jsonProblem(err))
	}
	for _, u := range []struct{ field, url, override, name string }{
		{"token_url", ext.TokenURL, g.cfg.STSURL, "PLUGIN_GOOGLE_STS_ENDPOINT"},
		{"service_account_impersonation_url", ext.ImpersonationURL, g.cfg.IAMURL, "PLUGIN_GOOGLE_IAM_ENDPOINT"},
	} {
		if u.url == "" && u.field != "token_url" {
			continue
		}
		if !googleEndpoint(u.url, u.override) {
			return fmt.Errorf("%w: %s (%s): its %s %q is not Google's (https://*.googleapis.com); an external account's token goes there, so hoist sends it nowhere else unless %s names that endpoint", ErrConfig, setting, path, u.field, clip(u.url), u.name)
		}
	}
	return nil
}

// googleEndpoint reports whether raw is an HTTPS endpoint of Google's
// APIs, or under the override endpoint the settings name.
func googleEndpoint(raw, override string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	if override != "" {
		o, err := url.Parse(override)
		if err == nil && o.Host != "" && strings.EqualFold(o.Scheme, u.Scheme) && strings.EqualFold(o.Host, u.Host) {
			return true
		}
	}
	host := strings.ToLower(u.Hostname())
	return u.Scheme == "https" && (host == "googleapis.com" || strings.HasSuffix(host, ".googleapis.com"))
}
