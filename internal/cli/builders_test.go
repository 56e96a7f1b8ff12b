// Builders, engines and caches: the embedded engine, a remote BuildKit,
// the Docker daemon's builder, registry and local caches.

package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// The layer cache: a build exports its cache to a registry; a second build
// of the same context on a fresh embedded engine reuses every step from
// there and gives the same digest.
func TestRegistryCacheOnAFreshEngine(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo first-step-ran | tee /one.txt\nRUN echo second-step-ran | tee /two.txt\n", nil)
	env := func(tag, engineDir string) map[string]string {
		return map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_REPO": reg.Host + "/cached/app", "PLUGIN_TAGS": tag,
			"PLUGIN_ENABLE_CACHE": "true", "PLUGIN_ENGINE_DIR": engineDir, "PLUGIN_BUILDKITD": harness.Buildkitd(t)}
	}
	first := mustPush(t, env("1", filepath.Join(t.TempDir(), "engine-a")))
	assertContains(t, first, "layer cache: "+reg.Host+"/cached/app:buildcache", "engine: started buildkitd")
	if tags := tagsOf(t, reg, "cached/app"); !strings.Contains(strings.Join(tags, ","), "buildcache") {
		t.Fatalf("no cache was exported: %v", tags)
	}
	second := mustPush(t, env("2", filepath.Join(t.TempDir(), "engine-b")))
	if one, two := digestOf(t, reg, reg.Host+"/cached/app:1"), digestOf(t, reg, reg.Host+"/cached/app:2"); one != two {
		t.Errorf("the rebuild on a fresh engine pushed %s, the first build %s", two, one)
	}
	// A RUN step that executes logs what it echoes ("#6 0.152
	// first-step-ran"); one taken from the cache does not.
	ran := regexp.MustCompile(`(?m)^#\d+ \d+\.\d+ (first|second)-step-ran$`)
	if got := ran.FindAllString(first.stderr, -1); len(got) != 2 {
		t.Errorf("the first build should run both steps, its log shows %q", got)
	}
	if got := ran.FindAllString(second.stderr, -1); len(got) != 0 {
		t.Errorf("steps ran again on the fresh engine: %q", got)
	}
	if !strings.Contains(second.stderr, "importing cache manifest from "+reg.Host+"/cached/app:buildcache") {
		t.Errorf("the cache was not imported:\n%s", second.stderr)
	}
}

