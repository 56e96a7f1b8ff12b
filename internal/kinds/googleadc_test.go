package kinds

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/harness"
)

// adcLogin logs in to a Google registry with no explicit credentials, in
// a step whose environment is env.
func adcLogin(t *testing.T, env map[string]string, probe time.Duration, cfg ...GoogleConfig) (string, error) {
	t.Helper()
	g := &Google{Env: EnvOf(envMap(env)), HTTP: http.DefaultClient, MetadataProbe: probe}
	if len(cfg) > 0 {
		g.cfg = cfg[0]
	}
	return g.Login(context.Background())
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Application Default Credentials come from the step's environment, in
// Google's order: GOOGLE_APPLICATION_CREDENTIALS (a service-account key,
// an external_account file of workload identity federation), else
// gcloud's application_default_credentials.json under HOME, else the
// metadata server at GCE_METADATA_HOST. The process's own variables name
// other, wrong places, and are never read.
// (Not parallel: it sets the process's environment.)
func TestGoogleApplicationDefaultCredentials(t *testing.T) {
	g := harness.StartGoogle(t)
	md := g.StartMetadata(t)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", writeFile(t, "wrong.json", `{"type":"service_account"}`))
	t.Setenv("GCE_METADATA_HOST", "127.0.0.1:1")
	t.Setenv("HOME", t.TempDir())

	oidc := writeFile(t, "oidc-token", g.OIDCToken)
	ext, _ := json.Marshal(map[string]any{
		"type":                              "external_account",
		"audience":                          "//iam.googleapis.com/projects/" + g.ProjectNumber + "/locations/global/workloadIdentityPools/" + g.PoolID + "/providers/" + g.ProviderID,
		"subject_token_type":                "urn:ietf:params:oauth:token-type:jwt",
		"token_url":                         g.URL + "/v1/token",
		"service_account_impersonation_url": g.URL + "/v1/projects/-/serviceAccounts/" + g.ServiceAccount + ":generateAccessToken",
		"credential_source":                 map[string]string{"file": oidc},
	})
	key, _ := os.ReadFile(g.KeyFile)
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".config", "gcloud"), 0o700)
	os.WriteFile(filepath.Join(home, ".config", "gcloud", "application_default_credentials.json"), key, 0o600)

	for _, c := range []struct {
		name  string
		env   map[string]string
		calls string
	}{
		{"key file", map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": g.KeyFile, "GCE_METADATA_HOST": md.Host}, "token"},
		{"external account", map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": writeFile(t, "ext.json", string(ext))}, "iam"},
		{"gcloud's file", map[string]string{"HOME": home, "GCE_METADATA_HOST": md.Host}, "token"},
		{"metadata server", map[string]string{"GCE_METADATA_HOST": md.Host, "HOME": t.TempDir()}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, mdBefore := g.CallCount(c.calls), md.CallCount("token")
			// The stand-in's STS and IAM endpoints, named as the settings
			// name them (an external account's are checked).
			tok, err := adcLogin(t, c.env, 0, GoogleConfig{STSURL: g.URL, IAMURL: g.URL})
			if err != nil || tok != g.AccessToken {
				t.Fatalf("token %q, %v", tok, err)
			}
			if c.calls == "" {
				if md.CallCount("token") != mdBefore+1 {
					t.Errorf("the metadata server was not asked: %v", md.Calls)
				}
				return
			}
			if g.CallCount(c.calls) != before+1 || md.CallCount("token") != mdBefore {
				t.Errorf("google calls %v, metadata calls %v", g.Calls, md.Calls)
			}
		})
	}
}

