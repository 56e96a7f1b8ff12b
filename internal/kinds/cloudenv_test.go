package kinds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/hoist-build/hoist/internal/harness"
)

// envMap is a step's environment.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// The default AWS credential chain reads the step's environment, not the
// process's: the process names other, wrong credentials (and no instance
// metadata), the step names a web identity token file, a shared
// credentials profile or a container credentials endpoint, and the ECR
// login (at the local AWS stand-in) succeeds with the step's.
// (Not parallel: it sets the process's environment.)
func TestAWSDefaultChainReadsTheStepsEnvironment(t *testing.T) {
	a := harness.StartAWS(t, "eu-west-3")
	a.Registry, a.Password = "123456789012.dkr.ecr.eu-west-3.amazonaws.com", "ecr-pw-from-the-step"
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The process's environment: credentials AWS refuses.
	wrongToken := write("wrong-token", "not-the-token")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGPROCESSKEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-process-secret")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", wrongToken)
	t.Setenv("AWS_ROLE_ARN", a.Role)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	var asked int
	ecs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "ecs-auth" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		asked++
		json.NewEncoder(w).Encode(map[string]string{"AccessKeyId": a.AccessKey, "SecretAccessKey": a.SecretKey,
			"Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	}))
	defer ecs.Close()

	for _, c := range []struct {
		name string
		env  map[string]string
		done func() bool
	}{
		{"web identity", map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": write("token", a.WebIdentityToken), "AWS_ROLE_ARN": a.Role},
			func() bool { return a.CallCount("AssumeRoleWithWebIdentity") > 0 }},
		{"shared credentials profile", map[string]string{"AWS_PROFILE": "ci", "HOME": dir,
			"AWS_SHARED_CREDENTIALS_FILE": write("credentials", "[ci]\naws_access_key_id = "+a.AccessKey+"\naws_secret_access_key = "+a.SecretKey+"\n")},
			func() bool { return true }},
		{"container endpoint", map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": ecs.URL + "/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "ecs-auth"},
			func() bool { return asked > 0 }},
		{"keys", map[string]string{"AWS_ACCESS_KEY_ID": a.AccessKey, "AWS_SECRET_ACCESS_KEY": a.SecretKey}, func() bool { return true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := &Config{Type: "ecr", Registry: a.Registry, ECR: ECRConfig{Endpoint: a.URL, STSEndpoint: a.URL}, Env: EnvOf(envMap(c.env))}
			kc, err := ecrKind{}.Keychain(cfg, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			auth, err := kc.(*ECR).Login(ctx)
			if err != nil || auth.Username != "AWS" || auth.Password != a.Password {
				t.Errorf("login: %+v, %v; want the registry password, with the step's credentials", auth, err)
			}
			if !c.done() {
				t.Errorf("the step's credential source was not asked")
			}
		})
	}
}

// ACR's login without a secret, certificate or OIDC setting uses the
// workload identity token file the step's environment names
// (AZURE_FEDERATED_TOKEN_FILE), not the one the process's names, against
// the local Azure AD stand-in. (Not parallel: it sets the process's
// environment.)
func TestACRWorkloadIdentityReadsTheStepsEnvironment(t *testing.T) {
	aad := harness.StartAzure(t)
	dir := t.TempDir()
	wrong, right := filepath.Join(dir, "wrong"), filepath.Join(dir, "right")
	os.WriteFile(wrong, []byte("not-the-token"), 0o600)
	if err := os.WriteFile(right, []byte(aad.OIDCToken), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", wrong)
	t.Setenv("AZURE_CLIENT_ID", aad.ClientID)
	t.Setenv("AZURE_TENANT_ID", aad.TenantID)
	t.Setenv("AZURE_AUTHORITY_HOST", aad.URL)

	pem, err := os.ReadFile(aad.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	cfg := &Config{Type: "acr", Repo: "hoisttest.azurecr.io/app", HTTP: client,
		ACR: ACRConfig{TenantID: aad.TenantID, ClientID: aad.ClientID, AuthorityHost: aad.URL},
		Env: EnvOf(envMap(map[string]string{"AZURE_FEDERATED_TOKEN_FILE": right}))}
	kc, err := acrKind{}.Keychain(cfg, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := kc.(*ACR).credential()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil || aad.Audience(tok.Token) == "" {
		t.Errorf("token: %v; want one Azure AD issued for the step's federated token", err)
	}
}

// Temporary keys a step's environment gives (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, which the settings read, and AWS_SESSION_TOKEN)
// log in with their session token.
func TestECRTemporaryKeysFromTheStepsEnvironment(t *testing.T) {
	t.Parallel()
	a := harness.StartAWS(t, "eu-west-3")
	a.Registry, a.Password = "123456789012.dkr.ecr.eu-west-3.amazonaws.com", "ecr-pw"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stsc := sts.New(sts.Options{Region: a.Region, BaseEndpoint: aws.String(a.URL),
		Credentials: credentials.NewStaticCredentialsProvider(a.AccessKey, a.SecretKey, "")})
	out, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(a.Role), ExternalId: aws.String(a.ExternalID), RoleSessionName: aws.String("test")})
	if err != nil {
		t.Fatal(err)
	}
	key, secret, token := *out.Credentials.AccessKeyId, *out.Credentials.SecretAccessKey, *out.Credentials.SessionToken
	env := map[string]string{"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token}
	cfg := &Config{Type: "ecr", Registry: a.Registry, ECR: ECRConfig{Endpoint: a.URL, AccessKey: key, SecretKey: secret}, Env: EnvOf(envMap(env))}
	kc, err := ecrKind{}.Keychain(cfg, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth, err := kc.(*ECR).Login(ctx); err != nil || auth.Password != a.Password {
		t.Errorf("login with temporary keys: %+v, %v", auth, err)
	}
}

// ACR's login takes the service principal's certificate from the file the
// step's AZURE_CLIENT_CERTIFICATE_PATH names (as the SDK's environment
// credential did from the process's), against the local Azure AD
// stand-in, which checks the assertion's signature with the certificate.
func TestACRCertificateFileFromTheStepsEnvironment(t *testing.T) {
	t.Parallel()
	aad := harness.StartAzure(t)
	file := filepath.Join(t.TempDir(), "sp.pem")
	if err := os.WriteFile(file, []byte(aad.CertPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(aad.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, c := range []struct {
		name string
		env  map[string]string
		ok   bool
	}{
		{"the file", map[string]string{"AZURE_CLIENT_CERTIFICATE_PATH": file}, true},
		{"a missing file", map[string]string{"AZURE_CLIENT_CERTIFICATE_PATH": file + ".missing"}, false},
	} {
		cfg := &Config{Type: "acr", Repo: "hoisttest.azurecr.io/app", HTTP: client,
			ACR: ACRConfig{TenantID: aad.TenantID, ClientID: aad.ClientID, AuthorityHost: aad.URL}, Env: EnvOf(envMap(c.env))}
		kc, err := acrKind{}.Keychain(cfg, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := kc.(*ACR).credential()
		if !c.ok {
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "AZURE_CLIENT_CERTIFICATE_PATH "+file+".missing") {
				t.Errorf("%s: %v, want a settings error naming the file", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
		cancel()
		if err != nil || aad.Audience(tok.Token) == "" {
			t.Errorf("%s: %v; want a token Azure AD issued for the certificate", c.name, err)
		}
	}
}
