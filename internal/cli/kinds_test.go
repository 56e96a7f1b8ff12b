package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// ecrSetup is an ECR stand-in and a real registry whose htpasswd accepts
// exactly user AWS and the password inside the token the ECR API returns.
func ecrSetup(t *testing.T) (*harness.AWS, *harness.Registry) {
	t.Helper()
	aws := harness.StartAWS(t, "eu-west-3")
	aws.Password = "ecr-token-" + strings.Repeat("x", 8) + t.Name()[len(t.Name())-4:]
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "AWS", Password: aws.Password})
	aws.Registry = reg.Host
	return aws, reg
}

func ecrEnv(aws *harness.AWS, reg *harness.Registry, kv ...string) map[string]string {
	env := map[string]string{
		"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REGISTRY_TYPE": "ecr", "PLUGIN_REGISTRY": reg.Host, "PLUGIN_REGION": aws.Region,
		"PLUGIN_ECR_ENDPOINT": aws.URL, "PLUGIN_STS_ENDPOINT": aws.URL,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

// ECR with static keys: the token from GetAuthorizationToken (a signed
// request, checked) logs in as AWS; the repository is created with its
// lifecycle policy; the artifact file says ECR.
func TestECRStaticKeys(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	aws, reg := ecrSetup(t)
	dir := t.TempDir()
	policy := filepath.Join(dir, "lifecycle.json")
	os.WriteFile(policy, []byte(`{"rules":[]}`), 0o644)
	r := mustPush(t, ecrEnv(aws, reg, "PLUGIN_SOURCE_TAR_PATH", f.SkopeoLayout, "PLUGIN_REPO", "team/app", "PLUGIN_TAGS", "1.0",
		"PLUGIN_ACCESS_KEY", aws.AccessKey, "PLUGIN_SECRET_KEY", aws.SecretKey,
		"PLUGIN_CREATE_REPOSITORY", "true", "PLUGIN_LIFECYCLE_POLICY", policy,
		"PLUGIN_ARTIFACT_FILE", filepath.Join(dir, "artifact.json"), "PLUGIN_DEBUG", "true"))
	assertPushed(t, r, reg, reg.Host+"/team/app:1.0")
	assertContains(t, r, "debug: PUT "+reg.Host+"/v2/team/app/manifests/1.0") // debug wrote
	assertNotContains(t, r, aws.SecretKey, aws.Password)
	if !aws.HasRepository("team/app") || aws.Policy("PutLifecyclePolicy team/app") != `{"rules":[]}` {
		t.Errorf("repository or policy missing: %v", aws.Policies)
	}
	var art struct{ Data struct{ RegistryType string } }
	b, _ := os.ReadFile(filepath.Join(dir, "artifact.json"))
	if json.Unmarshal(b, &art); art.Data.RegistryType != "ECR" {
		t.Errorf("artifact: %s", b)
	}
	if aws.CallCount("GetAuthorizationToken") != 1 {
		t.Errorf("%d token calls, want one per run", aws.CallCount("GetAuthorizationToken"))
	}
	// The repository exists now; its policies are applied anyway, as the
	// peers apply them whenever they are set.
	repoPolicy := filepath.Join(dir, "repository.json")
	os.WriteFile(repoPolicy, []byte(`{"Statement":[]}`), 0o644)
	mustPush(t, ecrEnv(aws, reg, "PLUGIN_SOURCE_TAR_PATH", f.SkopeoLayout, "PLUGIN_REPO", "team/app", "PLUGIN_TAGS", "1.1",
		"PLUGIN_ACCESS_KEY", aws.AccessKey, "PLUGIN_SECRET_KEY", aws.SecretKey, "PLUGIN_REPOSITORY_POLICY", repoPolicy))
	if aws.CallCount("CreateRepository") != 1 || aws.Policy("SetRepositoryPolicy team/app") != `{"Statement":[]}` {
		t.Errorf("calls %v, policies %v", aws.Calls, aws.Policies)
	}
}

// An assumed role (with external id) and a web identity (OIDC) token:
// STS gives temporary credentials, which sign the ECR call.
func TestECRAssumedRoles(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	aws, reg := ecrSetup(t)
	aws.AddRepository("app")
	mustPush(t, ecrEnv(aws, reg, "PLUGIN_SOURCE_TAR_PATH", f.SkopeoLayout, "PLUGIN_REPO", "app", "PLUGIN_TAGS", "role",
		"PLUGIN_ACCESS_KEY", aws.AccessKey, "PLUGIN_SECRET_KEY", aws.SecretKey,
		"PLUGIN_ASSUME_ROLE", aws.Role, "PLUGIN_EXTERNAL_ID", aws.ExternalID))
	mustPush(t, ecrEnv(aws, reg, "PLUGIN_SOURCE_TAR_PATH", f.SkopeoLayout, "PLUGIN_REPO", "app", "PLUGIN_TAGS", "oidc",
		"PLUGIN_ASSUME_ROLE", aws.Role, "PLUGIN_OIDC_TOKEN_ID", aws.WebIdentityToken))
	if aws.CallCount("AssumeRole") != 1 || aws.CallCount("AssumeRoleWithWebIdentity") != 1 {
		t.Errorf("STS calls: %v", aws.Calls)
	}
	if tags := tagsOf(t, reg, "app"); len(tags) != 2 {
		t.Errorf("tags %v", tags)
	}
}

// Bad ECR settings and refused credentials fail before anything is pushed
// to any destination, and name the endpoint and the credential kind, never
// the secret.
func TestECRBadInputs(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	aws, reg := ecrSetup(t)
	aws.AddRepository("app")
	other := harness.StartRegistry(t, harness.RegistryOptions{})
	keys := []string{"PLUGIN_ACCESS_KEY", aws.AccessKey, "PLUGIN_SECRET_KEY", aws.SecretKey}
	cases := []struct {
		name string
		env  []string
		code int
		want []string
		bad  string
	}{
		{"wrong secret key", []string{"PLUGIN_ACCESS_KEY", aws.AccessKey, "PLUGIN_SECRET_KEY", "not-the-secret"}, ExitPush,
			[]string{"ECR GetAuthorizationToken at " + aws.URL + " with access key", "signature we calculated does not match"}, "not-the-secret"},
		{"wrong region", append([]string{"PLUGIN_REGION", "us-west-2"}, keys...), ExitPush,
			[]string{"Credential should be scoped to a valid region"}, ""},
		{"role it may not assume", []string{"PLUGIN_ASSUME_ROLE", aws.Role, "PLUGIN_OIDC_TOKEN_ID", "forged-token"}, ExitPush,
			[]string{"web identity (OIDC) token for role " + aws.Role, "InvalidIdentityToken"}, "forged-token"},
		{"repository missing, creation off", append([]string{"PLUGIN_REPO", "missing/app"}, keys...), ExitSettings,
			[]string{"ECR repository missing/app does not exist", "PLUGIN_CREATE_REPOSITORY=true"}, ""},
		{"no registry", append([]string{"PLUGIN_REGISTRY", ""}, keys...), ExitSettings,
			[]string{"ECR needs its registry: PLUGIN_REGISTRY"}, ""},
		{"unknown kind", []string{"PLUGIN_REGISTRY_TYPE", "quay"}, ExitSettings, []string{`PLUGIN_REGISTRY_TYPE="quay": want docker, ecr, gar, gcr or acr`}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := ecrEnv(aws, reg, append([]string{"PLUGIN_SOURCE_TAR_PATH", f.SkopeoLayout, "PLUGIN_REPO", "app",
				"PLUGIN_DESTINATIONS", other.Host + "/not-pushed/app:1"}, c.env...)...)
			r := hoist(t, env)
			if r.code != c.code {
				t.Errorf("exit %d, want %d:\n%s", r.code, c.code, r)
			}
			assertContains(t, r, c.want...)
			if c.bad != "" {
				assertNotContains(t, r, c.bad)
			}
			if tags := tagsOf(t, other, "not-pushed/app"); len(tags) != 0 {
				t.Errorf("the other destination was pushed: %v", tags)
			}
		})
	}
}

// googleSetup is the Google stand-in and a real registry whose htpasswd
// accepts exactly oauth2accesstoken and the access token the flows yield.
func googleSetup(t *testing.T) (*harness.Google, *harness.Registry) {
	t.Helper()
	g := harness.StartGoogle(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "oauth2accesstoken", Password: g.AccessToken})
	return g, reg
}

