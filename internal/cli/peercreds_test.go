package cli

import (
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// The credentials the peers' Google and Azure variants read under names
// without PLUGIN_: plugins/docker's ACCESS_TOKEN (docker login -u
// oauth2accesstoken; the token of drone-gar's workload identity) for a
// plain registry and for a GAR one, and drone-acr's
// SERVICE_PRINCIPAL_CLIENT_ID and _SECRET, which log in directly even
// with Azure AD settings beside them (here a wrong secret: Azure AD is not
// asked). Each push is read back; no token or secret is printed.
func TestPeerCredentialNames(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	g, reg := googleSetup(t) // its htpasswd takes oauth2accesstoken and g's token
	aad := harness.StartAzure(t)
	sp := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "11111111-2222-3333-4444-555555555555", Password: "sp-secret-" + t.Name()[4:10]})
	base := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout}
	for _, c := range []struct {
		name string
		reg  *harness.Registry
		ref  string
		env  map[string]string
	}{
		{"ACCESS_TOKEN, a Docker registry", reg, reg.Host + "/plain/app:token",
			map[string]string{"PLUGIN_REGISTRY": reg.Host, "PLUGIN_REPO": reg.Host + "/plain/app", "PLUGIN_TAGS": "token", "ACCESS_TOKEN": g.AccessToken}},
		{"ACCESS_TOKEN, GAR", reg, reg.Host + "/hoist-test/images/app:token",
			map[string]string{"PLUGIN_REGISTRY_TYPE": "gar", "PLUGIN_REGISTRY": reg.Host + "/hoist-test", "PLUGIN_REPO": "images/app", "PLUGIN_TAGS": "token", "ACCESS_TOKEN": g.AccessToken}},
		{"SERVICE_PRINCIPAL_CLIENT_ID and _SECRET", sp, sp.Host + "/team/app:sp",
			map[string]string{"PLUGIN_REGISTRY_TYPE": "acr", "PLUGIN_REPO": sp.Host + "/team/app", "PLUGIN_TAGS": "sp",
				"SERVICE_PRINCIPAL_CLIENT_ID": sp.User, "SERVICE_PRINCIPAL_CLIENT_SECRET": sp.Password,
				"TENANT_ID": aad.TenantID, "CLIENT_ID": aad.ClientID, "CLIENT_SECRET": "not-" + aad.Secret, "AZURE_AUTHORITY_HOST": aad.URL}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := mustPush(t, merged(base, c.env))
			assertPushed(t, r, c.reg, c.ref)
			assertNotContains(t, r, g.AccessToken, sp.Password, aad.Secret)
		})
	}
	if aad.Calls.Load() != 0 {
		t.Errorf("Azure AD was asked %d times", aad.Calls.Load())
	}
	// plugins/docker prefers the username and password to ACCESS_TOKEN:
	// a wrong password is not rescued by a right token.
	r := hoist(t, merged(base, map[string]string{"PLUGIN_REGISTRY": reg.Host, "PLUGIN_REPO": reg.Host + "/plain/app", "PLUGIN_TAGS": "both",
		"PLUGIN_USERNAME": "oauth2accesstoken", "PLUGIN_PASSWORD": "not-the-token", "ACCESS_TOKEN": g.AccessToken}))
	if r.code != ExitPush {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitPush, r)
	}
	assertContains(t, r, "registry "+reg.Host+" refused access (401 Unauthorized)")
	assertNotContains(t, r, "not-the-token", g.AccessToken)
}