// hoist engine start keeps an engine for later builds; stop ends it.
func TestEngineLifecycle(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	dir := filepath.Join(t.TempDir(), "engine")
	env := func() map[string]string {
		return map[string]string{"PLUGIN_ENGINE_DIR": dir, "PLUGIN_BUILDKITD": harness.Buildkitd(t)}
	}
	r := hoist(t, env(), "engine", "status")
	if r.code != ExitEngine || !strings.Contains(r.stdout, "stopped") {
		t.Fatalf("status before start:\n%s", r)
	}
	mustPush(t, env(), "engine", "start")
	t.Cleanup(func() { hoist(t, env(), "engine", "stop") })
	r = mustPush(t, env(), "engine", "status")
	assertContains(t, r, "running, pid")
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo kept > /k.txt\n", nil)
	e := env()
	e["PLUGIN_CONTEXT"], e["PLUGIN_DESTINATIONS"] = ctxDir, reg.Host+"/kept/app:1"
	r = mustPush(t, e, "build")
	assertContains(t, r, "engine: using the running embedded engine")
	mustPush(t, env(), "engine", "status")
	mustPush(t, env(), "engine", "stop")
	if r := hoist(t, env(), "engine", "status"); r.code != ExitEngine {
		t.Errorf("status after stop:\n%s", r)
	}
	// A socket left behind by an engine that died answers nothing: the
	// next build starts an engine of its own.
	if err := os.WriteFile(filepath.Join(dir, "buildkitd.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e["PLUGIN_DESTINATIONS"] = reg.Host + "/kept/app:2"
	r = mustPush(t, e, "build")
	assertContains(t, r, "engine: started buildkitd")
}

// Bad build input fails clearly, pushes nothing and leaves no tarball.
func TestBuildBadInputs(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	good := "FROM " + f.Base + "\nRUN echo ok > /ok.txt\n"
	fileAsDir := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(fileAsDir, []byte("x"), 0o644)
	cases := []struct {
		name       string
		dockerfile string
		env        []string
		code       int
		want       []string
	}{
		{"missing Dockerfile", good, []string{"PLUGIN_DOCKERFILE", "/nowhere/Dockerfile"}, ExitSettings, []string{"dockerfile does not exist at path: /nowhere/Dockerfile"}},
		{"syntax error", "FROM " + f.Base + "\nRUN echo ok\nFORM x\n", nil, ExitBuild, []string{"line 3", "FORM"}},
		{"failing RUN", "FROM " + f.Base + "\nRUN echo about to fail && exit 3\n", nil, ExitBuild, []string{"echo about to fail && exit 3", "exit code: 3"}},
		{"missing base image", "FROM " + reg.Host + "/no/such-base:1\nRUN true\n", nil, ExitBuild, []string{reg.Host + "/no/such-base:1", "not found"}},
		{"malformed build arg", good, []string{"PLUGIN_BUILD_ARGS", "=value"}, ExitSettings, []string{`malformed build argument "=value"`}},
		{"malformed secret", good, []string{"PLUGIN_SECRETS_FROM_ENV", "noequals"}, ExitSettings, []string{`malformed secret "noequals"`}},
		{"secret from an unset variable", good, []string{"PLUGIN_SECRETS_FROM_ENV", "tok=UNSET_VAR"}, ExitSettings, []string{"UNSET_VAR is not set"}},
		{"tar path under a file", good, []string{"PLUGIN_NO_PUSH", "true", "PLUGIN_TAR_PATH", filepath.Join(fileAsDir, "x", "image.tar")}, ExitSettings, []string{"failed to create directory for tar path"}},
		{"unreachable builder", good, []string{"PLUGIN_BUILDER_REMOTE_CONN", "tcp://127.0.0.1:1", "PLUGIN_BUILDER_TIMEOUT", "2s"}, ExitEngine, []string{"builder tcp://127.0.0.1:1 did not answer within 2s"}},
		{"builder address without a scheme", good, []string{"PLUGIN_BUILDER_REMOTE_CONN", "127.0.0.1:1234"}, ExitEngine, []string{"want unix://PATH, tcp://HOST:PORT"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctxDir := buildContext(t, c.dockerfile, nil)
			tarDir := t.TempDir()
			env := buildEnv(t, ctxDir, append([]string{"PLUGIN_REPO", reg.Host + "/bad/app", "PLUGIN_TAR_PATH", filepath.Join(tarDir, "image.tar")}, c.env...)...)
			r := hoist(t, env)
			if r.code != c.code {
				t.Errorf("exit %d, want %d:\n%s", r.code, c.code, r)
			}
			assertContains(t, r, c.want...)
			if tags := tagsOf(t, reg, "bad/app"); len(tags) != 0 {
				t.Errorf("pushed: %v", tags)
			}
			if left, _ := os.ReadDir(tarDir); len(left) != 0 {
				t.Errorf("files left where the tarball would go: %v", left)
			}
		})
	}
}

// Target, build args from the environment, add-host and the network mode
// reach the build.
func TestBuildSettingsReachTheBuild(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	dockerfile := "FROM " + f.Base + " AS unwanted\nRUN exit 1\n\n" +
		"FROM " + f.Base + " AS wanted\nARG FROM_ENV\nARG LIST_ARG\n" +
		"RUN echo \"$FROM_ENV|$LIST_ARG\" > /args.txt && cat /etc/hosts > /hosts.txt\n" +
		"RUN (printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 2 " + strings.Replace(reg.Host, ":", " ", 1) + " | grep -q '200 OK' && echo reached || echo unreachable) > /net.txt\n"
	ctxDir := buildContext(t, dockerfile, nil)
	for _, c := range []struct{ network, want string }{{"host", "reached"}, {"none", "unreachable"}} {
		ref := reg.Host + "/settings/app:" + c.network
		mustPush(t, buildEnv(t, ctxDir, "PLUGIN_DESTINATIONS", ref, "PLUGIN_TARGET", "wanted",
			"PLUGIN_BUILD_ARGS_FROM_ENV", "FROM_ENV", "FROM_ENV", "env-value",
			"PLUGIN_MULTIPLE_BUILD_ARGS", "true", "PLUGIN_BUILD_ARGS_NEW", "LIST_ARG=a,b,c",
			"PLUGIN_ADD_HOST", "myhost.example:10.1.2.3", "PLUGIN_NETWORK", c.network))
		out := f.Docker.RunImage(t, ref, "sh", "-c", "cat /args.txt /net.txt; cat /hosts.txt")
		for _, want := range []string{"env-value|a,b,c", c.want, "10.1.2.3\tmyhost.example"} {
			if !strings.Contains(out, want) {
				t.Errorf("network %q: image lacks %q:\n%s", c.network, want, out)
			}
		}
	}
}

// A remote BuildKit on tcp:// with mutual TLS: with the client certificate
// the build runs; without it the builder is refused within the timeout.
func TestRemoteBuilderOverTLS(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	bk := harness.StartTLSBuildKit(t)
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo over-tls > /tls.txt\n", nil)
	ref := reg.Host + "/tls/app:1"
	mustPush(t, map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_DESTINATIONS": ref,
		"PLUGIN_BUILDER_REMOTE_CONN": bk.Addr, "PLUGIN_BUILDER_TLS_CA": bk.CAFile,
		"PLUGIN_BUILDER_TLS_CERT": bk.CertFile, "PLUGIN_BUILDER_TLS_KEY": bk.KeyFile})
	if got := f.Docker.RunImage(t, ref, "cat", "/tls.txt"); got != "over-tls" {
		t.Errorf("image prints %q", got)
	}
	r := hoist(t, map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_DESTINATIONS": reg.Host + "/tls/app:2",
		"PLUGIN_BUILDER_REMOTE_CONN": bk.Addr, "PLUGIN_BUILDER_TLS_CA": bk.CAFile, "PLUGIN_BUILDER_TIMEOUT": "2s"})
	if r.code != ExitEngine {
		t.Errorf("without a client certificate: exit %d:\n%s", r.code, r)
	}
	assertContains(t, r, "builder "+bk.Addr+" did not answer within 2s")
}

