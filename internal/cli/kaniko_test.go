package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

var imagesOnce struct {
	sync.Once
	err string
}

// pluginImage returns hoist's plugin image of kind (kaniko or buildkit),
// built by `make images` (scripts/images.sh: hoist builds them with its
// embedded engine) into the test daemon, once per test binary, tagged
// test (or $HOIST_TEST_IMAGE_TAG, so that test runs of several checkouts
// sharing a daemon do not build over each other's images).
func pluginImage(t *testing.T, kind string) string {
	t.Helper()
	f := harness.Inputs(t)
	harness.KanikoExecutor(t)
	harness.Buildkitd(t)
	imagesOnce.Do(func() {
		out, err := harness.RunErr(f.Docker.Env(), filepath.Join(harness.ModuleRoot(), "scripts", "images.sh"), testImageTag())
		if err != nil {
			imagesOnce.err = fmt.Sprintf("scripts/images.sh: %v\n%s", err, out)
		}
	})
	if imagesOnce.err != "" {
		t.Fatal(imagesOnce.err)
	}
	return "hoist/" + kind + ":" + testImageTag()
}

func testImageTag() string {
	if tag := os.Getenv("HOIST_TEST_IMAGE_TAG"); tag != "" {
		return tag
	}
	return "test"
}

// plugin runs an image as a CI runner runs a plugin step: the workspace
// mounted at /harness, settings as environment variables.
func plugin(t *testing.T, d *harness.Docker, image, workspace string, env map[string]string, runArgs ...string) (string, error) {
	t.Helper()
	args := append([]string{"run", "--rm", "--network", "host", "-v", workspace + ":/harness", "-w", "/harness"}, runArgs...)
	for k, v := range env {
		args = append(args, "-e", k+"="+v)
	}
	args = append(args, image)
	out, err := harness.RunErr(append(d.Env(), "DOCKER_CLI_HINTS=false"), "sh", "-c", shellJoin(append([]string{"docker"}, args...))+" 2>&1")
	return out, err
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// The Kaniko plugin image as a CI runner runs it: build and push; then a
// build-only step writes a tarball (and the workspace image store), and
// push-only steps in fresh containers push the tarball to two registries
// and, with no tarball, the image from the workspace store.
func TestKanikoPluginImage(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	image := pluginImage(t, "kaniko")
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	b := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := buildContext(t, "FROM "+f.Base+"\nARG WHO\nRUN echo \"built by kaniko for $WHO\" > /k.txt\n", nil)
	// (Signing and attesting happen in a step of their own: see
	// TestKanikoSignsOnlyInAStepOfItsOwn.)
	out, err := plugin(t, f.Docker, image, ws, map[string]string{"PLUGIN_REPO": a.Host + "/kaniko/app", "PLUGIN_TAGS": "1",
		"PLUGIN_BUILD_ARGS": "WHO=ci", "PLUGIN_CUSTOM_LABELS": "team=k", "PLUGIN_PROGRESS": "plain"})
	if err != nil {
		t.Fatalf("build and push: %v\n%s", err, out)
	}
	if !strings.Contains(out, "build tool: kaniko (--build-tool says so)") && !strings.Contains(out, "build tool: kaniko (PLUGIN_BUILD_TOOL says so)") {
		t.Errorf("the tool choice is not reported:\n%s", out)
	}
	if got := f.Docker.RunImage(t, a.Host+"/kaniko/app:1", "cat", "/k.txt"); got != "built by kaniko for ci" {
		t.Errorf("pushed image prints %q", got)
	}

	out, err = plugin(t, f.Docker, image, ws, map[string]string{"PLUGIN_NO_PUSH": "true", "PLUGIN_TAR_PATH": "/harness/out/image.tar",
		"PLUGIN_REPO": a.Host + "/kaniko/app", "PLUGIN_TAGS": "2", "PLUGIN_BUILD_ARGS": "WHO=handoff", "PLUGIN_PROGRESS": "plain",
		"PLUGIN_REPRODUCIBLE": "true", "PLUGIN_SNAPSHOT_MODE": "redo"})
	if err != nil {
		t.Fatalf("build only: %v\n%s", err, out)
	}
	if tags := tagsOf(t, a, "kaniko/app"); slices.Contains(tags, "2") {
		t.Errorf("build-only pushed: %v", tags)
	}
	if _, err := os.Stat(filepath.Join(ws, "out", "image.tar")); err != nil {
		t.Fatalf("no tarball in the workspace: %v\n%s", err, out)
	}

	out, err = plugin(t, f.Docker, image, ws, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": "/harness/out/image.tar",
		"PLUGIN_REPO": a.Host + "/kaniko/app", "PLUGIN_TAGS": "2", "PLUGIN_DESTINATIONS": b.Host + "/kaniko/app:2", "PLUGIN_PROGRESS": "plain"})
	if err != nil {
		t.Fatalf("push only: %v\n%s", err, out)
	}
	for _, ref := range []string{a.Host + "/kaniko/app:2", b.Host + "/kaniko/app:2"} {
		if got := f.Docker.RunImage(t, ref, "cat", "/k.txt"); got != "built by kaniko for handoff" {
			t.Errorf("%s prints %q", ref, got)
		}
	}
	// PLUGIN_REPRODUCIBLE reached the executor: no timestamps.
	if created := strings.TrimSpace(f.Docker.Run(t, "inspect", "--format", "{{.Created}}", b.Host+"/kaniko/app:2")); !strings.HasPrefix(created, "1970-01-01") && !strings.HasPrefix(created, "0001-01-01") {
		t.Errorf("created %s, want no timestamp (epoch or zero time)", created)
	}

	// Kubernetes' push-only step: no tarball, no daemon, the workspace store.
	c := harness.StartRegistry(t, harness.RegistryOptions{})
	out, err = plugin(t, f.Docker, image, ws, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REPO": a.Host + "/kaniko/app", "PLUGIN_TAGS": "2",
		"PLUGIN_DESTINATIONS": c.Host + "/from-store/app:2", "PLUGIN_DAEMON_OFF": "true", "PLUGIN_PROGRESS": "plain"})
	if err != nil || !strings.Contains(out, "source: workspace image store") {
		t.Fatalf("push only from the store: %v\n%s", err, out)
	}
	if got := f.Docker.RunImage(t, c.Host+"/from-store/app:2", "cat", "/k.txt"); got != "built by kaniko for handoff" {
		t.Errorf("pushed from the store, prints %q", got)
	}
}

