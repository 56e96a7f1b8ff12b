package kinds

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// credential is the Azure AD credential of the step's settings, made
// once: an OIDC federated token, a client secret, a client certificate
// (the setting's, or the file the step's AZURE_CLIENT_CERTIFICATE_PATH
// names), workload identity (the step's AZURE_FEDERATED_TOKEN_FILE), else
// the machine's managed identity. Nothing is read from the process's
// environment (the SDK's default chain would).
func (a *ACR) credential() (azcore.TokenCredential, error) {
	a.credOnce.Do(func() {
		a.cred, a.credErr = a.newCredential(a.clientOptions())
		if a.credErr != nil && !errors.Is(a.credErr, ErrConfig) {
			a.credErr = fmt.Errorf("%w: Azure %s: %w", ErrConfig, a.what, a.credErr)
		}
	})
	return a.cred, a.credErr
}

// clientOptions are the SDK's client options: hoist's HTTP client, and
// always an explicit authority (the SDK would read AZURE_AUTHORITY_HOST
// from the process's environment).
func (a *ACR) clientOptions() azcore.ClientOptions {
	opts := azcore.ClientOptions{Cloud: cloud.AzurePublic}
	if a.HTTP != nil {
		opts.Transport = a.HTTP
	}
	if a.cfg.AuthorityHost != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: a.cfg.AuthorityHost}
	}
	return opts
}

// needIDs is the error of a credential that needs the tenant and client.
func (a *ACR) needIDs(kind string) error {
	if a.cfg.TenantID == "" || a.cfg.ClientID == "" {
		return fmt.Errorf("%w: tenantId and clientId must be provided for %s (TENANT_ID / AZURE_TENANT_ID and CLIENT_ID / AZURE_CLIENT_ID)", ErrConfig, kind)
	}
	return nil
}

func (a *ACR) newCredential(opts azcore.ClientOptions) (azcore.TokenCredential, error) {
	certFile := a.Env.get("AZURE_CLIENT_CERTIFICATE_PATH")
	tokenFile := a.Env.get("AZURE_FEDERATED_TOKEN_FILE")
	var need string
	switch {
	case a.OIDCToken != "":
		need = "OIDC authentication"
	case a.cfg.ClientSecret != "":
		need = "a client secret"
	case a.cfg.ClientCertificate != "" || certFile != "":
		need = "a client certificate"
	case tokenFile != "":
		need = "workload identity (AZURE_FEDERATED_TOKEN_FILE)"
	}
	if need != "" {
		if err := a.needIDs(need); err != nil {
			return nil, err
		}
	}
	switch {
	case a.OIDCToken != "":
		token := a.OIDCToken
		a.what = "OIDC federated token of client " + a.cfg.ClientID
		return azidentity.NewClientAssertionCredential(a.cfg.TenantID, a.cfg.ClientID,
			func(context.Context) (string, error) { return token, nil },
			&azidentity.ClientAssertionCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
	case a.cfg.ClientSecret != "":
		a.what = "client secret of service principal " + a.cfg.ClientID
		return azidentity.NewClientSecretCredential(a.cfg.TenantID, a.cfg.ClientID, a.cfg.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
	case a.cfg.ClientCertificate != "" || certFile != "":
		a.what = "client certificate of service principal " + a.cfg.ClientID
		return a.certificateCredential(opts, certFile)
	case tokenFile != "":
		// Workload identity (AKS): the token file the step's
		// environment names.
		a.what = "workload identity (AZURE_FEDERATED_TOKEN_FILE) of client " + a.cfg.ClientID
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: opts,
			ClientID: a.cfg.ClientID, TenantID: a.cfg.TenantID, TokenFilePath: tokenFile, DisableInstanceDiscovery: true})
	}
	// The machine's managed identity, the user-assigned one the step's
	// CLIENT_ID names if any.
	a.what = "the default Azure credential chain (managed identity)"
	o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
	if a.cfg.ClientID != "" {
		o.ID = azidentity.ClientID(a.cfg.ClientID)
	}
	return azidentity.NewManagedIdentityCredential(o)
}

// certificateCredential is the service principal's certificate: the
// CLIENT_CERTIFICATE setting (PEM or its base64), else the PEM file of
// the step's AZURE_CLIENT_CERTIFICATE_PATH (with
// AZURE_CLIENT_CERTIFICATE_PASSWORD, as the SDK's environment credential
// reads them).
func (a *ACR) certificateCredential(opts azcore.ClientOptions, file string) (azcore.TokenCredential, error) {
	setting, pemBytes, password := "CLIENT_CERTIFICATE", []byte(a.cfg.ClientCertificate), []byte(nil)
	switch {
	case a.cfg.ClientCertificate != "" && !strings.Contains(a.cfg.ClientCertificate, "-----BEGIN"):
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.cfg.ClientCertificate))
		if err != nil {
			return nil, fmt.Errorf("%w: CLIENT_CERTIFICATE is neither PEM nor base64 PEM", ErrConfig)
		}
		pemBytes = b
	case a.cfg.ClientCertificate == "":
		setting = "AZURE_CLIENT_CERTIFICATE_PATH " + file
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrConfig, setting, err)
		}
		pemBytes = b
		if pw := a.Env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"); pw != "" {
			password = []byte(pw)
		}
	}
	certs, key, err := azidentity.ParseCertificates(pemBytes, password)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, setting, err)
	}
	return azidentity.NewClientCertificateCredential(a.cfg.TenantID, a.cfg.ClientID, certs, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
}