// A local-directory cache: exported by one build, imported by a build on a
// fresh engine, which then runs no step again.
func TestLocalCacheOnAFreshEngine(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo local-step-ran | tee /l.txt\n", nil)
	cacheDir := filepath.Join(t.TempDir(), "cache")
	tars := t.TempDir()
	first := mustPush(t, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_NO_CACHE", "true",
		"PLUGIN_TAR_PATH", filepath.Join(tars, "first.tar"), "PLUGIN_BUILDX_OUTPUT_FORMAT", "oci",
		"PLUGIN_CACHE_TO", "type=local,dest="+cacheDir+",mode=max"))
	if _, err := os.Stat(filepath.Join(cacheDir, "index.json")); err != nil {
		t.Fatalf("no cache was written: %v\n%s", err, first)
	}
	second := mustPush(t, map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_NO_PUSH": "true",
		"PLUGIN_TAR_PATH": filepath.Join(tars, "second.tar"), "PLUGIN_BUILDX_OUTPUT_FORMAT": "oci",
		"PLUGIN_CACHE_FROM": "type=local,src=" + cacheDir,
		"PLUGIN_ENGINE_DIR": filepath.Join(t.TempDir(), "engine"), "PLUGIN_BUILDKITD": harness.Buildkitd(t)})
	ran := regexp.MustCompile(`(?m)^#\d+ \d+\.\d+ local-step-ran$`)
	if !ran.MatchString(first.stderr) || ran.MatchString(second.stderr) {
		t.Errorf("the step should run in the first build only:\n--- first:\n%s\n--- second:\n%s", first.stderr, second.stderr)
	}
	// The two archives' manifest digests, read by skopeo.
	digests := make([]string, 2)
	for i, name := range []string{"first.tar", "second.tar"} {
		digests[i] = strings.TrimSpace(harness.Run(t, nil, "skopeo", "inspect", "--format", "{{.Digest}}", "oci-archive:"+filepath.Join(tars, name)))
	}
	if !strings.HasPrefix(digests[0], "sha256:") || digests[0] != digests[1] {
		t.Errorf("the build from the local cache holds %s, the first build %s", digests[1], digests[0])
	}
}

