package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// echoingRegistry is a real registry behind a proxy that answers every
// manifest PUT with an error quoting the request's Authorization header,
// then also: a registry error body that echoes credentials.
func echoingRegistry(t *testing.T, reg *harness.Registry, also string) string {
	t.Helper()
	target, _ := url.Parse(reg.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/") {
			io.Copy(io.Discard, req.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"errors":[{"code":"MANIFEST_INVALID","message":"denied for %s%s"}]}`, req.Header.Get("Authorization"), also)
			return
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(echo.Close)
	return strings.TrimPrefix(echo.URL, "http://")
}

// secretPassword is a distinct password whose URL-encoded form differs
// from its raw form.
func secretPassword() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "s3cr&t/" + hex.EncodeToString(b) + "+="
}

// Every byte hoist writes under failing paths — stdout, stderr (plain,
// TTY progress, debug lines), DRONE_OUTPUT, the digest and artifact files
// — is searched for every form of the secret each case plants (raw,
// base64 of user:password, URL-encoded), after proving that the output
// holds the place where it would have appeared. A second destination,
// on a registry of its own, succeeds, so that the output files are
// written: they must exist, and name it, before they are searched; a
// step refused before anything runs writes none. The credential
// helper's and the cloud logins' cases are in their own tests
// (TestDockerConfigCredentialHelper, TestCloudLoginTokensMasked).
func TestNoSecretInAnyByteWritten(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	type plant struct {
		env   func(host, user, pass string, dir string) map[string]string
		code  int
		proof string // what shows the failure reached where the secret would be
	}
	config := func(host, user, pass string) string {
		return `{"auths":{"` + host + `":{"auth":"` + b64(user+":"+pass) + `"}}}`
	}
	for name, c := range map[string]plant{
		"password, echoing registry": {func(host, user, pass, _ string) map[string]string {
			return map[string]string{"PLUGIN_REGISTRY": host, "PLUGIN_USERNAME": user, "PLUGIN_PASSWORD": pass}
		}, ExitPush, "denied for Basic ****"},
		"password, TTY progress": {func(host, user, pass, _ string) map[string]string {
			return map[string]string{"PLUGIN_REGISTRY": host, "PLUGIN_USERNAME": user, "PLUGIN_PASSWORD": pass, "PLUGIN_PROGRESS": "tty"}
		}, ExitPush, "denied for Basic ****"},
		"wrong password": {func(host, user, pass, _ string) map[string]string {
			return map[string]string{"PLUGIN_REGISTRY": host, "PLUGIN_USERNAME": user, "PLUGIN_PASSWORD": "wrong-" + pass}
		}, ExitPush, "refused access (401 Unauthorized)"},
		"PLUGIN_CONFIG JSON": {func(host, user, pass, _ string) map[string]string {
			return map[string]string{"PLUGIN_CONFIG": config(host, user, pass)}
		}, ExitPush, "denied for Basic ****"},
		"PLUGIN_CONFIG base64": {func(host, user, pass, _ string) map[string]string {
			return map[string]string{"PLUGIN_CONFIG": b64(config(host, user, pass))}
		}, ExitPush, "denied for Basic ****"},
		"PLUGIN_CONFIG file": {func(host, user, pass, dir string) map[string]string {
			p := filepath.Join(dir, "config.json")
			os.WriteFile(p, []byte(config(host, user, pass)), 0o600)
			return map[string]string{"PLUGIN_CONFIG": p}
		}, ExitPush, "denied for Basic ****"},
		"PLUGIN_CONFIG with text around it": {func(host, user, pass, _ string) map[string]string {
			return map[string]string{"PLUGIN_CONFIG": "config: " + config(host, user, pass) + " " + pass}
		}, ExitSettings, "not shown"},
		"PLUGIN_CONFIG with a syntax error": {func(host, user, pass, _ string) map[string]string {
			return map[string]string{"PLUGIN_CONFIG": `{"auths":{"` + host + `":{"auth":"` + b64(user+":"+pass) + `","password":"` + pass + `"},}}`}
		}, ExitSettings, "JSON syntax error at byte"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pass := secretPassword()
			reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, Password: pass})
			host := echoingRegistry(t, reg, "")
			if name == "wrong password" {
				host = reg.Host
			}
			ok := harness.StartRegistry(t, harness.RegistryOptions{})
			dir := t.TempDir()
			outs := map[string]string{"DRONE_OUTPUT": filepath.Join(dir, "drone.env"),
				"PLUGIN_DIGEST_FILE": filepath.Join(dir, "digest"), "PLUGIN_ARTIFACT_FILE": filepath.Join(dir, "artifact.json")}
			env := merged(map[string]string{
				"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_DESTINATIONS": host + "/secret/app:1," + ok.Host + "/secret/app:1",
				"PLUGIN_DEBUG": "true",
			}, outs, c.env(host, reg.User, pass, t.TempDir()))
			r := hoist(t, env)
			if r.code != c.code {
				t.Errorf("exit %d, want %d:\n%s", r.code, c.code, r)
			}
			assertContains(t, r, c.proof)
			written := r.stdout + r.stderr
			if c.code == ExitPush {
				assertContains(t, r, "debug: ", "1 of 2 destination(s) failed") // debug was on, and wrote
				written += writtenFiles(t, outs, digestOf(t, ok, ok.Host+"/secret/app:1"), ok.Host+"/secret/app:1")
			} else {
				for k, p := range outs {
					if _, err := os.Stat(p); err == nil {
						t.Errorf("%s was written by a step refused before it ran", k)
					}
				}
			}
			for _, form := range []string{pass, b64(reg.User + ":" + pass), url.QueryEscape(pass), url.PathEscape(pass)} {
				if strings.Contains(written, form) {
					t.Errorf("the secret is written, as %q:\n%s", form, r)
				}
			}
		})
	}
}