// GAR and GCR: a service-account key (a file, and base64 as Harness passes
// it), a ready access token, and workload identity federation from an OIDC
// token; references are HOST/PROJECT/REPO.
func TestGoogleRegistries(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	g, reg := googleSetup(t)
	keyJSON, _ := os.ReadFile(g.KeyFile)
	base := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REGISTRY": reg.Host + "/hoist-test/"}
	for _, c := range []struct {
		name string
		env  map[string]string
	}{
		{"GAR, key file", map[string]string{"PLUGIN_REGISTRY_TYPE": "gar", "PLUGIN_REPO": "images/app", "PLUGIN_TAGS": "key", "PLUGIN_JSON_KEY": g.KeyFile}},
		{"GCR, base64 key", map[string]string{"PLUGIN_REGISTRY_TYPE": "gcr", "PLUGIN_REPO": "images/app", "PLUGIN_TAGS": "b64", "PLUGIN_JSON_KEY": b64(string(keyJSON))}},
		{"GAR, access token", map[string]string{"PLUGIN_REGISTRY_TYPE": "gar", "PLUGIN_REPO": "images/app", "PLUGIN_TAGS": "token", "PLUGIN_ACCESS_TOKEN": g.AccessToken}},
		{"GAR, workload identity", map[string]string{"PLUGIN_REGISTRY_TYPE": "gar", "PLUGIN_REPO": "images/app", "PLUGIN_TAGS": "oidc",
			"PLUGIN_OIDC_TOKEN_ID": g.OIDCToken, "PLUGIN_PROJECT_NUMBER": g.ProjectNumber, "PLUGIN_POOL_ID": g.PoolID, "PLUGIN_PROVIDER_ID": g.ProviderID,
			"PLUGIN_SERVICE_ACCOUNT_EMAIL": g.ServiceAccount, "PLUGIN_GOOGLE_STS_ENDPOINT": g.URL, "PLUGIN_GOOGLE_IAM_ENDPOINT": g.URL}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := mustPush(t, merged(base, c.env))
			assertPushed(t, r, reg, reg.Host+"/hoist-test/images/app:"+c.env["PLUGIN_TAGS"])
			assertNotContains(t, r, g.AccessToken, g.OIDCToken)
		})
	}
	if g.CallCount("token") != 2 || g.CallCount("sts") != 1 || g.CallCount("iam") != 1 {
		t.Errorf("calls %v", g.Calls)
	}
}