// Two builds at once on one embedded engine directory: one starts the
// engine, both use it, and the last one to finish stops it.
func TestConcurrentBuildsShareTheEmbeddedEngine(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	dir := filepath.Join(t.TempDir(), "engine")
	var results [2]result
	done := make(chan int, 2)
	for i := range results {
		go func() {
			ctxDir := buildContext(t, fmt.Sprintf("FROM %s\nRUN sleep %d && echo build-%d > /b.txt\n", f.Base, 2-i, i), nil)
			results[i] = hoist(t, map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_DESTINATIONS": fmt.Sprintf("%s/shared/app:%d", reg.Host, i),
				"PLUGIN_ENGINE_DIR": dir, "PLUGIN_BUILDKITD": harness.Buildkitd(t)})
			done <- i
		}()
	}
	<-done
	<-done
	started := 0
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("build %d failed:\n%s", i, r)
		}
		if strings.Contains(r.stderr, "engine: started buildkitd") {
			started++
		}
	}
	if started != 1 {
		t.Errorf("%d runs started an engine, want 1", started)
	}
	if r := hoist(t, map[string]string{"PLUGIN_ENGINE_DIR": dir}, "engine", "status"); r.code != ExitEngine {
		t.Errorf("the engine was left running:\n%s", r)
	}
}

// The Docker daemon's built-in BuildKit as the builder: the image lands in
// the daemon, a docker tarball is saved from it, and build-and-push takes
// the image from the daemon.
func TestDockerDaemonBuilder(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo daemon-built > /d.txt\n", nil)
	env := func(kv ...string) map[string]string {
		m := map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_BUILDER_DRIVER": "docker", "DOCKER_HOST": f.Docker.Host,
			"PLUGIN_NETWORK": "host"} // the test daemon has no bridge
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tarPath := filepath.Join(t.TempDir(), "out", "d.tar")
	repo := reg.Host + "/daemon-built/app"
	r := mustPush(t, env("PLUGIN_NO_PUSH", "true", "PLUGIN_REPO", repo, "PLUGIN_TAGS", "1,2", "PLUGIN_TAR_PATH", tarPath))
	assertContains(t, r, "engine: the BuildKit of docker daemon", "saved docker tarball")
	if got := strings.TrimSpace(f.Docker.Run(t, "run", "--rm", "--network", "host", repo+":2", "cat", "/d.txt")); got != "daemon-built" {
		t.Errorf("the daemon's image prints %q", got)
	}
	if tags := tagsOf(t, reg, "daemon-built/app"); len(tags) != 0 {
		t.Errorf("build-only pushed: %v", tags)
	}
	r = mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": tarPath, "PLUGIN_DESTINATIONS": reg.Host + "/from-tar/app:1"})
	if got := f.Docker.RunImage(t, reg.Host+"/from-tar/app:1", "cat", "/d.txt"); got != "daemon-built" {
		t.Errorf("the tarball's image prints %q", got)
	}
	r = mustPush(t, env("PLUGIN_REPO", repo, "PLUGIN_TAGS", "3"))
	assertPushed(t, r, reg, repo+":3")
	if got := f.Docker.RunImage(t, repo+":3", "cat", "/d.txt"); got != "daemon-built" {
		t.Errorf("the pushed image prints %q", got)
	}
}