// Without a metadata server the login fails soon (a refused port at
// once, a server that never answers within the probe's bound), saying
// which credentials it looked for and where the metadata server was
// asked. Credentials files that cannot be used fail naming the file,
// never showing its content.
func TestGoogleApplicationDefaultCredentialsFailures(t *testing.T) {
	t.Parallel()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedHost := closed.Addr().String()
	closed.Close()
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	// A server that answers the token request without end, and one whose
	// token is no token.
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Metadata-Flavor", "Google")
		if strings.HasSuffix(r.URL.Path, "/email") {
			w.Write([]byte("sa@p.iam.gserviceaccount.com"))
			return
		}
		w.Write([]byte(`{"access_token":"`))
		chunk := []byte(strings.Repeat("a", 1<<20))
		for i := 0; i < 256; i++ { // bounded: 256 MiB at most
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(endless.Close)
	crooked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Metadata-Flavor", "Google")
		if strings.HasSuffix(r.URL.Path, "/email") {
			w.Write([]byte("sa@p.iam.gserviceaccount.com"))
			return
		}
		w.Write([]byte(`{"access_token":"ya29.a\r\nX-Injected: 1","token_type":"Bearer"}`))
	}))
	t.Cleanup(crooked.Close)
	secretish := `{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n","client_email":"x@y"`
	for _, c := range []struct {
		name     string
		env      map[string]string
		sentinel error
		want     []string
		within   time.Duration
	}{
		{"no metadata server", map[string]string{"GCE_METADATA_HOST": closedHost}, ErrLogin,
			[]string{"none is set, and no GCE/GKE metadata server answered at " + closedHost, "GOOGLE_APPLICATION_CREDENTIALS", "PLUGIN_JSON_KEY"}, 5 * time.Second},
		{"a metadata server that never answers", map[string]string{"GCE_METADATA_HOST": silent.Addr().String()}, ErrLogin,
			[]string{"no GCE/GKE metadata server answered at " + silent.Addr().String() + " within 500ms (no answer)"}, 3 * time.Second},
		{"a metadata answer without end", map[string]string{"GCE_METADATA_HOST": strings.TrimPrefix(endless.URL, "http://")}, ErrLogin,
			[]string{"the metadata server's answer is larger than 64 KiB"}, 10 * time.Second},
		{"a token with control characters", map[string]string{"GCE_METADATA_HOST": strings.TrimPrefix(crooked.URL, "http://")}, ErrLogin,
			[]string{"returned no usable access token for service account sa@p.iam.gserviceaccount.com"}, 5 * time.Second},
		{"truncated key", map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": writeFile(t, "cut.json", secretish)}, ErrConfig,
			[]string{"GOOGLE_APPLICATION_CREDENTIALS (", "is no Google credentials JSON file (JSON syntax error"}, time.Second},
		{"unknown type", map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": writeFile(t, "gdch.json", `{"type":"gdch_service_account"}`)}, ErrConfig,
			[]string{`is a credentials file of type "gdch_service_account"; hoist reads service_account`}, time.Second},
		{"missing file", map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/adc.json"}, ErrConfig,
			[]string{"GOOGLE_APPLICATION_CREDENTIALS: ", "/nonexistent/adc.json"}, time.Second},
		{"a FIFO", map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": "/dev/zero"}, ErrConfig,
			[]string{"not a regular file"}, time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := adcLogin(t, c.env, 500*time.Millisecond)
			if took := time.Since(start); took > c.within {
				t.Errorf("took %s, want under %s", took, c.within)
			}
			if !errors.Is(err, c.sentinel) {
				t.Fatalf("error %v, want %v", err, c.sentinel)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "not-a-key") {
				t.Errorf("the file's content is shown: %v", err)
			}
		})
	}
}