// A failing step in the executor: its exit code and last lines, exit 5.
func TestKanikoFailureIsReported(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	image := pluginImage(t, "kaniko")
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := buildContext(t, "FROM "+f.Base+"\nRUN echo kaniko-step-fails && exit 7\n", nil)
	out, err := plugin(t, f.Docker, image, ws, map[string]string{"PLUGIN_REPO": reg.Host + "/bad/app", "PLUGIN_PROGRESS": "plain"})
	if err == nil || !strings.Contains(err.Error(), "exit status 5") {
		t.Errorf("want exit 5, got %v\n%s", err, out)
	}
	for _, want := range []string{"the kaniko executor exited with code 7", "kaniko-step-fails", "exit status 7"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if tags := tagsOf(t, reg, "bad/app"); len(tags) != 0 {
		t.Errorf("pushed: %v", tags)
	}
}

// Which tool builds, and the clear errors around it (run on the host,
// where there is no executor).
func TestBuildToolChoice(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	ctxDir := buildContext(t, "FROM "+f.Base+"\n", nil)
	cases := []struct {
		env  map[string]string
		code int
		want []string
	}{
		{map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, ExitEngine,
			[]string{"build tool: kaniko (running in Kubernetes (KUBERNETES_SERVICE_HOST is set); CI_USE_BUILDX_ON_K8=true picks BuildKit)", "kaniko executor not found at /kaniko/executor", "PLUGIN_BUILD_TOOL=buildkit"}},
		{map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "CI_USE_BUILDX_ON_K8": "true"}, 0,
			[]string{"build tool: buildkit (running in Kubernetes, and CI_USE_BUILDX_ON_K8 is true)"}},
		{map[string]string{"PLUGIN_BUILD_TOOL": "docker"}, ExitSettings, []string{`PLUGIN_BUILD_TOOL="docker": want buildkit or kaniko`}},
		// PLUGIN_DAEMON_OFF does not stop a load: the daemon at
		// DOCKER_HOST is used, and here none answers.
		{map[string]string{"PLUGIN_BUILDX_LOAD": "true", "PLUGIN_DAEMON_OFF": "true"}, ExitEngine,
			[]string{"PLUGIN_BUILDX_LOAD loads into the Docker daemon at DOCKER_HOST: docker daemon unix:///nonexistent/docker.sock is not reachable"}},
	}
	for _, c := range cases {
		env := buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_REPO", "127.0.0.1:1/choice/app")
		for k, v := range c.env {
			env[k] = v
		}
		r := hoist(t, env)
		if r.code != c.code {
			t.Errorf("%v: exit %d, want %d:\n%s", c.env, r.code, c.code, r)
		}
		assertContains(t, r, c.want...)
	}
}

// buildkitContainerFlags grant a container what BuildKit needs to run
// builds inside it. CI runners run such steps privileged; this machine's
// sandbox cannot grant every capability, so the tests grant these.
var buildkitContainerFlags = []string{
	"--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
	"--security-opt", "systempaths=unconfined", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
}

