package cli

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/settings"
)

// kindOf is the settings' registry kind and its name, checked.
func kindOf(s *settings.Settings) (kinds.Kind, string, error) {
	k, name, err := kinds.Parse(s.RegistryType)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s=%w", settings.ErrInvalid, s.Origin("registry-type"), err)
	}
	return k, name, nil
}

// kindConfig gathers the settings of every registry kind; paths are
// resolved against the working directory by path.
func kindConfig(s *settings.Settings, kind string, path func(string) string, client *http.Client) *kinds.Config {
	return &kinds.Config{
		Type: kind, Registry: s.Registry, Repo: s.Repo, Username: s.Username, OIDCToken: s.OIDCToken, HTTP: client,
		ECR: kinds.ECRConfig{Region: s.Region, Account: s.Account, FIPS: s.FIPS, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
			AssumeRole: s.AssumeRole, ExternalID: s.ExternalID, Endpoint: s.ECREndpoint, STSEndpoint: s.STSEndpoint, Registry: s.ECRRegistry,
			CreateRepository: s.CreateRepository, LifecyclePolicy: path(s.LifecyclePolicy), RepositoryPolicy: path(s.RepositoryPolicy)},
		Google: kinds.GoogleConfig{JSONKey: s.JSONKey, AccessToken: s.AccessToken, ProjectID: s.ProjectID, Location: s.Location,
			ProjectNumber: s.ProjectNumber, PoolID: s.PoolID, ProviderID: s.ProviderID, ServiceAccount: s.ServiceAccount,
			STSURL: s.GoogleSTSURL, IAMURL: s.GoogleIAMURL, Registry: s.GARRegistry},
		ACR: kinds.ACRConfig{TenantID: s.TenantID, ClientID: s.ClientID, ClientSecret: s.ClientSecret, ClientCertificate: s.ClientCert,
			AuthorityHost: s.AzureAuthority, Registry: s.ACRRegistry},
	}
}

// login obtains the credentials of every destination's registry before
// anything is pushed: a run whose credentials cannot all be obtained pushes
// nothing (unless PLUGIN_PARTIAL_LOGIN). The tokens obtained join the
// output mask. Pushing, each kind then readies its repositories (ECR makes
// sure they exist).
func (r *run) login(ctx context.Context, clouds []kinds.Keychain, pushing bool) error {
	seen := map[string]bool{}
	for _, d := range r.dests {
		reg := d.Context().Registry
		if seen[reg.RegistryStr()] {
			continue
		}
		seen[reg.RegistryStr()] = true
		a, err := authn.Resolve(ctx, r.kc, reg)
		if err == nil {
			_, err = a.Authorization()
		}
		if err != nil {
			err = fmt.Errorf("credentials for %s: %w", reg.RegistryStr(), err)
			if !r.s.PartialLogin {
				return err
			}
			// Asked to go on: the registry's destinations fail, the
			// others are pushed.
			if r.loginFailed == nil {
				r.loginFailed = map[string]error{}
			}
			r.loginFailed[reg.RegistryStr()] = err
			r.pr.Printf("%v; its destinations are skipped (PLUGIN_PARTIAL_LOGIN)", err)
		}
	}
	for _, kc := range clouds {
		for _, p := range kc.Secrets() {
			r.stdout.Add(p)
			r.stderr.Add(p)
		}
	}
	if !pushing {
		return nil
	}
	for _, kc := range clouds {
		var repos []string
		done := map[string]bool{}
		for _, d := range r.dests {
			repo := d.Context()
			if kc.Serves(repo.RegistryStr()) && !done[repo.RepositoryStr()] && r.loginFailed[repo.RegistryStr()] == nil {
				done[repo.RepositoryStr()] = true
				repos = append(repos, repo.RepositoryStr())
			}
		}
		if err := kc.Prepare(ctx, repos); err != nil {
			return err
		}
	}
	return nil
}