// Docker Hub mirrors reach the embedded engine: FROM a Docker Hub name
// resolves through the mirror (there is no Docker Hub here).
func TestRegistryMirror(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	mirror := harness.StartRegistry(t, harness.RegistryOptions{})
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": f.Base, "PLUGIN_DAEMON_OFF": "true",
		"PLUGIN_DESTINATIONS": mirror.Host + "/library/hoist-mirrored-base:1"})
	ctxDir := buildContext(t, "FROM hoist-mirrored-base:1\nRUN echo via-mirror > /m.txt\n", nil)
	ref := reg.Host + "/mirrored/app:1"
	mustPush(t, map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_DESTINATIONS": ref, "PLUGIN_REGISTRY_MIRRORS": mirror.Host,
		"PLUGIN_ENGINE_DIR": filepath.Join(t.TempDir(), "engine"), "PLUGIN_BUILDKITD": harness.Buildkitd(t)})
	if got := f.Docker.RunImage(t, ref, "cat", "/m.txt"); got != "via-mirror" {
		t.Errorf("image prints %q", got)
	}
}

// auto-tag and expand-tag, as the peers apply them to builds.
func TestAutoAndExpandedTags(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo tagged > /t.txt\n", nil)
	sorted := func(repo string) string {
		tags := tagsOf(t, reg, repo)
		slices.Sort(tags)
		return strings.Join(tags, ",")
	}
	mustPush(t, buildEnv(t, ctxDir, "PLUGIN_REPO", reg.Host+"/auto/app", "PLUGIN_AUTO_TAG", "true",
		"DRONE_COMMIT_REF", "refs/tags/v1.2.3", "DRONE_REPO_BRANCH", "main"))
	if got := sorted("auto/app"); got != "1,1.2,1.2.3" {
		t.Errorf("auto tags: %s", got)
	}
	mustPush(t, buildEnv(t, ctxDir, "PLUGIN_REPO", reg.Host+"/expand/app", "PLUGIN_TAGS", "v2.0.1,latest", "PLUGIN_EXPAND_TAG", "true"))
	if got := sorted("expand/app"); got != "2,2.0,2.0.1,latest" {
		t.Errorf("expanded tags: %s", got)
	}
	r := mustPush(t, buildEnv(t, ctxDir, "PLUGIN_REPO", reg.Host+"/skipped/app", "PLUGIN_AUTO_TAG", "true",
		"DRONE_COMMIT_REF", "refs/heads/feature", "DRONE_REPO_BRANCH", "main"))
	assertContains(t, r, "skipping automated docker build for refs/heads/feature")
	if got := sorted("skipped/app"); got != "" {
		t.Errorf("a skipped build pushed %s", got)
	}
	// auto-tag with the user's tags: both pushed, the automatic ones
	// first (Woodpecker's merge); on a feature branch the user's alone.
	craneLs := func(repo string) string {
		tags := strings.Fields(reg.Crane(t, "ls", reg.Host+"/"+repo))
		slices.Sort(tags)
		return strings.Join(tags, ",")
	}
	r = mustPush(t, buildEnv(t, ctxDir, "PLUGIN_REPO", reg.Host+"/merged/app", "PLUGIN_AUTO_TAG", "true", "PLUGIN_TAGS", "sha-1f2e,stable",
		"DRONE_COMMIT_REF", "refs/tags/v1.2.3", "DRONE_REPO_BRANCH", "main"))
	if got := craneLs("merged/app"); got != "1,1.2,1.2.3,sha-1f2e,stable" {
		t.Errorf("auto tags with the user's: %s", got)
	}
	assertContains(t, r, "auto-tag: the automatic tags 1, 1.2, 1.2.3, then those of PLUGIN_TAGS: 1, 1.2, 1.2.3, sha-1f2e, stable")
	r = mustPush(t, buildEnv(t, ctxDir, "PLUGIN_REPO", reg.Host+"/merged/feature", "PLUGIN_AUTO_TAG", "true", "PLUGIN_TAGS", "sha-1f2e",
		"DRONE_COMMIT_REF", "refs/heads/feature", "DRONE_REPO_BRANCH", "main"))
	if got := craneLs("merged/feature"); got != "sha-1f2e" {
		t.Errorf("auto tags on a feature branch with the user's: %s", got)
	}
	assertContains(t, r, "no automatic tags; the tags of PLUGIN_TAGS: sha-1f2e")
	r = hoist(t, buildEnv(t, ctxDir, "PLUGIN_REPO", reg.Host+"/bad/app", "PLUGIN_AUTO_TAG", "true", "PLUGIN_EXPAND_TAG", "true"))
	if r.code != ExitSettings {
		t.Errorf("auto-tag with expand-tag: exit %d", r.code)
	}
	assertContains(t, r, "The auto-tag flag conflicts with the expand-tag flag")
}

