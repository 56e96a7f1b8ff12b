package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/settings"
)

// kindName is the settings' registry kind, lower case, checked.
func kindName(s *settings.Settings) (string, error) {
	k := strings.ToLower(strings.TrimSpace(s.RegistryType))
	switch k {
	case "", "docker":
		return "docker", nil
	case "ecr", "gar", "gcr", "acr":
		return k, nil
	}
	return "", fmt.Errorf("%w: %s=%q: want docker, ecr, gar, gcr or acr", settings.ErrInvalid, s.Origin("registry-type"), s.RegistryType)
}

// artifactType is the kind as the artifact file names it.
func artifactType(kind string) string {
	if kind == "docker" {
		return "Docker"
	}
	return strings.ToUpper(kind)
}

// kindRepo is the full repository the kind's settings name: ECR's registry
// (PLUGIN_REGISTRY, or the account's in PLUGIN_REGION) before PLUGIN_REPO.
func kindRepo(s *settings.Settings, kind string) (string, error) {
	if s.Repo == "" {
		return s.Repo, nil
	}
	var prefix string
	var err error
	switch kind {
	case "ecr":
		prefix, err = ecrRegistry(s)
	case "gar", "gcr":
		prefix, err = googleRegistry(s, kind)
	case "acr":
		// Harness passes the full repository (REGISTRY/TEAM/APP).
		if first, _, ok := strings.Cut(s.Repo, "/"); ok && strings.ContainsAny(first, ".:") {
			return s.Repo, nil
		}
		if s.Registry == "" {
			return "", fmt.Errorf("%w: ACR needs PLUGIN_REPO as REGISTRY.azurecr.io/REPOSITORY, or PLUGIN_REGISTRY", kinds.ErrConfig)
		}
		prefix, err = registry.NormalizeHost(s.Registry)
	default:
		return s.Repo, nil
	}
	if err != nil {
		return "", err
	}
	host, _, _ := strings.Cut(prefix, "/")
	if strings.HasPrefix(s.Repo, host+"/") {
		return s.Repo, nil
	}
	return prefix + "/" + strings.Trim(s.Repo, "/"), nil
}

// googleRegistry is HOST/PROJECT: PLUGIN_REGISTRY as Harness passes it, or
// built from the location (GAR) and project.
func googleRegistry(s *settings.Settings, kind string) (string, error) {
	reg := strings.Trim(s.Registry, "/")
	if i := strings.Index(reg, "://"); i >= 0 {
		reg = reg[i+3:]
	}
	if reg != "" {
		if !strings.Contains(reg, "/") && s.ProjectID != "" {
			reg += "/" + s.ProjectID
		}
		return reg, nil
	}
	switch {
	case s.ProjectID == "":
		return "", fmt.Errorf("%w: %s needs PLUGIN_REGISTRY (HOST/PROJECT) or PLUGIN_PROJECT_ID", kinds.ErrConfig, strings.ToUpper(kind))
	case kind == "gcr":
		return "gcr.io/" + s.ProjectID, nil
	case s.Location == "":
		return "", fmt.Errorf("%w: GAR needs PLUGIN_REGISTRY (LOCATION-docker.pkg.dev/PROJECT) or PLUGIN_LOCATION with PLUGIN_PROJECT_ID", kinds.ErrConfig)
	}
	return s.Location + "-docker.pkg.dev/" + s.ProjectID, nil
}

func ecrRegistry(s *settings.Settings) (string, error) {
	if s.Registry != "" {
		return registry.NormalizeHost(s.Registry)
	}
	if s.Account != "" {
		return kinds.ECRHost(s.Account, s.Region, s.FIPS), nil
	}
	return "", fmt.Errorf("%w: ECR needs its registry: PLUGIN_REGISTRY (ACCOUNT.dkr.ecr.REGION.amazonaws.com) or PLUGIN_ACCOUNT with PLUGIN_REGION", kinds.ErrConfig)
}

