package harness

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Azure is a local stand-in for the Azure AD token endpoint (HTTPS, as MSAL
// requires), answering the client-credentials grant of a service
// principal: the client secret, a federated OIDC assertion, or a
// certificate assertion (a JWT whose RS256 signature is checked with the
// certificate) must match, for the tenant and client it knows.
type Azure struct {
	URL      string // the authority host
	CAFile   string // its certificate, to trust
	TenantID string
	ClientID string
	Secret   string
	// OIDCToken is the federated token it accepts as an assertion.
	OIDCToken string
	// CertPEM is a certificate and key (PEM) it accepts.
	CertPEM string

	cert   *x509.Certificate
	mu     sync.Mutex
	issued map[string]string // access token → audience
	Calls  atomic.Int32
}

// StartAzure starts the stand-in.
func StartAzure(t testing.TB) *Azure {
	t.Helper()
	a := &Azure{TenantID: "tenant-" + randomHex(4), ClientID: "client-" + randomHex(4), Secret: "sp-secret-" + randomHex(12),
		OIDCToken: "az-oidc." + randomHex(12), issued: map[string]string{}}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: a.ClientID},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	a.cert, _ = x509.ParseCertificate(der)
	a.CertPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	srv := httptest.NewTLSServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.URL = srv.URL + "/"
	a.CAFile = filepath.Join(t.TempDir(), "aad-ca.pem")
	writePEM(t, a.CAFile, "CERTIFICATE", srv.Certificate().Raw)
	return a
}

// Audience is the audience of an access token the stand-in issued, ""
// for any other token.
func (a *Azure) Audience(token string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.issued[token]
}

// azureScopes are the scopes the stand-in issues tokens for: Azure
// Resource Manager's and ACR's own (what the ACR token exchange takes),
// and Storage's (which it does not).
var azureScopes = map[string]bool{
	"https://management.azure.com/.default":        true,
	"https://containerregistry.azure.net/.default": true,
	"https://storage.azure.com/.default":           true,
}

// acrAudiences are the token audiences the ACR exchange accepts.
var acrAudiences = map[string]bool{"https://management.azure.com": true, "https://containerregistry.azure.net": true}

func (a *Azure) serve(w http.ResponseWriter, r *http.Request) {
	base := strings.TrimSuffix(a.URL, "/") + "/" + a.TenantID
	switch {
	case r.URL.Path == "/"+a.TenantID+"/v2.0/.well-known/openid-configuration":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"token_endpoint": base + "/oauth2/v2.0/token", "authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer": base + "/v2.0", "jwks_uri": base + "/discovery/v2.0/keys", "response_types_supported": []string{"code"},
		})
	case r.URL.Path == "/"+a.TenantID+"/oauth2/v2.0/token":
		a.Calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		fail := func(code, desc string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
		}
		if form.Get("grant_type") != "client_credentials" || form.Get("client_id") != a.ClientID {
			fail("unauthorized_client", "AADSTS700016: Application with identifier '"+form.Get("client_id")+"' was not found in the directory.")
			return
		}
		// MSAL adds the OpenID scopes to the resource's .default one.
		var scope string
		for _, sc := range strings.Fields(form.Get("scope")) {
			if sc != "openid" && sc != "offline_access" && sc != "profile" {
				scope += sc
			}
		}
		if !azureScopes[scope] {
			fail("invalid_scope", "AADSTS70011: The provided request must include a 'scope' input parameter; the provided value for the input parameter 'scope' is not valid: '"+scope+"'.")
			return
		}
		assertion := form.Get("client_assertion")
		if assertion != "" && form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			fail("invalid_request", "AADSTS700023: The client_assertion_type is not valid.")
			return
		}
		switch {
		case form.Get("client_secret") != "":
			if form.Get("client_secret") != a.Secret {
				fail("invalid_client", "AADSTS7000215: Invalid client secret provided.")
				return
			}
		case form.Get("client_assertion") == a.OIDCToken:
		case form.Get("client_assertion") != "":
			if !a.certAssertion(form.Get("client_assertion"), base+"/oauth2/v2.0/token") {
				fail("invalid_client", "AADSTS700027: Client assertion contains an invalid signature.")
				return
			}
		default:
			fail("invalid_request", "AADSTS7000218: The request body must contain client_assertion or client_secret.")
			return
		}
		tok := "aad-" + randomHex(16)
		a.mu.Lock()
		a.issued[tok] = strings.TrimSuffix(scope, "/.default")
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
	default:
		http.NotFound(w, r)
	}
}

// certAssertion checks a JWT client assertion signed with the
// certificate's key, for this client and audience.
func (a *Azure) certAssertion(jwt, aud string) bool {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	pub, ok := a.cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return false
	}
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil && rsa.VerifyPSS(pub, crypto.SHA256, sum[:], sig, nil) != nil {
		return false
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Iss, Sub, Aud string
		Exp, Nbf      int64
	}
	json.Unmarshal(raw, &c)
	now := time.Now().Unix()
	return c.Iss == a.ClientID && c.Sub == a.ClientID && c.Aud == aud && c.Exp > now && c.Nbf <= now+300
}

// StartACR starts a real registry behind the ACR token exchange: requests
// to /oauth2/exchange with an Azure AD token the stand-in issued, for this
// registry, get the refresh token; the registry's htpasswd accepts exactly
// the ACR user and that refresh token. Both are on one host:port, as on
// ACR.
func StartACR(t testing.TB, aad *Azure) (*Registry, string) {
	t.Helper()
	return startACR(t, aad, "")
}

// StartACRNamed is StartACR served over HTTPS as name (NAME.azurecr.io,
// which the test maps to 127.0.0.1), with a certificate of a CA of its
// own: the registry's CAFile.
func StartACRNamed(t testing.TB, aad *Azure, name string) (*Registry, string) {
	t.Helper()
	return startACR(t, aad, name)
}

func startACR(t testing.TB, aad *Azure, named string) (*Registry, string) {
	refresh := "acr-refresh-" + randomHex(16)
	reg := StartRegistry(t, RegistryOptions{Auth: true, User: "00000000-0000-0000-0000-000000000000", Password: refresh})
	target, _ := url.Parse(reg.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var host string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/exchange" {
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			// The service is the login server the client addressed: with
			// a name, that name as on port 443 (reached through a route),
			// or with the test port.
			service := form.Get("service")
			if form.Get("grant_type") != "access_token" || (service != host && (named == "" || service != named)) || form.Get("tenant") != aad.TenantID || !acrAudiences[aad.Audience(form.Get("access_token"))] {
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"invalid access token"}]}`, http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"refresh_token": refresh})
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	front := *reg
	if named == "" {
		srv.Start()
		host = strings.TrimPrefix(srv.URL, "http://")
	} else {
		dir := t.TempDir()
		ca := NewCA(t, dir)
		crt, key := ca.Issue(t, dir, "acr", x509.ExtKeyUsageServerAuth, named)
		pair, err := tls.LoadX509KeyPair(crt, key)
		if err != nil {
			t.Fatal(err)
		}
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
		srv.StartTLS()
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
		host = named + ":" + port
		front.TLS, front.CAFile = true, ca.File
	}
	t.Cleanup(srv.Close)
	front.Host = host
	return &front, refresh
}
