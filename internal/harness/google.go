package harness

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Google is a local stand-in for Google's OAuth token endpoint (the JWT
// bearer grant a service-account key makes: the assertion's RS256
// signature is checked with the key's public half, its issuer, audience,
// scope and expiry too), Google STS (the token exchange of workload
// identity federation: subject token and audience checked) and the IAM
// credentials API (generateAccessToken, with the STS token). Each flow ends
// with AccessToken, the password the registry accepts for
// oauth2accesstoken.
type Google struct {
	URL         string
	KeyFile     string // a service-account JSON key whose token_uri is URL/token
	ClientEmail string
	AccessToken string
	// Workload identity: the OIDC token and provider it accepts.
	OIDCToken, ProjectNumber, PoolID, ProviderID, ServiceAccount string

	key   *rsa.PrivateKey
	mu    sync.Mutex
	Calls map[string]int
}

// StartGoogle starts the stand-in and writes its key into a temp dir.
// CallCount is how many times an endpoint was called, read under the lock.
func (g *Google) CallCount(k string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.Calls[k]
}

func StartGoogle(t testing.TB) *Google {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	g := &Google{key: key, ClientEmail: "pusher@hoist-test.iam.gserviceaccount.com", AccessToken: "ya29.hoist-" + randomHex(12),
		OIDCToken: "ci-oidc." + randomHex(12), ProjectNumber: "123456789", PoolID: "ci-pool", ProviderID: "ci-provider",
		ServiceAccount: "pusher@hoist-test.iam.gserviceaccount.com", Calls: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyJSON, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "hoist-test", "private_key_id": randomHex(8),
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": g.ClientEmail, "client_id": "1234", "token_uri": g.URL + "/token",
	})
	g.KeyFile = filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(g.KeyFile, keyJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *Google) count(k string) {
	g.mu.Lock()
	g.Calls[k]++
	g.mu.Unlock()
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (g *Google) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.URL.Path == "/token":
		g.count("token")
		form, _ := url.ParseQuery(string(body))
		if form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "want the JWT bearer grant")
			return
		}
		if err := g.checkAssertion(form.Get("assertion")); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_grant", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": g.AccessToken, "expires_in": 3600, "token_type": "Bearer"})
	case r.URL.Path == "/v1/token":
		g.count("sts")
		form, _ := url.ParseQuery(string(body))
		audience := fmt.Sprintf("//iam.googleapis.com/projects/%s/locations/global/workloadIdentityPools/%s/providers/%s", g.ProjectNumber, g.PoolID, g.ProviderID)
		switch {
		case form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange":
			oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid value for \"grant_type\".")
			return
		case form.Get("requested_token_type") != "urn:ietf:params:oauth:token-type:access_token":
			oauthError(w, http.StatusBadRequest, "invalid_request", "Invalid value for \"requested_token_type\".")
			return
		case form.Get("subject_token_type") != "urn:ietf:params:oauth:token-type:jwt" && form.Get("subject_token_type") != "urn:ietf:params:oauth:token-type:id_token":
			oauthError(w, http.StatusBadRequest, "invalid_request", "Invalid value for \"subject_token_type\".")
			return
		case !strings.Contains(form.Get("scope"), "https://www.googleapis.com/auth/cloud-platform"):
			oauthError(w, http.StatusBadRequest, "invalid_scope", "Invalid value for \"scope\".")
			return
		case form.Get("subject_token") != g.OIDCToken || form.Get("audience") != audience:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the subject token or the audience is not valid")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "sts-" + g.OIDCToken, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer", "expires_in": 3600})
	case r.URL.Path == "/v1/projects/-/serviceAccounts/"+g.ServiceAccount+":generateAccessToken":
		g.count("iam")
		if r.Header.Get("Authorization") != "Bearer sts-"+g.OIDCToken {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`)
			return
		}
		var req struct{ Scope []string }
		if json.Unmarshal(body, &req) != nil || !slices.Contains(req.Scope, "https://www.googleapis.com/auth/cloud-platform") {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":400,"message":"Scope required.","status":"INVALID_ARGUMENT"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"accessToken": g.AccessToken, "expireTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	default:
		http.NotFound(w, r)
	}
}

// checkAssertion verifies a JWT bearer assertion as Google does.
func (g *Google) checkAssertion(jwt string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fmt.Errorf("malformed assertion")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("malformed signature")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&g.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("Invalid JWT Signature.")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("malformed claims")
	}
	var c struct {
		Iss, Aud, Scope string
		Exp             int64
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("malformed claims")
	}
	switch {
	case c.Iss != g.ClientEmail:
		return fmt.Errorf("Invalid issuer")
	case c.Aud != g.URL+"/token":
		return fmt.Errorf("Invalid audience")
	case !strings.Contains(c.Scope, "https://www.googleapis.com/auth/cloud-platform"):
		return fmt.Errorf("Invalid scope")
	case c.Exp < time.Now().Unix():
		return fmt.Errorf("Invalid JWT: Token must be a short-lived token")
	}
	return nil
}

// Metadata is a local stand-in for the GCE/GKE metadata server, reached
// through GCE_METADATA_HOST (its Host). It checks what the real one
// checks: a request without "Metadata-Flavor: Google" is refused (403), so
// is one with X-Forwarded-For (a request relayed by a proxy, 403); only GET
// is served; it answers the default service account's email, scopes and
// access token (token JSON: access_token, expires_in, token_type), each
// with the "Metadata-Flavor: Google" header, and 404 for anything else.
type Metadata struct {
	Host  string
	Email string
	// Token is the access token it hands out (the Google stand-in's, which
	// the registry accepts).
	Token string

	mu    sync.Mutex
	Calls map[string]int
}

// StartMetadata starts the metadata server of g's service account.
func (g *Google) StartMetadata(t testing.TB) *Metadata {
	t.Helper()
	m := &Metadata{Email: g.ClientEmail, Token: g.AccessToken, Calls: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(srv.Close)
	m.Host = strings.TrimPrefix(srv.URL, "http://")
	return m
}

// CallCount is how many times a path's last element (token, email,
// scopes, refused) was asked for.
func (m *Metadata) CallCount(k string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Calls[k]
}

func (m *Metadata) count(k string) {
	m.mu.Lock()
	m.Calls[k]++
	m.mu.Unlock()
}

func (m *Metadata) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Metadata-Flavor", "Google")
	w.Header().Set("Server", "Metadata Server for VM")
	switch {
	case r.Header.Get("X-Forwarded-For") != "":
		m.count("refused")
		http.Error(w, "Request had a X-Forwarded-For header and was rejected.", http.StatusForbidden)
		return
	case r.Header.Get("Metadata-Flavor") != "Google":
		m.count("refused")
		http.Error(w, "Missing Metadata-Flavor:Google header.", http.StatusForbidden)
		return
	case r.Method != http.MethodGet:
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	const sa = "/computeMetadata/v1/instance/service-accounts/default/"
	switch r.URL.Path {
	case sa + "email":
		m.count("email")
		w.Header().Set("Content-Type", "application/text")
		io.WriteString(w, m.Email)
	case sa + "scopes":
		m.count("scopes")
		w.Header().Set("Content-Type", "application/text")
		io.WriteString(w, "https://www.googleapis.com/auth/cloud-platform\n")
	case sa + "token":
		m.count("token")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": m.Token, "expires_in": 3599, "token_type": "Bearer"})
	default:
		http.NotFound(w, r)
	}
}

// GARLogin reports whether Artifact Registry's token endpoint would
// accept these basic credentials for g's service account, in the forms it
// takes: oauth2accesstoken with an access token Google issued, _json_key
// with the service-account key's JSON (any formatting), _json_key_base64
// with its base64. A key is the account's if its client_email and
// private_key are.
func (g *Google) GARLogin(user, password string) bool {
	switch user {
	case "oauth2accesstoken":
		return password == g.AccessToken
	case "_json_key_base64":
		b, err := base64.StdEncoding.DecodeString(password)
		if err != nil {
			return false
		}
		password = string(b)
	case "_json_key":
	default:
		return false
	}
	var got, want struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	b, err := os.ReadFile(g.KeyFile)
	if err != nil || json.Unmarshal(b, &want) != nil || json.Unmarshal([]byte(password), &got) != nil {
		return false
	}
	return got == want
}
