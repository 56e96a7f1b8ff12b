package cli

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// googleLogins are the logins a Docker registry connector to GAR sends
// (the document's "GAR Push Only" steps): user _json_key with the key's
// JSON (as a key file holds it, on several lines), _json_key_base64 with
// its base64, oauth2accesstoken with an access token.
func googleLogins(t *testing.T, g *harness.Google) map[string]string {
	t.Helper()
	b, err := os.ReadFile(g.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var key map[string]string
	json.Unmarshal(b, &key)
	pretty, _ := json.MarshalIndent(key, "", "  ")
	return map[string]string{"_json_key": string(pretty), "_json_key_base64": b64(string(b)), "oauth2accesstoken": g.AccessToken}
}

// A Google registry (PLUGIN_REGISTRY_TYPE gar, or its host) given one of
// those logins: the key is exchanged for an access token, as kaniko-gar
// and docker-credential-gcr do, and the registry (whose htpasswd takes
// only oauth2accesstoken and that token) is pushed to and read back.
// A key Google refuses, a malformed base64 and a user name Google takes
// not fail before any push, clearly, the password never printed.
func TestGoogleRegistryLoginForms(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	g, reg := googleSetup(t)
	base := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REGISTRY_TYPE": "gar",
		"PLUGIN_REGISTRY": reg.Host + "/hoist-test", "PLUGIN_REPO": "images/app"}
	for user, password := range googleLogins(t, g) {
		t.Run(user, func(t *testing.T) {
			r := mustPush(t, merged(base, map[string]string{"PLUGIN_TAGS": user[1:], "PLUGIN_USERNAME": user, "PLUGIN_PASSWORD": password}))
			assertPushed(t, r, reg, reg.Host+"/hoist-test/images/app:"+user[1:])
			assertNotContains(t, r, g.AccessToken, "PRIVATE KEY", password)
		})
	}
	if g.CallCount("token") != 2 {
		t.Errorf("google calls %v, want the two keys exchanged", g.Calls)
	}

	other := harness.StartGoogle(t) // a key Google does not know, at g's endpoint
	var k map[string]string
	b, _ := os.ReadFile(other.KeyFile)
	json.Unmarshal(b, &k)
	k["token_uri"] = g.URL + "/token"
	forged, _ := json.Marshal(k)
	dest := harness.StartRegistry(t, harness.RegistryOptions{})
	for _, c := range []struct {
		name, user, password string
		code                 int
		want                 []string
	}{
		{"a key Google refuses", "_json_key", string(forged), ExitPush,
			[]string{"credentials for " + reg.Host, "Google access token from the service-account key of " + other.ClientEmail, "invalid_grant"}},
		{"base64 that is not", "_json_key_base64", "not base64 at all!", ExitSettings,
			[]string{"PLUGIN_PASSWORD of user _json_key_base64 is not base64"}},
		{"a user Google takes not", "admin", "s3cret-admin-password", ExitSettings,
			[]string{`PLUGIN_USERNAME "admin" is no login Google's registries take: use _json_key`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := hoist(t, merged(base, map[string]string{"PLUGIN_TAGS": "bad", "PLUGIN_USERNAME": c.user, "PLUGIN_PASSWORD": c.password,
				"PLUGIN_DESTINATIONS": dest.Host + "/not-pushed/app:1"}))
			if r.code != c.code {
				t.Errorf("exit %d, want %d:\n%s", r.code, c.code, r)
			}
			assertContains(t, r, c.want...)
			assertNotContains(t, r, c.password, "PRIVATE KEY")
			if tags := tagsOf(t, dest, "not-pushed/app"); len(tags) != 0 {
				t.Errorf("pushed: %v", tags)
			}
		})
	}
}

// The same logins to a registry hoist takes as a plain Docker registry
// (its host names no cloud) are sent as they are: GAR's token endpoint
// (a stand-in that takes what GAR's takes) exchanges them itself. A key it
// refuses fails naming the registry, never the password.
func TestGARLoginFormsAsADockerRegistry(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	g := harness.StartGoogle(t)
	reg, ts := harness.StartTokenRegistry(t)
	ts.Accept = g.GARLogin
	base := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REGISTRY": reg.Host,
		"PLUGIN_REPO": reg.Host + "/hoist-test/app"}
	for user, password := range googleLogins(t, g) {
		t.Run(user, func(t *testing.T) {
			issued := ts.Issued.Load()
			r := mustPush(t, merged(base, map[string]string{"PLUGIN_TAGS": user[1:], "PLUGIN_USERNAME": user, "PLUGIN_PASSWORD": password}))
			assertPushed(t, r, reg, reg.Host+"/hoist-test/app:"+user[1:])
			assertNotContains(t, r, "PRIVATE KEY", password)
			if ts.Issued.Load() == issued {
				t.Error("no token was issued for the login")
			}
		})
	}
	if g.CallCount("token") != 0 {
		t.Errorf("hoist exchanged a key itself for a Docker registry: %v", g.Calls)
	}
	otherKey, _ := os.ReadFile(harness.StartGoogle(t).KeyFile)
	r := hoist(t, merged(base, map[string]string{"PLUGIN_TAGS": "bad", "PLUGIN_USERNAME": "_json_key", "PLUGIN_PASSWORD": string(otherKey)}))
	if r.code != ExitPush {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitPush, r)
	}
	assertContains(t, r, reg.Host)
	assertNotContains(t, r, "PRIVATE KEY", string(otherKey))
}

// The document's "GAR Push Only" step as a runner sends it: a
// BuildAndPushDockerRegistry step whose Docker connector points at
// https://us-docker.pkg.dev with user _json_key and the key as password,
// no registry type. The host names GAR, so the key is exchanged for an
// access token (at the Google stand-in) and the push goes, over HTTPS
// with the host's certificate checked, to a registry standing in for
// us-docker.pkg.dev (PLUGIN_REGISTRY_ROUTES) that takes only that token.
func TestGARPushOnlyAsARunnerSendsIt(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	g := harness.StartGoogle(t)
	const garHost = "us-docker.pkg.dev"
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "oauth2accesstoken", Password: g.AccessToken, TLS: true, Names: []string{garHost}})
	key, _ := os.ReadFile(g.KeyFile)
	r := mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
		"PLUGIN_REGISTRY": "https://" + garHost, "PLUGIN_REPO": garHost + "/hoist-test/images/app", "PLUGIN_TAGS": "7-buildx",
		"PLUGIN_USERNAME": "_json_key", "PLUGIN_PASSWORD": string(key),
		"PLUGIN_REGISTRY_ROUTES": garHost + "=https://" + reg.Host, "PLUGIN_REGISTRY_CERTIFICATE": reg.CAFile})
	got := reg.Digest(t, reg.Host+"/hoist-test/images/app:7-buildx")
	assertSummary(t, r, garHost+"/hoist-test/images/app:7-buildx", got)
	assertContains(t, r, "registry kind: gar (PLUGIN_REGISTRY names "+garHost+")")
	assertNotContains(t, r, g.AccessToken, "PRIVATE KEY", string(key))
	if g.CallCount("token") != 1 {
		t.Errorf("google calls %v", g.Calls)
	}
}
