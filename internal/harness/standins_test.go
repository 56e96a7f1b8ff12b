package harness

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// call sends a request and returns its status and body.
func call(t *testing.T, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// awsCall signs an AWS request as the SDK does, at the given time.
func awsCall(t *testing.T, a *AWS, creds aws.Credentials, service, target, body string, at time.Time) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.URL+"/", strings.NewReader(body))
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	} else {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, a.Region, at); err != nil {
		t.Fatal(err)
	}
	return call(t, nil, req)
}

// The AWS stand-in refuses what AWS refuses: a signature dated outside
// the 15-minute window, a session token that is not the one issued with
// its key, and a session token on long-term keys.
func TestAWSStandInChecksTokensAndClock(t *testing.T) {
	t.Parallel()
	a := StartAWS(t, "eu-west-1")
	const token = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
	static := aws.Credentials{AccessKeyID: a.AccessKey, SecretAccessKey: a.SecretKey}
	if code, body := awsCall(t, a, static, "ecr", token, "{}", time.Now()); code != http.StatusOK {
		t.Fatalf("a good request: %d %s", code, body)
	}
	for _, skew := range []time.Duration{-20 * time.Minute, 20 * time.Minute} {
		if code, body := awsCall(t, a, static, "ecr", token, "{}", time.Now().Add(skew)); code != http.StatusForbidden || !strings.Contains(body, "Signature expired") {
			t.Errorf("clock %s off: %d %s", skew, code, body)
		}
	}
	withToken := static
	withToken.SessionToken = "session-token-made-up"
	if code, body := awsCall(t, a, withToken, "ecr", token, "{}", time.Now()); code != http.StatusForbidden || !strings.Contains(body, "security token included in the request is invalid") {
		t.Errorf("long-term keys with a session token: %d %s", code, body)
	}

	form := url.Values{"Action": {"AssumeRole"}, "Version": {"2011-06-15"}, "RoleArn": {a.Role}, "RoleSessionName": {"t"}, "ExternalId": {a.ExternalID}}
	code, body := awsCall(t, a, static, "sts", "", form.Encode(), time.Now())
	if code != http.StatusOK {
		t.Fatalf("AssumeRole: %d %s", code, body)
	}
	var out struct {
		Result struct {
			Credentials struct{ AccessKeyId, SecretAccessKey, SessionToken string }
		} `xml:"AssumeRoleResult"`
	}
	if err := xml.Unmarshal([]byte(body), &out); err != nil || out.Result.Credentials.SessionToken == "" {
		t.Fatalf("AssumeRole answer %s: %v", body, err)
	}
	c := out.Result.Credentials
	session := aws.Credentials{AccessKeyID: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	if code, body := awsCall(t, a, session, "ecr", token, "{}", time.Now()); code != http.StatusOK {
		t.Errorf("the issued session: %d %s", code, body)
	}
	session.SessionToken = "session-token-of-another-key"
	if code, body := awsCall(t, a, session, "ecr", token, "{}", time.Now()); code != http.StatusForbidden || !strings.Contains(body, "security token included in the request is invalid") {
		t.Errorf("another session token: %d %s", code, body)
	}
}

// The Google stand-in's STS checks the grant, token types and scope of a
// token exchange, and generateAccessToken the scope asked for.
func TestGoogleStandInChecksExchangeAndScope(t *testing.T) {
	t.Parallel()
	g := StartGoogle(t)
	audience := "//iam.googleapis.com/projects/" + g.ProjectNumber + "/locations/global/workloadIdentityPools/" + g.PoolID + "/providers/" + g.ProviderID
	good := url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "subject_token": {g.OIDCToken}, "audience": {audience},
		"scope": {"https://www.googleapis.com/auth/cloud-platform"},
	}
	sts := func(change map[string]string) (int, string) {
		form := url.Values{}
		for k, v := range good {
			form[k] = v
		}
		for k, v := range change {
			form.Set(k, v)
		}
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return call(t, nil, req)
	}
	code, body := sts(nil)
	if code != http.StatusOK {
		t.Fatalf("a good exchange: %d %s", code, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal([]byte(body), &tok)
	for field, bad := range map[string]string{
		"grant_type":           "client_credentials",
		"requested_token_type": "urn:ietf:params:oauth:token-type:id_token",
		"subject_token_type":   "urn:ietf:params:oauth:token-type:saml2",
		"scope":                "https://www.googleapis.com/auth/devstorage.read_only",
	} {
		if code, body := sts(map[string]string{field: bad}); code != http.StatusBadRequest || !strings.Contains(body, field) {
			t.Errorf("%s=%s: %d %s", field, bad, code, body)
		}
	}
	iam := func(scope string) (int, string) {
		b, _ := json.Marshal(map[string]any{"scope": []string{scope}})
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/projects/-/serviceAccounts/"+g.ServiceAccount+":generateAccessToken", strings.NewReader(string(b)))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		return call(t, nil, req)
	}
	if code, body := iam("https://www.googleapis.com/auth/cloud-platform"); code != http.StatusOK {
		t.Errorf("generateAccessToken: %d %s", code, body)
	}
	if code, body := iam("https://www.googleapis.com/auth/devstorage.read_only"); code != http.StatusBadRequest {
		t.Errorf("generateAccessToken for another scope: %d %s", code, body)
	}
}

// The Azure stand-in checks the scope asked for, the client assertion's
// type and expiry, and the ACR exchange the audience of the token it is
// given.
func TestAzureStandInChecksScopeAssertionAndAudience(t *testing.T) {
	t.Parallel()
	aad := StartAzure(t)
	reg, _ := StartACR(t, aad)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsTrusting(t, aad.CAFile)}}
	token := func(form url.Values) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, aad.URL+aad.TenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return call(t, client, req)
	}
	secret := func(scope string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {aad.ClientID}, "client_secret": {aad.Secret}, "scope": {scope}}
	}
	if code, body := token(secret("https://graph.microsoft.com/.default")); code != http.StatusUnauthorized || !strings.Contains(body, "AADSTS70011") {
		t.Errorf("another scope: %d %s", code, body)
	}
	oidc := url.Values{"grant_type": {"client_credentials"}, "client_id": {aad.ClientID}, "client_assertion": {aad.OIDCToken},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}, "scope": {"https://management.azure.com/.default"}}
	if code, body := token(oidc); code != http.StatusUnauthorized || !strings.Contains(body, "AADSTS700023") {
		t.Errorf("wrong assertion type: %d %s", code, body)
	}
	expired := aad.signedAssertion(t, time.Now().Add(-time.Hour))
	cert := url.Values{"grant_type": {"client_credentials"}, "client_id": {aad.ClientID}, "client_assertion": {expired},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "scope": {"https://management.azure.com/.default"}}
	if code, body := token(cert); code != http.StatusUnauthorized || !strings.Contains(body, "AADSTS700027") {
		t.Errorf("expired assertion: %d %s", code, body)
	}
	cert.Set("client_assertion", aad.signedAssertion(t, time.Now().Add(10*time.Minute)))
	if code, body := token(cert); code != http.StatusOK {
		t.Errorf("a valid assertion: %d %s", code, body)
	}

	exchange := func(scope string) (int, string) {
		code, body := token(secret(scope))
		if code != http.StatusOK {
			t.Fatalf("token for %s: %d %s", scope, code, body)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.Unmarshal([]byte(body), &tok)
		form := url.Values{"grant_type": {"access_token"}, "service": {reg.Host}, "tenant": {aad.TenantID}, "access_token": {tok.AccessToken}}
		req, _ := http.NewRequest(http.MethodPost, reg.URL()+"/oauth2/exchange", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return call(t, nil, req)
	}
	if code, body := exchange("https://management.azure.com/.default"); code != http.StatusOK {
		t.Errorf("exchange of an ARM token: %d %s", code, body)
	}
	if code, body := exchange("https://storage.azure.com/.default"); code != http.StatusUnauthorized {
		t.Errorf("exchange of a Storage token: %d %s", code, body)
	}
}

// tlsTrusting is a TLS config that trusts the CA in file.
func tlsTrusting(t *testing.T, file string) *tls.Config {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return &tls.Config{RootCAs: pool}
}

// signedAssertion is a client assertion signed with the stand-in's
// certificate key, as azidentity makes one, expiring at exp.
func (a *Azure) signedAssertion(t *testing.T, exp time.Time) string {
	t.Helper()
	var key *rsa.PrivateKey
	rest := []byte(a.CertPEM)
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "RSA PRIVATE KEY" {
			key, _ = x509.ParsePKCS1PrivateKey(blk.Bytes)
		}
	}
	if key == nil {
		t.Fatal("no key in CertPEM")
	}
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	aud := strings.TrimSuffix(a.URL, "/") + "/" + a.TenantID + "/oauth2/v2.0/token"
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." +
		enc(map[string]any{"iss": a.ClientID, "sub": a.ClientID, "aud": aud, "exp": exp.Unix(), "nbf": exp.Add(-time.Hour).Unix(), "jti": randomHex(8)})
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// The metadata server stand-in refuses what the real one refuses (no
// Metadata-Flavor header, a relayed request) and answers the default
// service account's email, scopes and token.
func TestMetadataStandInChecksFlavorAndForwarding(t *testing.T) {
	t.Parallel()
	m := StartGoogle(t).StartMetadata(t)
	get := func(path string, header map[string]string) (int, string, http.Header) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+m.Host+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	const sa = "/computeMetadata/v1/instance/service-accounts/default/"
	flavor := map[string]string{"Metadata-Flavor": "Google"}
	code, body, h := get(sa+"token", flavor)
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(body), &tok); code != http.StatusOK || err != nil || tok.AccessToken != m.Token || tok.ExpiresIn <= 0 || tok.TokenType != "Bearer" || h.Get("Metadata-Flavor") != "Google" {
		t.Errorf("token: %d %q %v", code, body, h)
	}
	if code, body, _ := get(sa+"email", flavor); code != http.StatusOK || body != m.Email {
		t.Errorf("email: %d %q", code, body)
	}
	if code, body, _ := get(sa+"scopes", flavor); code != http.StatusOK || !strings.Contains(body, "cloud-platform") {
		t.Errorf("scopes: %d %q", code, body)
	}
	if code, body, _ := get(sa+"token", nil); code != http.StatusForbidden || !strings.Contains(body, "Missing Metadata-Flavor:Google header") || strings.Contains(body, m.Token) {
		t.Errorf("without the header: %d %q", code, body)
	}
	if code, body, _ := get(sa+"token", map[string]string{"Metadata-Flavor": "Google", "X-Forwarded-For": "10.0.0.1"}); code != http.StatusForbidden || strings.Contains(body, m.Token) {
		t.Errorf("relayed: %d %q", code, body)
	}
	if code, _, _ := get("/computeMetadata/v1/instance/service-accounts/other/token", flavor); code != http.StatusNotFound {
		t.Errorf("another account: %d", code)
	}
	if m.CallCount("token") != 1 || m.CallCount("refused") != 2 {
		t.Errorf("calls %v", m.Calls)
	}
}