// A malformed key and a key the token endpoint rejects fail before any
// push, naming the credential and the endpoint, never a secret.
func TestGoogleBadInputs(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	g, reg := googleSetup(t)
	other := harness.StartGoogle(t) // a key Google does not know
	otherKey, _ := os.ReadFile(other.KeyFile)
	var k map[string]string
	json.Unmarshal(otherKey, &k)
	k["token_uri"] = g.URL + "/token"
	forged, _ := json.Marshal(k)
	dest := harness.StartRegistry(t, harness.RegistryOptions{})
	for _, c := range []struct {
		name, key string
		code      int
		want      []string
	}{
		{"not a key", `{"type": "authorized_user"}`, ExitSettings, []string{"PLUGIN_JSON_KEY is not a Google service-account JSON key"}},
		{"not JSON at all", "no-such-file-and-not-json", ExitSettings, []string{"PLUGIN_JSON_KEY is neither JSON"}},
		{"a key the endpoint rejects", string(forged), ExitPush, []string{"Google access token from the service-account key of " + g.ClientEmail + " at " + g.URL + "/token", "invalid_grant"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REGISTRY_TYPE": "gar",
				"PLUGIN_REGISTRY": reg.Host + "/p", "PLUGIN_REPO": "app", "PLUGIN_JSON_KEY": c.key, "PLUGIN_DESTINATIONS": dest.Host + "/not-pushed/app:1"})
			if r.code != c.code {
				t.Errorf("exit %d, want %d:\n%s", r.code, c.code, r)
			}
			assertContains(t, r, c.want...)
			assertNotContains(t, r, "PRIVATE KEY")
			if tags := tagsOf(t, dest, "not-pushed/app"); len(tags) != 0 {
				t.Errorf("pushed: %v", tags)
			}
		})
	}
	r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REGISTRY_TYPE": "gar", "PLUGIN_REPO": "app"})
	if r.code != ExitSettings {
		t.Errorf("no registry: exit %d", r.code)
	}
	assertContains(t, r, "GAR needs PLUGIN_REGISTRY (HOST/PROJECT) or PLUGIN_PROJECT_ID")
}

