package kinds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

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
	if err := g.checkEndpoints(b, setting, path); err != nil {
		return nil, "", err
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
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.AccessToken == "" || strings.ContainsFunc(tok.AccessToken, unicode.IsControl) {
		return "", fmt.Errorf("%w: the metadata server at %s returned no usable access token for service account %s", ErrLogin, host, email)
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
	resp, err := h.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: maxMetadataBody}
	return resp, nil
}

// maxMetadataBody bounds what hoist reads of one metadata answer: a token
// or an e-mail address is a few kilobytes, and a server on the step's
// network that answers without end must not fill memory.
const maxMetadataBody = 64 << 10

// boundedBody fails a read past its limit, rather than cutting the body
// short (a cut token would be sent on as if whole).
type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("the metadata server's answer is larger than %d KiB", maxMetadataBody>>10)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
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

// adcNode is a credentials object as Google's library follows it: an
// impersonated_service_account's source_credentials is another, which
// may be impersonated in turn, to any depth.
type adcNode struct {
	Type             string   `json:"type"`
	TokenURL         string   `json:"token_url"`
	ImpersonationURL string   `json:"service_account_impersonation_url"`
	Source           *adcNode `json:"source_credentials"`
}

// checkEndpoints refuses a credentials file that sends what it obtains
// anywhere but Google's STS and IAM credentials APIs (or the endpoints
// PLUGIN_GOOGLE_STS_ENDPOINT and PLUGIN_GOOGLE_IAM_ENDPOINT name), at
// every level Google's library follows: an external_account sends the
// content of its credential source (any file, any URL it names) to its
// token_url, then the token to its service_account_impersonation_url; an
// impersonated_service_account sends its source credentials' token to
// its service_account_impersonation_url. A file a repository or an
// earlier step can write would otherwise carry the runner's secrets away.
// The other types send only what the file holds itself.
func (g *Google) checkEndpoints(b []byte, setting, path string) error {
	var top adcNode
	if err := json.Unmarshal(b, &top); err != nil {
		return fmt.Errorf("%w: %s (%s) is no Google credentials JSON file (%s)", ErrConfig, setting, path, jsonProblem(err))
	}
	prefix := ""
	for n := &top; n != nil; n, prefix = n.Source, prefix+"source_credentials." {
		type endpoint struct{ field, url, override, name string }
		sts := endpoint{"token_url", n.TokenURL, g.cfg.STSURL, "PLUGIN_GOOGLE_STS_ENDPOINT"}
		iam := endpoint{"service_account_impersonation_url", n.ImpersonationURL, g.cfg.IAMURL, "PLUGIN_GOOGLE_IAM_ENDPOINT"}
		var check []endpoint
		switch n.Type {
		case string(google.ExternalAccount):
			check = []endpoint{sts, iam}
		case string(google.ImpersonatedServiceAccount):
			check = []endpoint{iam}
		}
		for _, u := range check {
			if u.url == "" && u.field != "token_url" {
				continue
			}
			if !googleEndpoint(u.url, u.override) {
				return fmt.Errorf("%w: %s (%s): its %s%s %q is not Google's (https://*.googleapis.com); a token, or what a credential source holds, goes there, so hoist sends it nowhere else unless %s names that endpoint", ErrConfig, setting, path, prefix, u.field, clip(u.url), u.name)
			}
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