// The BuildKit plugin image: hoist starts its embedded engine inside the
// step's container.
func TestBuildKitPluginImage(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	image := pluginImage(t, "buildkit")
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := buildContext(t, "FROM "+f.Base+"\nRUN echo built-in-the-step > /s.txt\n", nil)
	out, err := plugin(t, f.Docker, image, ws, map[string]string{"PLUGIN_REPO": reg.Host + "/bk-image/app", "PLUGIN_TAGS": "1",
		"PLUGIN_NETWORK": "host", "PLUGIN_PROGRESS": "plain"}, buildkitContainerFlags...)
	if err != nil {
		t.Fatalf("build and push: %v\n%s", err, out)
	}
	for _, want := range []string{"build tool: buildkit", "engine: started buildkitd"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got := f.Docker.RunImage(t, reg.Host+"/bk-image/app:1", "cat", "/s.txt"); got != "built-in-the-step" {
		t.Errorf("pushed image prints %q", got)
	}
}

// A BuildKit in a container, reached as docker-container://NAME (BuildKit's
// connection helper runs `docker exec NAME buildctl dial-stdio`): the
// BuildKit image started with buildkitd as its entrypoint.
func TestDockerContainerBuilder(t *testing.T) {
	f := harness.Inputs(t)
	image := pluginImage(t, "buildkit")
	t.Setenv("DOCKER_HOST", f.Docker.Host) // the helper runs the docker CLI
	name := "hoist-test-buildkitd-" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")
	f.Docker.Run(t, "rm", "-f", name)
	args := append([]string{"run", "-d", "--name", name, "--network", "host"}, buildkitContainerFlags...)
	f.Docker.Run(t, append(args, "--entrypoint", "/usr/bin/buildkitd", image, "--allow-insecure-entitlement", "network.host")...)
	t.Cleanup(func() { f.Docker.Run(t, "rm", "-f", name) })
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo via-docker-container > /d.txt\n", nil)
	ref := reg.Host + "/dc/app:1"
	mustPush(t, map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_DESTINATIONS": ref, "PLUGIN_NETWORK": "host",
		"PLUGIN_BUILDER_REMOTE_CONN": "docker-container://" + name, "PLUGIN_BUILDER_TIMEOUT": "30s"})
	if got := f.Docker.RunImage(t, ref, "cat", "/d.txt"); got != "via-docker-container" {
		t.Errorf("image prints %q", got)
	}
}

// Kaniko pulls a private base image behind auth with the base-image login
// (PLUGIN_BASE_IMAGE_REGISTRY/USERNAME/PASSWORD). And hoist's own files (the
// workspace store, the step's tarball, another step's temporary file) stay
// out of Kaniko's context, whatever .dockerignore says.
func TestKanikoCredentialsAndContext(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	image := pluginImage(t, "kaniko")
	priv := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": f.Base, "PLUGIN_DESTINATIONS": priv.Host + "/private/base:1",
		"PLUGIN_REGISTRY": priv.Host, "PLUGIN_USERNAME": priv.User, "PLUGIN_PASSWORD": priv.Password})
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := buildContext(t, "FROM "+priv.Host+"/private/base:1\nCOPY . /app\nCMD [\"busybox\", \"find\", \"/app\"]\n", map[string]string{
		".dockerignore": "*.log\n", ".hoist-tmp-other.tar-1": "another step's half tarball"})
	for _, env := range []map[string]string{
		{"PLUGIN_NO_PUSH": "true"}, // writes the workspace store into the context
		{"PLUGIN_TAGS": "1"},
	} {
		out, err := plugin(t, f.Docker, image, ws, merged(env, map[string]string{"PLUGIN_REPO": reg.Host + "/kaniko/ctx",
			"PLUGIN_BASE_IMAGE_REGISTRY": priv.Host, "PLUGIN_BASE_IMAGE_USERNAME": priv.User, "PLUGIN_BASE_IMAGE_PASSWORD": priv.Password,
			"PLUGIN_TAR_PATH": "/harness/out/image.tar", "PLUGIN_PROGRESS": "plain"}))
		if err != nil {
			t.Fatalf("%v: %v\n%s", env, err, out)
		}
		if strings.Contains(out, priv.Password) {
			t.Errorf("the password was printed:\n%s", out)
		}
	}
	if _, err := os.Stat(filepath.Join(ws, ".hoist", "images", "index.json")); err != nil {
		t.Fatalf("the store is not in the context, the test proves nothing: %v", err)
	}
	got := strings.Fields(f.Docker.RunImage(t, reg.Host+"/kaniko/ctx:1"))
	sort.Strings(got)
	if want := "/app /app/.dockerignore /app/Dockerfile /app/out"; strings.Join(got, " ") != want {
		t.Errorf("the image's /app holds %v, want %s", got, want)
	}
}