// ACR: an Azure AD token (client secret, federated OIDC token, certificate)
// exchanged at the registry for the refresh token its htpasswd accepts.
func TestACR(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	aad := harness.StartAzure(t)
	reg, refresh := harness.StartACR(t, aad)
	base := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REGISTRY_TYPE": "acr",
		"PLUGIN_REPO": reg.Host + "/team/app", "AZURE_AUTHORITY_HOST": aad.URL, "PLUGIN_REGISTRY_CERTIFICATE": aad.CAFile}
	for _, c := range []struct {
		name string
		env  map[string]string
	}{
		{"client secret", map[string]string{"PLUGIN_TAGS": "secret", "TENANT_ID": aad.TenantID, "CLIENT_ID": aad.ClientID, "CLIENT_SECRET": aad.Secret}},
		{"OIDC", map[string]string{"PLUGIN_TAGS": "oidc", "AZURE_TENANT_ID": aad.TenantID, "AZURE_CLIENT_ID": aad.ClientID, "PLUGIN_OIDC_TOKEN_ID": aad.OIDCToken}},
		{"certificate", map[string]string{"PLUGIN_TAGS": "cert", "TENANT_ID": aad.TenantID, "CLIENT_ID": aad.ClientID, "CLIENT_CERTIFICATE": b64(aad.CertPEM)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := mustPush(t, merged(base, c.env))
			assertPushed(t, r, reg, reg.Host+"/team/app:"+c.env["PLUGIN_TAGS"])
			assertNotContains(t, r, refresh, aad.Secret, aad.OIDCToken)
		})
	}
	// The admin user: plain username and password, no Azure AD.
	r := mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REGISTRY_TYPE": "acr",
		"PLUGIN_REPO": reg.Host + "/team/app", "PLUGIN_TAGS": "admin", "PLUGIN_USERNAME": reg.User, "PLUGIN_PASSWORD": reg.Password})
	assertPushed(t, r, reg, reg.Host+"/team/app:admin")
	for _, c := range []struct {
		name string
		env  map[string]string
		code int
		want []string
	}{
		{"wrong secret", map[string]string{"TENANT_ID": aad.TenantID, "CLIENT_ID": aad.ClientID, "CLIENT_SECRET": "not-" + aad.Secret}, ExitPush,
			[]string{"Azure AD token at " + aad.URL + " with the client secret of service principal " + aad.ClientID, "AADSTS7000215"}},
		{"OIDC without tenant", map[string]string{"AZURE_CLIENT_ID": aad.ClientID, "PLUGIN_OIDC_TOKEN_ID": aad.OIDCToken}, ExitSettings,
			[]string{"tenantId and clientId must be provided for OIDC authentication"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := hoist(t, merged(base, map[string]string{"PLUGIN_TAGS": "bad"}, c.env))
			if r.code != c.code {
				t.Errorf("exit %d, want %d:\n%s", r.code, c.code, r)
			}
			assertContains(t, r, c.want...)
			assertNotContains(t, r, "not-"+aad.Secret, aad.OIDCToken)
		})
	}
}

