package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// An env file in the checkout (the repository's) sets PLUGIN_CONTEXT to
// a directory outside the workspace that holds a docker config, which the
// Dockerfile COPYs into the image; PLUGIN_NETWORK=host, so that a RUN
// reaches a service on the host's loopback; and PLUGIN_DIGEST_FILE, a
// file outside the workspace. Each is refused (exit 2, the file, line
// and variable named) before anything runs: nothing is pushed, nothing
// connects, the file is intact.
func TestEnvFileCannotRedirectContextNetworkOrOutputs(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	dir, _ := harness.SharedEngine(t)
	l := listenLoopback(t)

	home := t.TempDir() // outside the workspace: the runner's home
	const cred = "envfile-docker-config-s3cret-4410"
	os.MkdirAll(filepath.Join(home, ".docker"), 0o700)
	os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(`{"auths":{"registry.example":{"auth":"`+b64("ci:"+cred)+`"}}}`), 0o600)
	victim := filepath.Join(home, "victim.txt")
	os.WriteFile(victim, []byte("precious\n"), 0o600)

	ws := t.TempDir() // the checkout
	os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM "+f.Base+"\nCOPY . /stolen/\n"+
		fmt.Sprintf("RUN echo envfile-probe | /bin/busybox nc -w 3 127.0.0.1 %d; true\n", l.port)), 0o644)
	envFile := filepath.Join(ws, "ci.env")
	os.WriteFile(envFile, []byte("PLUGIN_CONTEXT="+home+"\nPLUGIN_DOCKERFILE=Dockerfile\nPLUGIN_NETWORK=host\nPLUGIN_DIGEST_FILE="+victim+"\n"), 0o644)

	repo := a.Host + "/envfile/redirect"
	r := hoistIn(t, ws, map[string]string{"PLUGIN_ENGINE_DIR": dir, "PLUGIN_ENV_FILE": "ci.env", "PLUGIN_REPO": repo, "PLUGIN_TAGS": "1", "PLUGIN_NO_CACHE": "true"})
	if r.code != ExitSettings {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	for i, v := range []string{"PLUGIN_CONTEXT", "PLUGIN_DOCKERFILE", "PLUGIN_NETWORK", "PLUGIN_DIGEST_FILE"} {
		assertContains(t, r, fmt.Sprintf("PLUGIN_ENV_FILE: env file %s line %d sets %s, which an env file may not set", envFile, i+1, v))
	}
	assertNotContains(t, r, cred, b64("ci:"+cred))
	if tags := tagsOf(t, a, "envfile/redirect"); len(tags) != 0 {
		t.Errorf("pushed: %v", tags)
	}
	if n, got := l.seen(); n > 0 {
		t.Errorf("a RUN reached the host's loopback (%d connections, read %q)", n, got)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("a file outside the workspace was overwritten: now %q", b)
	}
}

