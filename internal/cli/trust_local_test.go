package cli

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hoist-build/hoist/internal/harness"
)

// A registry routed to a local stand-in (PLUGIN_REGISTRY_ROUTES, which
// hoist pipeline run --local sets) gets no credentials: not the user's
// password given for that registry, not the docker config's login for
// it. The stand-in, a real registry behind a proxy that records every
// request, takes the push (read back with crane) and sees requests, none
// with an Authorization header.
func TestStandInGetsNoCredentials(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	var mu sync.Mutex
	requests, auths := 0, []string{}
	target, _ := url.Parse("http://" + reg.Host)
	proxy := httputil.NewSingleHostReverseProxy(target)
	standIn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		if a := r.Header.Get("Authorization"); a != "" {
			auths = append(auths, a)
		}
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	defer standIn.Close()
	addr := strings.TrimPrefix(standIn.URL, "http://")

	dir := t.TempDir()
	src := filepath.Join(dir, "image.tar")
	img, _ := random.Image(2048, 2)
	if err := tarball.WriteToFile(src, name.MustParseReference("app:1"), img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	const user, password = "ci-bot", "the-users-real-password"
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".docker"), 0o700)
	os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(`{"auths":{"registry.example.com":{"auth":"`+basic+`"}}}`), 0o600)

	for what, env := range map[string]map[string]string{
		"PLUGIN_USERNAME/PLUGIN_PASSWORD": {"PLUGIN_REGISTRY": "registry.example.com", "PLUGIN_USERNAME": user, "PLUGIN_PASSWORD": password, "PLUGIN_TAGS": "pw"},
		"the docker config":               {"HOME": home, "PLUGIN_TAGS": "config"},
	} {
		mu.Lock()
		requests, auths = 0, nil
		mu.Unlock()
		r := mustPush(t, merged(env, map[string]string{
			"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": src,
			"PLUGIN_REPO":            "registry.example.com/team/app",
			"PLUGIN_REGISTRY_ROUTES": "registry.example.com=" + addr,
		}))
		if got := digestOf(t, reg, reg.Host+"/team/app:"+env["PLUGIN_TAGS"]); got != want.String() {
			t.Errorf("%s: the stand-in holds %s, want %s\n%s", what, got, want, r)
		}
		mu.Lock()
		if requests == 0 {
			t.Errorf("%s: the stand-in saw no request", what)
		}
		for _, a := range auths {
			if strings.Contains(a, basic) || strings.Contains(a, password) {
				t.Errorf("%s: the stand-in received the user's password: Authorization: %s", what, a)
			} else {
				t.Errorf("%s: the stand-in received credentials: Authorization: %s", what, a)
			}
		}
		mu.Unlock()
	}
}

// hoist pipeline validate and run refuse identifiers that are not
// Harness identifiers and a Run step's image that is a docker run flag:
// exit 2, every problem at its line and column, nothing run.
func TestPipelineInputIsChecked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(`pipeline:
  identifier: p
  stages:
    - stage:
        identifier: ../../..
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: r, type: Run, spec: {image: "--privileged", command: "touch ran"}}
`), 0o644)
	for _, args := range [][]string{{"pipeline", "validate", "p.yaml"}, {"pipeline", "run", "p.yaml", "--local"}} {
		r := hoistIn(t, dir, map[string]string{"PATH": os.Getenv("PATH"), "HOME": t.TempDir()}, args...)
		if r.code != 2 || !strings.Contains(r.stderr, `p.yaml:5:21: pipeline.stages[0].stage.identifier "../../.." is not an identifier`) ||
			!strings.Contains(r.stderr, `p.yaml:11:64: step r.spec.image "--privileged" is not an image reference`) {
			t.Errorf("%v: exit %d, want 2 with both problems:\n%s", args, r.code, r)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Errorf("the Run step ran")
	}
}