// One tarball, four kinds of registry at once, each with its own
// credentials and login flow, and one summary.
func TestMixedKindsInOneRun(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	docker := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	aws, ecrReg := ecrSetup(t)
	aws.AddRepository("mixed/app")
	g, garReg := googleSetup(t)
	aad := harness.StartAzure(t)
	acrReg, _ := harness.StartACR(t, aad)
	r := mustPush(t, map[string]string{
		"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
		"PLUGIN_REPO": docker.Host + "/mixed/app", "PLUGIN_TAGS": "1",
		"PLUGIN_REGISTRY": docker.Host, "PLUGIN_USERNAME": docker.User, "PLUGIN_PASSWORD": docker.Password,
		"PLUGIN_DESTINATIONS": ecrReg.Host + "/mixed/app:1," + garReg.Host + "/proj/mixed/app:1," + acrReg.Host + "/mixed/app:1",
		"PLUGIN_ECR_REGISTRY": ecrReg.Host, "PLUGIN_ACCESS_KEY": aws.AccessKey, "PLUGIN_SECRET_KEY": aws.SecretKey,
		"PLUGIN_REGION": aws.Region, "PLUGIN_ECR_ENDPOINT": aws.URL,
		"PLUGIN_GAR_REGISTRY": garReg.Host, "PLUGIN_JSON_KEY": g.KeyFile,
		"PLUGIN_ACR_REGISTRY": acrReg.Host, "TENANT_ID": aad.TenantID, "CLIENT_ID": aad.ClientID, "CLIENT_SECRET": aad.Secret,
		"AZURE_AUTHORITY_HOST": aad.URL, "PLUGIN_REGISTRY_CERTIFICATE": aad.CAFile,
	})
	for _, d := range []struct {
		reg *harness.Registry
		ref string
	}{{docker, docker.Host + "/mixed/app:1"}, {ecrReg, ecrReg.Host + "/mixed/app:1"}, {garReg, garReg.Host + "/proj/mixed/app:1"}, {acrReg, acrReg.Host + "/mixed/app:1"}} {
		assertPushed(t, r, d.reg, d.ref)
	}
}

// With PLUGIN_PARTIAL_LOGIN the destinations whose credentials could be had
// are pushed, the others fail in the summary, and the run fails.
func TestPartialLogin(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	aws, ecrReg := ecrSetup(t)
	ok := harness.StartRegistry(t, harness.RegistryOptions{})
	r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout,
		"PLUGIN_DESTINATIONS": ok.Host + "/partial/app:1," + ecrReg.Host + "/partial/app:1", "PLUGIN_ECR_REGISTRY": ecrReg.Host,
		"PLUGIN_ACCESS_KEY": aws.AccessKey, "PLUGIN_SECRET_KEY": "wrong", "PLUGIN_REGION": aws.Region, "PLUGIN_ECR_ENDPOINT": aws.URL,
		"PLUGIN_PARTIAL_LOGIN": "true"})
	if r.code != ExitPush {
		t.Errorf("exit %d:\n%s", r.code, r)
	}
	assertContains(t, r, "its destinations are skipped (PLUGIN_PARTIAL_LOGIN)", "1 of 2 destination(s) failed")
	if tags := tagsOf(t, ok, "partial/app"); len(tags) != 1 {
		t.Errorf("the reachable destination was not pushed: %v", tags)
	}
}
