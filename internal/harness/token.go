package harness

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TokenServer is a Docker registry token service (the "bearer realm" that
// Docker Hub, GHCR, Harbor and others use), the one part of that protocol
// distribution does not ship. It checks what a real one checks: the basic
// credentials of the token request, the service name, and it grants only
// the scopes asked for, in an ES256 JWT whose x5c certificate the registry
// trusts.
type TokenServer struct {
	URL     string
	Service string
	Issuer  string
	// Issued counts tokens handed out.
	Issued atomic.Int32
	// Accept, when set before the first request, accepts further basic
	// credentials at the token endpoint (a GAR stand-in's forms).
	Accept func(user, password string) bool

	user, password string
	key            *ecdsa.PrivateKey
	certDER        []byte
}

// StartTokenRegistry starts a real registry that demands bearer tokens from
// a token server this function also starts; user and password are what
// the token server accepts. The token service and the registry are served
// on one host:port, as Harbor and Docker Hub-like setups do (and as
// go-containerregistry requires of realms on private addresses, against
// SSRF): requests to /token are answered, all others are passed to the real
// registry unchanged.
func StartTokenRegistry(t testing.TB) (*Registry, *TokenServer) {
	t.Helper()
	ts := &TokenServer{Service: "hoist-test-registry", Issuer: "hoist-test-issuer", user: "hoist", password: "pw-" + randomHex(12)}
	ts.key, ts.certDER = selfSignedCA(t, "hoist test token signer")
	var backend atomic.Pointer[httputil.ReverseProxy]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/token" {
			ts.serve(w, req)
			return
		}
		backend.Load().ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	ts.URL = srv.URL + "/token"

	dir := t.TempDir()
	bundle := filepath.Join(dir, "token-root.pem")
	writePEM(t, bundle, "CERTIFICATE", ts.certDER)
	extra := fmt.Sprintf("auth: {token: {realm: %q, service: %q, issuer: %q, rootcertbundle: %q}}\n", ts.URL, ts.Service, ts.Issuer, bundle)
	r := startRegistryWith(t, RegistryOptions{}, dir, t.Cleanup, extra)
	target, _ := url.Parse(r.URL())
	backend.Store(httputil.NewSingleHostReverseProxy(target))
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	r.User, r.Password = ts.user, ts.password
	return r, ts
}

func (ts *TokenServer) serve(w http.ResponseWriter, req *http.Request) {
	user, pass, ok := req.BasicAuth()
	if !ok || (user != ts.user || pass != ts.password) && (ts.Accept == nil || !ts.Accept(user, pass)) {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	q := req.URL.Query()
	if q.Get("service") != ts.Service {
		http.Error(w, `{"errors":[{"code":"DENIED","message":"unknown service"}]}`, http.StatusBadRequest)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var grants []access
	for _, scope := range q["scope"] {
		parts := strings.Split(scope, ":")
		if len(parts) != 3 {
			continue
		}
		grants = append(grants, access{Type: parts[0], Name: parts[1], Actions: strings.Split(parts[2], ",")})
	}
	now := time.Now()
	header := map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}}
	claims := map[string]any{
		"iss": ts.Issuer, "sub": user, "aud": ts.Service,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": randomHex(8), "access": grants,
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	token := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	ts.Issued.Add(1)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": token, "access_token": token, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339)})
}

// Token asks the token server for a token of scope (e.g.
// "repository:mirror/trivy-db:pull") with its login, as a CI's step
// that logs in ahead of time does, and returns it: what a registry
// client then sends as a bearer token (TRIVY_REGISTRY_TOKEN).
func (ts *TokenServer) Token(t testing.TB, scope string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+"?service="+url.QueryEscape(ts.Service)+"&scope="+url.QueryEscape(scope), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(ts.user, ts.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Token == "" {
		t.Fatalf("token for %s: %d %v", scope, resp.StatusCode, err)
	}
	return body.Token
}