// A remote BuildKit pushes the image itself, by digest and untagged, to
// the first destination (a registry with a login, which reaches the
// builder through the session), and hoist copies it from there to the
// other destinations and writes every tag: the image's bytes never come
// back to hoist. The pushed image is read back with crane, run, and the
// first repository holds the step's tags only.
func TestBuildPushedByARemoteBuilder(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	b := harness.StartRegistry(t, harness.RegistryOptions{})
	c := harness.StartRegistry(t, harness.RegistryOptions{})
	_, addr := harness.SharedEngine(t)
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo pushed-by-the-builder > /b.txt\nCMD [\"cat\", \"/b.txt\"]\n", nil)
	r := mustPush(t, map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_BUILDER_REMOTE_CONN": addr,
		"PLUGIN_REPO": a.Host + "/bp/app", "PLUGIN_TAGS": "1.0,latest", "PLUGIN_REGISTRY": a.Host,
		"PLUGIN_USERNAME": a.User, "PLUGIN_PASSWORD": a.Password,
		"PLUGIN_DESTINATIONS": b.Host + "/bp/app:1.0," + c.Host + "/bp/app:1.0", "PLUGIN_PROGRESS": "plain",
		// The registries are on loopback, which the builder shares.
		"PLUGIN_BUILDER_PUSH": "true"})
	// Each blob is read once from the first registry for the other two.
	assertContains(t, r, "the builder pushed it to "+a.Host+"/bp/app by digest, untagged", "read once from "+a.Host+"/bp/app and sent to 2 registries at once")
	if strings.Contains(r.stderr, "layers checked") {
		t.Errorf("hoist read the layers back:\n%s", r)
	}
	digest := digestOf(t, a, a.Host+"/bp/app:1.0")
	for _, ref := range []struct {
		reg *harness.Registry
		ref string
	}{{a, a.Host + "/bp/app:latest"}, {b, b.Host + "/bp/app:1.0"}, {c, c.Host + "/bp/app:1.0"}} {
		if got := digestOf(t, ref.reg, ref.ref); got != digest {
			t.Errorf("%s holds %s, %s:1.0 %s", ref.ref, got, a.Host, digest)
		}
	}
	assertPushed(t, r, a, a.Host+"/bp/app:latest")
	got := tagsOf(t, a, "bp/app")
	slices.Sort(got)
	if !slices.Equal(got, []string{"1.0", "latest"}) {
		t.Errorf("%s/bp/app has tags %v", a.Host, got)
	}
	if got := f.Docker.RunImage(t, b.Host+"/bp/app:1.0"); got != "pushed-by-the-builder" {
		t.Errorf("image prints %q", got)
	}
	// Unless told, a loopback registry is the builder's own loopback:
	// hoist takes the image and pushes it, as it does with false.
	for i, v := range []string{"", "false"} {
		ref := fmt.Sprintf("%s/bp/self%d:1", b.Host, i)
		r := mustPush(t, map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_BUILDER_REMOTE_CONN": addr,
			"PLUGIN_DESTINATIONS": ref, "PLUGIN_PROGRESS": "plain", "PLUGIN_BUILDER_PUSH": v})
		if strings.Contains(r.stderr, "the builder pushed it") || !strings.Contains(r.stderr, "layers checked") {
			t.Errorf("PLUGIN_BUILDER_PUSH=%q: the builder pushed, or hoist read no layer:\n%s", v, r)
		}
		assertPushed(t, r, b, ref)
	}
	r = hoist(t, map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_BUILDER_REMOTE_CONN": addr,
		"PLUGIN_DESTINATIONS": b.Host + "/bp/bad:1", "PLUGIN_BUILDER_PUSH": "yes"})
	if r.code != ExitSettings {
		t.Errorf("PLUGIN_BUILDER_PUSH=yes: exit %d:\n%s", r.code, r)
	}
	assertContains(t, r, `PLUGIN_BUILDER_PUSH="yes": want auto, true or false`)
}