// An external_account file sends the content of its credential source
// (any file or URL it names) to its token_url, and an
// impersonated_service_account sends its source credentials' token to
// its service_account_impersonation_url: a file whose token_url or
// impersonation URL is not Google's, nor the endpoint the settings name,
// at any depth of source_credentials, is refused before anything is read
// or sent (the thief's server receives nothing).
func TestGoogleExternalAccountEndpointsAreGoogles(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var received []string
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		received = append(received, r.URL.Path+"?"+string(b))
		mu.Unlock()
		http.Error(w, "no", http.StatusBadRequest)
	}))
	defer thief.Close()
	secret := writeFile(t, "runner-secret", "a-runner-secret")
	external := func(tokenURL, impersonation string) map[string]any {
		return map[string]any{"type": "external_account", "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
			"subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": tokenURL, "service_account_impersonation_url": impersonation,
			"credential_source": map[string]string{"file": secret}}
	}
	impersonated := func(impersonation string, source map[string]any) map[string]any {
		return map[string]any{"type": "impersonated_service_account", "service_account_impersonation_url": impersonation, "source_credentials": source}
	}
	const googleIAM = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/x@y.iam.gserviceaccount.com:generateAccessToken"
	const googleSTS = "https://sts.googleapis.com/v1/token"
	for _, c := range []struct {
		name string
		file map[string]any
		want string
	}{
		{"token_url elsewhere", external(thief.URL+"/v1/token", ""), "its token_url \"" + thief.URL + "/v1/token\" is not Google's"},
		{"plain HTTP to a Google name", external("http://sts.googleapis.com/v1/token", ""), "its token_url"},
		{"a look-alike host", external("https://sts.googleapis.com.evil.example/v1/token", ""), "its token_url"},
		{"impersonation elsewhere", external(googleSTS, thief.URL+"/v1/projects/-/serviceAccounts/x:generateAccessToken"), "its service_account_impersonation_url"},
		{"an impersonated account's external source sends elsewhere", impersonated(googleIAM, external(thief.URL+"/v1/token", "")),
			"its source_credentials.token_url \"" + thief.URL + "/v1/token\" is not Google's"},
		{"an impersonated account's source impersonates elsewhere", impersonated(googleIAM, external(googleSTS, thief.URL+"/x:generateAccessToken")),
			"its source_credentials.service_account_impersonation_url"},
		{"an external account two levels down", impersonated(googleIAM, impersonated(googleIAM, external(thief.URL+"/v1/token", ""))),
			"its source_credentials.source_credentials.token_url"},
		{"an impersonated account impersonates elsewhere", impersonated(thief.URL+"/x:generateAccessToken", external(googleSTS, "")),
			"its service_account_impersonation_url \"" + thief.URL + "/x:generateAccessToken\" is not Google's"},
		{"a nested impersonation elsewhere", impersonated(googleIAM, impersonated(thief.URL+"/x:generateAccessToken", external(googleSTS, ""))),
			"its source_credentials.service_account_impersonation_url"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, _ := json.Marshal(c.file)
			_, err := adcLogin(t, map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": writeFile(t, "adc.json", string(b))}, time.Second)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "PLUGIN_GOOGLE_") {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(received) > 0 {
		t.Errorf("the foreign endpoint was called: %q", received)
	}
	for _, ok := range []string{"https://sts.googleapis.com/v1/token", "https://sts.europe-west1.rep.googleapis.com/v1/token"} {
		if !googleEndpoint(ok, "") {
			t.Errorf("%s refused", ok)
		}
	}
}

// Where several Google credentials meet, the peers' order holds
// (plugins/docker prefers the step's username and password to anything
// plugins/gar derives, and a key to ACCESS_TOKEN): the step's login, then
// workload identity federation, then the key, then a ready token.
func TestGoogleCredentialsPrecedence(t *testing.T) {
	t.Parallel()
	g := harness.StartGoogle(t)
	key, _ := os.ReadFile(g.KeyFile)
	workload := GoogleConfig{ProjectNumber: g.ProjectNumber, PoolID: g.PoolID, ProviderID: g.ProviderID, ServiceAccount: g.ServiceAccount, STSURL: g.URL, IAMURL: g.URL}
	for _, c := range []struct {
		name           string
		g              *Google
		token          string
		tokens, stsOps int
	}{
		{"login before key and token", &Google{user: "oauth2accesstoken", password: "login-token", cfg: GoogleConfig{JSONKey: string(key), AccessToken: "ready-token"}}, "login-token", 0, 0},
		{"federation before key", &Google{OIDCToken: g.OIDCToken, cfg: func() GoogleConfig { c := workload; c.JSONKey = string(key); c.AccessToken = "ready-token"; return c }()}, g.AccessToken, 0, 1},
		{"key before ready token", &Google{cfg: GoogleConfig{JSONKey: string(key), AccessToken: "ready-token"}}, g.AccessToken, 1, 0},
		{"ready token", &Google{cfg: GoogleConfig{AccessToken: "ready-token"}}, "ready-token", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			tokens, sts := g.CallCount("token"), g.CallCount("sts")
			c.g.HTTP = http.DefaultClient
			tok, err := c.g.Login(context.Background())
			if err != nil || tok != c.token {
				t.Fatalf("token %q, %v; want %q", tok, err, c.token)
			}
			if g.CallCount("token")-tokens != c.tokens || g.CallCount("sts")-sts != c.stsOps {
				t.Errorf("calls %v", g.Calls)
			}
		})
	}
}