// An env file in the checkout points PLUGIN_DOCKERFILE at a file outside
// the workspace that holds a token (a Kubernetes service-account token):
// refused, and the token, which a parse error would print for the pull
// request's author to read, is in no output.
func TestEnvFileCannotReadAFileAsTheDockerfile(t *testing.T) {
	t.Parallel()
	dir, _ := harness.SharedEngine(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	tokenFile := filepath.Join(t.TempDir(), "token")
	const token = "eyJhbGciOiJSUzI1NiJ9.envfile-service-account-token-5531"
	os.WriteFile(tokenFile, []byte(token), 0o600)
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	envFile := filepath.Join(ws, "ci.env")
	os.WriteFile(envFile, []byte("PLUGIN_TAGS=1\nPLUGIN_DOCKERFILE="+tokenFile+"\n"), 0o644)
	r := hoistIn(t, ws, map[string]string{"PLUGIN_ENGINE_DIR": dir, "PLUGIN_ENV_FILE": "ci.env", "PLUGIN_REPO": a.Host + "/envfile/df"})
	if r.code != ExitSettings {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, "env file "+envFile+" line 2 sets PLUGIN_DOCKERFILE, which an env file may not set", "set PLUGIN_DOCKERFILE in the step's own settings")
	assertNotContains(t, r, "envfile-service-account-token")
}

// An env file in the checkout sets PLUGIN_CACHE_TO: the build cache would
// be exported with the step's own credentials to a tag the file names
// (here another repository's release on the same registry) and to a
// directory outside the workspace. Refused: the release is untouched,
// the directory not written.
func TestEnvFileCannotRedirectCachePushes(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	dir, _ := harness.SharedEngine(t)
	prod := a.Host + "/victim/prod:release"
	a.Crane(t, "copy", f.Base, prod) // someone else's release, same login
	before := a.Digest(t, prod)
	outside := filepath.Join(t.TempDir(), "outside")

	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM "+f.Base+"\nRUN echo cache > /cache\n"), 0o644)
	envFile := filepath.Join(ws, "ci.env")
	os.WriteFile(envFile, []byte("PLUGIN_CACHE_TO=type=registry,ref="+prod+",mode=max;type=local,dest="+outside+"\n"), 0o644)
	r := hoistIn(t, ws, map[string]string{"PLUGIN_ENGINE_DIR": dir, "PLUGIN_ENV_FILE": "ci.env", "PLUGIN_REPO": a.Host + "/envfile/app", "PLUGIN_TAGS": "1",
		"PLUGIN_USERNAME": a.User, "PLUGIN_PASSWORD": a.Password, "PLUGIN_NO_CACHE": "true"})
	if r.code != ExitSettings {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, "env file "+envFile+" line 1 sets PLUGIN_CACHE_TO, which an env file may not set")
	if after := a.Digest(t, prod); after != before {
		t.Errorf("%s was overwritten with the step's credentials (%s -> %s)", prod, before, after)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("the cache was written outside the workspace: %s", outside)
	}
	if tags := tagsOf(t, a, "envfile/app"); len(tags) != 0 {
		t.Errorf("pushed: %v", tags)
	}
}

// An env file in the checkout cannot change what the scan gate decides:
// the severities, the ignore file, the skipped directories. The image
// with a HIGH finding is refused at planning, not passed; the same
// settings from the step's own environment are the step's to give.
func TestEnvFileCannotChangeTheScanPolicy(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	musl, _ := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r2")) // CVE-2099-1001, HIGH, fixed
	cache := t.TempDir()
	for _, c := range []struct {
		content string
		names   []string
	}{
		{"PLUGIN_SCAN_SEVERITY=CRITICAL\n", []string{"line 1 sets PLUGIN_SCAN_SEVERITY"}},
		{"PLUGIN_TAGS=1\nPLUGIN_SCAN_IGNOREFILE=/dev/null\nPLUGIN_SCAN_SKIP_DIRS=/lib\n", []string{"line 2 sets PLUGIN_SCAN_IGNOREFILE", "line 3 sets PLUGIN_SCAN_SKIP_DIRS"}},
	} {
		ws := t.TempDir()
		os.WriteFile(filepath.Join(ws, "ci.env"), []byte(c.content), 0o644)
		r := hoistIn(t, ws, with(scanEnv(t, k, "PLUGIN_SCAN_CACHE_DIR", cache, "PLUGIN_SCAN_RECORDS", t.TempDir()), "PLUGIN_ENV_FILE", "ci.env"), "scan", musl)
		if r.code != ExitSettings {
			t.Errorf("%q: exit %d, want %d:\n%s", c.content, r.code, ExitSettings, r)
		}
		assertContains(t, r, c.names...)
	}
	// From the step's own settings, the severity is the step's choice.
	r := hoistIn(t, t.TempDir(), scanEnv(t, k, "PLUGIN_SCAN_CACHE_DIR", cache, "PLUGIN_SCAN_RECORDS", t.TempDir(), "PLUGIN_SCAN_SEVERITY", "CRITICAL"), "scan", musl)
	if r.code != 0 {
		t.Errorf("PLUGIN_SCAN_SEVERITY=CRITICAL from the step: exit %d, want 0:\n%s", r.code, r)
	}
}

// An env file cannot set what is not a setting either: the CI's run
// identity (which vouches for the workspace's state), the commit, a
// proxy. Refused, naming the variable; the tags and build arguments of
// the same file are taken when it holds nothing else.
func TestEnvFileSetsNoOtherVariable(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	dir, _ := harness.SharedEngine(t)
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM "+f.Base+"\nARG VERSION\nLABEL version=$VERSION\n"), 0o644)
	envFile := filepath.Join(ws, "ci.env")
	os.WriteFile(envFile, []byte("PLUGIN_TAGS=7\nHARNESS_EXECUTION_ID=another-run\nDRONE_BUILD_NUMBER=41\nDRONE_COMMIT_SHA=0000000000000000000000000000000000000000\nHTTPS_PROXY=http://proxy.example:3128\n"), 0o644)
	env := map[string]string{"PLUGIN_ENGINE_DIR": dir, "PLUGIN_ENV_FILE": "ci.env", "PLUGIN_REPO": a.Host + "/envfile/vars"}
	r := hoistIn(t, ws, env)
	if r.code != ExitSettings {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	for i, v := range []string{"HARNESS_EXECUTION_ID", "DRONE_BUILD_NUMBER", "DRONE_COMMIT_SHA", "HTTPS_PROXY"} {
		assertContains(t, r, fmt.Sprintf("env file %s line %d sets %s, which an env file may not set", envFile, i+2, v))
	}
	if tags := tagsOf(t, a, "envfile/vars"); len(tags) != 0 {
		t.Errorf("pushed: %v", tags)
	}
	os.WriteFile(envFile, []byte("PLUGIN_TAGS=7\nPLUGIN_BUILD_ARGS=VERSION=1.2.3\n"), 0o644)
	r = hoistIn(t, ws, env)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r)
	}
	if cfg := a.Crane(t, "config", a.Host+"/envfile/vars:7"); !strings.Contains(cfg, `"version":"1.2.3"`) {
		t.Errorf("the image's config: %s", cfg)
	}
}