// When the builder cannot push to the first destination (here a registry
// that refuses BuildKit's client, as a network the builder is not on
// would), hoist takes the image from the builder, from its cache, and
// pushes it itself: the step succeeds and says why.
func TestBuildPushedByHoistWhenTheBuilderCannot(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	target, _ := url.Parse(reg.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var refused atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if ua := req.UserAgent(); strings.Contains(ua, "buildkit") || strings.Contains(ua, "containerd") {
			refused.Add(1)
			http.Error(w, `{"errors":[{"code":"DENIED","message":"not from this network"}]}`, http.StatusForbidden)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	_, addr := harness.SharedEngine(t)
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo from-hoist > /h.txt\n", nil)
	ref := host + "/fb/app:1"
	r := mustPush(t, map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_BUILDER_REMOTE_CONN": addr,
		"PLUGIN_DESTINATIONS": ref, "PLUGIN_PROGRESS": "plain", "PLUGIN_BUILDER_PUSH": "true"})
	if refused.Load() == 0 {
		t.Fatalf("the builder never tried the registry:\n%s", r)
	}
	assertContains(t, r, "the builder could not push to "+host+"/fb/app", "hoist takes the image from the builder (its cache has the build) and pushes it")
	got := reg.Digest(t, reg.Host+"/fb/app:1")
	assertSummary(t, r, ref, got)
	if out := f.Docker.RunImage(t, reg.Host+"/fb/app:1", "cat", "/h.txt"); out != "from-hoist" {
		t.Errorf("image prints %q", out)
	}
	// With PLUGIN_NO_CACHE a second build would run every step again: the
	// step fails, saying what to set, and nothing is tagged.
	r = hoist(t, map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_BUILDER_REMOTE_CONN": addr,
		"PLUGIN_DESTINATIONS": host + "/fb/nocache:1", "PLUGIN_BUILDER_PUSH": "true", "PLUGIN_NO_CACHE": "true"})
	if r.code != ExitBuild {
		t.Fatalf("exit %d, want %d:\n%s", r.code, ExitBuild, r)
	}
	assertContains(t, r, "the builder could not push to "+host+"/fb/nocache", "with PLUGIN_NO_CACHE hoist does not build again to push from here: set PLUGIN_BUILDER_PUSH=false")
	if tags := tagsOf(t, reg, "fb/nocache"); len(tags) != 0 {
		t.Errorf("tagged %v", tags)
	}
}