// cloudKeychains returns the cloud logins this run needs, ahead of the
// static and docker-config ones: a kind's keychain answers only for its
// own registries.
func (r *run) cloudKeychains(kind string) ([]authn.Keychain, *kinds.ECR, error) {
	s := r.s
	client := &http.Client{Transport: r.tr}
	var out []authn.Keychain
	var ecrKC *kinds.ECR
	ecrUsed := kind == "ecr" || s.ECRRegistry != ""
	for _, d := range r.dests {
		if kinds.IsECRHost(d.RegistryStr()) {
			ecrUsed = true
		}
	}
	if ecrUsed {
		ecrKC = &kinds.ECR{Region: s.Region, AccessKey: s.AccessKey, SecretKey: s.SecretKey, AssumeRole: s.AssumeRole,
			ExternalID: s.ExternalID, OIDCToken: s.OIDCToken, Endpoint: s.ECREndpoint, STSEndpoint: s.STSEndpoint, HTTP: client}
		if kind == "ecr" {
			host, err := ecrRegistry(s)
			if err != nil {
				return nil, nil, err
			}
			ecrKC.Hosts = append(ecrKC.Hosts, host)
		}
		if s.ECRRegistry != "" {
			h, err := registry.NormalizeHost(s.ECRRegistry)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: PLUGIN_ECR_REGISTRY: %w", kinds.ErrConfig, err)
			}
			ecrKC.Hosts = append(ecrKC.Hosts, h)
		}
		out = append(out, ecrKC)
	}
	googleUsed := kind == "gar" || kind == "gcr" || s.GARRegistry != ""
	for _, d := range r.dests {
		if kinds.IsGoogleHost(d.RegistryStr()) {
			googleUsed = true
		}
	}
	if googleUsed {
		g := &kinds.Google{JSONKey: s.JSONKey, AccessToken: s.AccessToken, OIDCToken: s.OIDCToken, ProjectNumber: s.ProjectNumber,
			PoolID: s.PoolID, ProviderID: s.ProviderID, ServiceAccount: s.ServiceAccount, STSURL: s.GoogleSTSURL, IAMURL: s.GoogleIAMURL, HTTP: client}
		if kind == "gar" || kind == "gcr" {
			reg, err := googleRegistry(s, kind)
			if err != nil {
				return nil, nil, err
			}
			host, _, _ := strings.Cut(reg, "/")
			g.Hosts = append(g.Hosts, host)
		}
		if s.GARRegistry != "" {
			h, err := registry.NormalizeHost(s.GARRegistry)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: PLUGIN_GAR_REGISTRY: %w", kinds.ErrConfig, err)
			}
			g.Hosts = append(g.Hosts, h)
		}
		out = append(out, g)
		r.secretSources = append(r.secretSources, func() []string { return []string{g.Secret()} })
	}
	acrUsed := kind == "acr" || s.ACRRegistry != ""
	for _, d := range r.dests {
		if kinds.IsACRHost(d.RegistryStr()) {
			acrUsed = true
		}
	}
	// ACR's admin user logs in with PLUGIN_USERNAME/PLUGIN_PASSWORD, as any
	// Docker registry does.
	if s.Username != "" && s.ClientID == "" && s.ClientSecret == "" && s.ClientCert == "" && s.OIDCToken == "" {
		acrUsed = false
	}
	if acrUsed {
		a := &kinds.ACR{TenantID: s.TenantID, ClientID: s.ClientID, ClientSecret: s.ClientSecret, ClientCertificate: s.ClientCert,
			OIDCToken: s.OIDCToken, AuthorityHost: s.AzureAuthority, HTTP: client}
		if s.ACRRegistry != "" {
			h, err := registry.NormalizeHost(s.ACRRegistry)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: PLUGIN_ACR_REGISTRY: %w", kinds.ErrConfig, err)
			}
			a.Hosts = append(a.Hosts, h)
		}
		if kind == "acr" && r.acrRepo != "" {
			host, _, _ := strings.Cut(r.acrRepo, "/")
			a.Hosts = append(a.Hosts, host)
		}
		out = append(out, a)
		r.secretSources = append(r.secretSources, a.Secrets)
	}
	return out, ecrKC, nil
}

// login obtains the credentials of every destination's registry before
// anything is pushed: a run whose credentials cannot all be obtained pushes
// nothing. It also makes sure ECR repositories exist (or creates them).
func (r *run) login(ctx context.Context, ecrKC *kinds.ECR, pushing bool) error {
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
	if ecrKC != nil {
		r.secretSources = append(r.secretSources, func() []string { return []string{ecrKC.Secret()} })
	}
	for _, source := range r.secretSources {
		for _, p := range source() {
			if p != "" {
				r.stdout.Add(p)
				r.stderr.Add(p)
			}
		}
	}
	if !pushing || ecrKC == nil {
		return nil
	}
	done := map[string]bool{}
	for _, d := range r.dests {
		repo := d.Context()
		if !ecrKC.Serves(repo.RegistryStr()) || done[repo.RepositoryStr()] || r.loginFailed[repo.RegistryStr()] != nil {
			continue
		}
		done[repo.RepositoryStr()] = true
		if err := ecrKC.EnsureRepository(ctx, repo.RepositoryStr(), r.s.CreateRepository, r.path(r.s.LifecyclePolicy), r.path(r.s.RepositoryPolicy)); err != nil {
			return err
		}
	}
	return nil
}
