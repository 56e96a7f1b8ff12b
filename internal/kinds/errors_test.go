package kinds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/aws/smithy-go"

	"github.com/hoist-build/hoist/internal/harness"
)

// An ECR login AWS refuses keeps AWS's error as its cause (errors.As
// finds the smithy.APIError and its code) and says what failed as before.
func TestECRLoginErrorKeepsAWSError(t *testing.T) {
	t.Parallel()
	a := harness.StartAWS(t, "eu-west-3")
	a.Registry, a.Password = "123456789012.dkr.ecr.eu-west-3.amazonaws.com", "pw"
	cfg := &Config{Type: "ecr", Registry: a.Registry, ECR: ECRConfig{Endpoint: a.URL, AccessKey: "AKIAWRONGKEY0000", SecretKey: "wrong"}}
	kc, err := ecrKind{}.Keychain(cfg, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = kc.(*ECR).Login(ctx)
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "UnrecognizedClientException" {
		t.Errorf("errors.As(smithy.APIError): %v; error %v", api, err)
	}
	var kerr *Error
	want := "registry login failed: ECR GetAuthorizationToken at " + a.URL + " with access key AKIA…0000: UnrecognizedClientException: The security token included in the request is invalid."
	if !errors.As(err, &kerr) || !errors.Is(err, ErrLogin) || err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err, want)
	}
}

// An ACR login Azure AD refuses (a wrong client secret) keeps azidentity's
// error as its cause and says what failed in one line.
func TestACRLoginErrorKeepsAzureError(t *testing.T) {
	t.Parallel()
	aad := harness.StartAzure(t)
	pem, err := os.ReadFile(aad.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	cfg := &Config{Type: "acr", Repo: "hoisttest.azurecr.io/app", HTTP: client,
		ACR: ACRConfig{TenantID: aad.TenantID, ClientID: aad.ClientID, ClientSecret: "wrong-secret", AuthorityHost: aad.URL}}
	kc, err := acrKind{}.Keychain(cfg, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = kc.(*ACR).Login(ctx, "hoisttest.azurecr.io")
	var af *azidentity.AuthenticationFailedError
	if !errors.As(err, &af) || af.RawResponse == nil {
		t.Errorf("errors.As(*azidentity.AuthenticationFailedError) fails: %v", err)
	}
	if !errors.Is(err, ErrLogin) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "Azure AD token at "+aad.URL+" with the client secret of service principal "+aad.ClientID) {
		t.Errorf("message %q", err)
	}
}
