package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/hoist-build/hoist/internal/harness"
)

// agentList is a static program that speaks the ssh-agent protocol to
// $SSH_AUTH_SOCK: it asks for the identities (SSH2_AGENTC_REQUEST_IDENTITIES)
// and prints each as an authorized_keys line. The fixture images hold
// busybox, which has no ssh-add.
const agentList = `package main

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
)

func readString(b []byte) ([]byte, []byte) {
	n := binary.BigEndian.Uint32(b)
	return b[4 : 4+n], b[4+n:]
}

func main() {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		fmt.Println("no SSH_AUTH_SOCK")
		os.Exit(1)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(1)
	}
	c.Write([]byte{0, 0, 0, 1, 11})
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		fmt.Println("read:", err)
		os.Exit(1)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c, body); err != nil || body[0] != 12 {
		fmt.Println("bad answer", err)
		os.Exit(1)
	}
	n := binary.BigEndian.Uint32(body[1:])
	rest := body[5:]
	fmt.Printf("keys: %d\n", n)
	for i := uint32(0); i < n; i++ {
		var blob, comment []byte
		blob, rest = readString(rest)
		comment, rest = readString(rest)
		_ = comment
		typ, _ := readString(blob)
		fmt.Printf("%s %s\n", typ, base64.StdEncoding.EncodeToString(blob))
	}
}
`

// buildAgentList builds agentList, static, into dir.
func buildAgentList(t *testing.T, dir string) {
	t.Helper()
	src := t.TempDir()
	for n, c := range map[string]string{"go.mod": "module example.com/agentlist\n\ngo 1.22\n", "main.go": agentList} {
		if err := os.WriteFile(filepath.Join(src, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(harness.Need(t, "go"), "build", "-o", filepath.Join(dir, "agentlist"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build agentlist: %v\n%s", err, b)
	}
}

// sshKey is a fresh ed25519 key: the private key as OpenSSH PEM, and the
// public key as an authorized_keys line.
func sshKey(t *testing.T) (private, public string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block)), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

// PLUGIN_SSH_AGENT_KEY (plugins/docker: docker build --ssh default=KEY):
// a RUN --mount=type=ssh reaches an agent that holds the key, and the
// key is in nothing published: not the image (its every file), not the
// output, not the working directory; a RUN without the mount has no
// agent.
func TestSSHAgentKey(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	private, public := sshKey(t)
	ctxDir := buildContext(t, "FROM "+f.Base+"\nCOPY agentlist /agentlist\n"+
		"RUN --mount=type=ssh /agentlist > /keys.txt\n"+
		"RUN /agentlist > /nokeys.txt || true\n", nil)
	buildAgentList(t, ctxDir)
	ref := reg.Host + "/ssh/app:1"
	work := t.TempDir()
	env := buildEnv(t, ctxDir, "PLUGIN_DESTINATIONS", ref, "PLUGIN_SSH_AGENT_KEY", private)
	r := hoistIn(t, work, env)
	if r.code != 0 {
		t.Fatalf("hoist failed:\n%s", r)
	}
	assertPushed(t, r, reg, ref)
	keys := fileOf(t, reg, ref, "keys.txt")
	if want := "keys: 1\n" + public + "\n"; keys != want {
		t.Errorf("RUN --mount=type=ssh saw %q, want %q", keys, want)
	}
	if got := fileOf(t, reg, ref, "nokeys.txt"); got != "no SSH_AUTH_SOCK\n" {
		t.Errorf("a RUN without the mount saw %q", got)
	}
	// The key is in no byte of the image, the output or the workspace.
	line := strings.Split(private, "\n")[1] // the first line of the key's base64
	if image := reg.Crane(t, "export", ref, "-"); strings.Contains(image, line) || strings.Contains(image, "PRIVATE KEY") {
		t.Errorf("the image holds the private key")
	}
	assertNotContains(t, r, line, "PRIVATE KEY")
	filepath.WalkDir(work, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), line) {
				t.Errorf("%s holds the private key", p)
			}
		}
		return nil
	})
	// The key file hoist wrote for BuildKit's agent is gone.
	for _, pattern := range []string{"ssh-agent-key-*", "*/ssh-agent-key-*"} {
		if left, _ := filepath.Glob(filepath.Join(os.TempDir(), pattern)); len(left) > 0 {
			t.Errorf("key files left: %v", left)
		}
	}
}

// A value that is not a usable key, and the key with Kaniko, are refused
// before anything is built (exit 2), without quoting the value.
func TestSSHAgentKeyRefused(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	ctxDir := buildContext(t, "FROM "+f.Base+"\n", nil)
	r := hoist(t, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_SSH_AGENT_KEY", "not-a-key-Zq81"))
	if r.code != ExitSettings {
		t.Errorf("a bad key: exit %d, want %d\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, "PLUGIN_SSH_AGENT_KEY: not an SSH private key")
	assertNotContains(t, r, "not-a-key-Zq81")
	private, _ := sshKey(t)
	r = hoist(t, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_SSH_AGENT_KEY", private, "PLUGIN_BUILD_TOOL", "kaniko",
		"PLUGIN_KANIKO_EXECUTOR", "/nonexistent/executor"))
	if r.code != ExitSettings {
		t.Errorf("the key with Kaniko: exit %d, want %d\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, "PLUGIN_SSH_AGENT_KEY (Kaniko has no RUN --mount=type=ssh)")
	assertNotContains(t, r, "/nonexistent/executor")
}

// PLUGIN_NAMED_CONTEXT (buildx --build-context, as thegeeklab's plugin
// passes it): a directory of the workspace for COPY --from, an image for
// FROM; both in one comma-separated value.
func TestNamedContexts(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	// An image that only the named context names.
	other := reg.Host + "/named/base:1"
	mustPush(t, buildEnv(t, buildContext(t, "FROM "+f.Base+"\nRUN echo from-named-image > /base.txt\n", nil), "PLUGIN_DESTINATIONS", other))
	work := t.TempDir()
	ctxDir := filepath.Join(work, "app")
	os.MkdirAll(filepath.Join(work, "extra", "sub"), 0o755)
	os.WriteFile(filepath.Join(work, "extra", "sub", "f.txt"), []byte("from-named-dir\n"), 0o644)
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM base\nCOPY --from=extra /sub/f.txt /f.txt\n"), 0o644)
	ref := reg.Host + "/named/app:1"
	env := buildEnv(t, ctxDir, "PLUGIN_DESTINATIONS", ref, "PLUGIN_NAMED_CONTEXT", "extra=./extra, base=docker-image://"+other)
	r := hoistIn(t, work, env)
	if r.code != 0 {
		t.Fatalf("hoist failed:\n%s", r)
	}
	assertPushed(t, r, reg, ref)
	if got := f.Docker.RunImage(t, ref, "cat", "/f.txt", "/base.txt"); got != "from-named-dir\nfrom-named-image" {
		t.Errorf("the image prints %q", got)
	}
}

// Named contexts hoist cannot honour are refused (exit 2), naming the
// item: a directory outside the working directory (through a link the
// checkout holds), a scheme other than docker-image, a malformed item,
// Kaniko.
func TestNamedContextsRefused(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	work := t.TempDir()
	ctxDir := filepath.Join(work, "app")
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+f.Base+"\n"), 0o644)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(work, "link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ value, want string }{
		{"x=./link", "named context x: " + filepath.Join(work, "link") + " is outside the working directory"},
		{"x=oci-layout://./layout", "named context x: oci-layout:// is not supported"},
		{"x=./missing", "is not a directory"},
		{"novalue", `malformed named context "novalue"`},
	} {
		r := hoistIn(t, work, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_NAMED_CONTEXT", c.value))
		if r.code != ExitSettings {
			t.Errorf("%s: exit %d, want %d\n%s", c.value, r.code, ExitSettings, r)
		}
		assertContains(t, r, "PLUGIN_NAMED_CONTEXT", c.want)
	}
	r := hoistIn(t, work, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_NAMED_CONTEXT", "x=docker-image://"+f.Base,
		"PLUGIN_BUILD_TOOL", "kaniko", "PLUGIN_KANIKO_EXECUTOR", "/nonexistent/executor"))
	if r.code != ExitSettings {
		t.Errorf("Kaniko: exit %d, want %d\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, "PLUGIN_NAMED_CONTEXT (Kaniko has no named build contexts)")
}

// PLUGIN_OUTPUT (buildx --output, as thegeeklab's and Woodpecker's buildx
// plugins pass it): each type hoist honours, its result read back by
// another tool (docker load, skopeo, crane), and nothing pushed where the
// output does not push, though PLUGIN_REPO names a repository.
func TestBuildOutput(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo via-output > /o.txt\n", nil)
	work := t.TempDir()
	build := func(repo, output string, kv ...string) result {
		t.Helper()
		return mustPush(t, buildEnv(t, ctxDir, append([]string{"PLUGIN_REPO", reg.Host + "/" + repo, "PLUGIN_TAGS", "1", "PLUGIN_OUTPUT", output}, kv...)...))
	}
	notPushed := func(repo string) {
		t.Helper()
		if tags := tagsOf(t, reg, repo); len(tags) != 0 {
			t.Errorf("%s: pushed %v", repo, tags)
		}
	}

	// type=docker,dest=: a docker-archive that docker load reads.
	dockerTar := filepath.Join(work, "d", "image.tar")
	build("out/docker", "type=docker,dest="+dockerTar)
	notPushed("out/docker")
	if out := f.Docker.Run(t, "load", "-i", dockerTar); !strings.Contains(out, reg.Host+"/out/docker:1") {
		t.Errorf("docker load: %s", out)
	}
	if got := strings.TrimSpace(f.Docker.Run(t, "run", "--rm", "--network", "host", reg.Host+"/out/docker:1", "cat", "/o.txt")); got != "via-output" {
		t.Errorf("the loaded image prints %q", got)
	}

	// type=oci,dest=: an OCI archive that skopeo copies to a registry.
	ociTar := filepath.Join(work, "image.oci.tar")
	build("out/oci", "type=oci,dest="+ociTar)
	notPushed("out/oci")
	harness.Run(t, nil, "skopeo", "copy", "-q", "--dest-tls-verify=false", "oci-archive:"+ociTar, "docker://"+reg.Host+"/copied/oci:1")
	if got := f.Docker.RunImage(t, reg.Host+"/copied/oci:1", "cat", "/o.txt"); got != "via-output" {
		t.Errorf("the OCI archive's image prints %q", got)
	}

	// type=docker without dest: loaded into the daemon, not pushed.
	build("out/load", "type=docker", "DOCKER_HOST", f.Docker.Host)
	notPushed("out/load")
	if got := strings.TrimSpace(f.Docker.Run(t, "run", "--rm", "--network", "host", reg.Host+"/out/load:1", "cat", "/o.txt")); got != "via-output" {
		t.Errorf("the loaded image prints %q", got)
	}

	// type=registry and type=image,push=true push; type=image alone does not.
	for _, c := range []struct{ repo, output string }{{"out/registry", "type=registry"}, {"out/image-push", "type=image,push=true"}} {
		r := build(c.repo, c.output)
		assertPushed(t, r, reg, reg.Host+"/"+c.repo+":1")
		if got := fileOf(t, reg, reg.Host+"/"+c.repo+":1", "o.txt"); got != "via-output\n" {
			t.Errorf("%s: the pushed image holds %q", c.output, got)
		}
	}
	build("out/image", "type=image")
	notPushed("out/image")

	// type=tar and type=local (a bare path is type=local): the image's
	// filesystem, read back with tar and from the directory; nothing
	// pushed, nothing of hoist's left beside them.
	fsTar := filepath.Join(work, "fs", "root.tar")
	build("out/tar", "type=tar,dest="+fsTar)
	notPushed("out/tar")
	if got := harness.Run(t, nil, "tar", "-xOf", fsTar, "o.txt"); got != "via-output\n" {
		t.Errorf("the filesystem tarball's o.txt: %q", got)
	}
	for i, output := range []string{"type=local,dest=" + filepath.Join(work, "rootfs", "a"), filepath.Join(work, "rootfs", "b")} {
		build("out/local"+itoa(i), output)
		notPushed("out/local" + itoa(i))
		dir := filepath.Join(work, "rootfs", string(rune('a'+i)))
		if b, err := os.ReadFile(filepath.Join(dir, "o.txt")); err != nil || string(b) != "via-output\n" {
			t.Errorf("%s: o.txt %q %v", output, b, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "bin", "busybox")); err != nil {
			t.Errorf("%s: the base image's files: %v", output, err)
		}
	}
	for _, d := range []string{filepath.Join(work, "fs"), filepath.Join(work, "rootfs")} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".hoist") {
				t.Errorf("left in %s: %s", d, e.Name())
			}
		}
	}
}

// PLUGIN_OUTPUT values hoist cannot honour are refused before anything is
// built (exit 2), with the reason.
func TestBuildOutputRefused(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir := buildContext(t, "FROM "+f.Base+"\n", nil)
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "mine.txt"), []byte("the user's"), 0o644)
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"PLUGIN_OUTPUT", "type=local"}, "type=local needs dest="},
		{[]string{"PLUGIN_OUTPUT", "type=local,dest=" + full}, "is a directory that holds files"},
		{[]string{"PLUGIN_OUTPUT", "type=tar,dest=fs.tar", "PLUGIN_BUILD_TOOL", "kaniko"}, "PLUGIN_OUTPUT=type=tar (Kaniko exports no filesystem)"},
		{[]string{"PLUGIN_OUTPUT", "type=tar,dest=fs.tar", "PLUGIN_BUILDER_DRIVER", "docker"}, "PLUGIN_BUILDER_DRIVER=docker builds into the daemon only"},
		{[]string{"PLUGIN_OUTPUT", "type=oci"}, "type=oci needs dest=FILE"},
		{[]string{"PLUGIN_OUTPUT", "type=docker,dest=a.tar,name=x/y"}, "type=docker: hoist does not honour name here"},
		{[]string{"PLUGIN_OUTPUT", "type=cacheonly"}, "type=cacheonly builds for the cache only"},
		{[]string{"PLUGIN_OUTPUT", "type=s3"}, `unknown output type "s3"`},
		{[]string{"PLUGIN_OUTPUT", "dest=a.tar"}, "no type="},
		{[]string{"PLUGIN_OUTPUT", "type=registry", "PLUGIN_DRY_RUN", "true"}, "the output pushes, and PLUGIN_DRY_RUN=true says push nothing"},
		{[]string{"PLUGIN_OUTPUT", "type=docker,dest=a.tar", "PLUGIN_TAR_PATH", "b.tar"}, "PLUGIN_TAR_PATH=\"b.tar\" names another"},
		{[]string{"PLUGIN_OUTPUT", "type=docker,dest=a.tar", "PLUGIN_BUILDX_OUTPUT_FORMAT", "oci"}, "says oci"},
		{[]string{"PLUGIN_OUTPUT", "type=registry", "PLUGIN_PUSH_ONLY", "true"}, "PLUGIN_PUSH_ONLY=true pushes a pre-built image"},
	} {
		r := hoist(t, buildEnv(t, ctxDir, append([]string{"PLUGIN_REPO", reg.Host + "/refused/app"}, c.env...)...))
		if r.code != ExitSettings {
			t.Errorf("%v: exit %d, want %d\n%s", c.env, r.code, ExitSettings, r)
		}
		assertContains(t, r, "PLUGIN_OUTPUT=", c.want)
	}
	if tags := tagsOf(t, reg, "refused/app"); len(tags) != 0 {
		t.Errorf("pushed: %v", tags)
	}
}

// PLUGIN_BUILDKIT_CONFIG (a buildkitd.toml, as the buildx plugins take
// it): a registry's mirror from it serves a real build's base image (the
// registry itself does not exist), given as content and as a file; every
// key besides the registries' mirrors, http, insecure and ca is refused,
// named.
func TestBuildkitConfig(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	mirror := harness.StartRegistry(t, harness.RegistryOptions{})
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": f.Base, "PLUGIN_DAEMON_OFF": "true",
		"PLUGIN_DESTINATIONS": mirror.Host + "/team/mirrored-base:1"})
	ctxDir := buildContext(t, "FROM registry.hoist-test.invalid/team/mirrored-base:1\nRUN echo via-config-mirror > /m.txt\n", nil)
	config := "[registry.\"registry.hoist-test.invalid\"]\n  mirrors = [\"" + mirror.Host + "\"]\n\n[registry.\"" + mirror.Host + "\"]\n  http = true\n"
	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "buildkitd.toml"), []byte(config), 0o644)
	engineDir := filepath.Join(t.TempDir(), "engine")
	for i, value := range []string{config, "buildkitd.toml"} {
		ref := reg.Host + "/config-mirror/app:" + itoa(i)
		r := hoistIn(t, work, map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_DESTINATIONS": ref, "PLUGIN_BUILDKIT_CONFIG": value,
			"PLUGIN_ENGINE_DIR": engineDir, "PLUGIN_BUILDKITD": harness.Buildkitd(t)})
		if r.code != 0 {
			t.Fatalf("hoist failed:\n%s", r)
		}
		assertPushed(t, r, reg, ref)
		if got := f.Docker.RunImage(t, ref, "cat", "/m.txt"); got != "via-config-mirror" {
			t.Errorf("image prints %q", got)
		}
	}

	for _, c := range []struct{ config, want string }{
		{"debug = true\n[worker.oci]\n  gc = false\n", "this one sets debug, worker"},
		{"[registry.\"r.example\"]\n  mirrors = [\"m.example\"]\n  keypair = [{key = \"k\", cert = \"c\"}]\n", `this one sets registry."r.example".keypair`},
		{"[registry.\"r.example\"]\n  http = \"yes\"\n", `registry."r.example".http: want true or false`},
		{"[registry.\"r.example\"]\n  ca = [\"/nonexistent/ca.pem\"]\n", "CA file"},
		{"not toml = = =", "not a buildkitd.toml"},
		{"missing.toml", "neither a buildkitd.toml's content nor a file that can be read"},
	} {
		r := hoistIn(t, work, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_BUILDKIT_CONFIG", c.config))
		if r.code != ExitSettings {
			t.Errorf("%q: exit %d, want %d\n%s", c.config, r.code, ExitSettings, r)
		}
		assertContains(t, r, "PLUGIN_BUILDKIT_CONFIG", c.want)
	}
	for _, kv := range [][]string{{"PLUGIN_BUILDER_REMOTE_CONN", "unix:///nonexistent/buildkitd.sock"}, {"PLUGIN_BUILDER_DRIVER", "docker", "PLUGIN_REPO", "127.0.0.1:1/x"}} {
		r := hoistIn(t, work, buildEnv(t, ctxDir, append([]string{"PLUGIN_NO_PUSH", "true", "PLUGIN_BUILDKIT_CONFIG", config}, kv...)...))
		if r.code != ExitSettings {
			t.Errorf("%v: exit %d, want %d\n%s", kv, r.code, ExitSettings, r)
		}
		assertContains(t, r, "PLUGIN_BUILDKIT_CONFIG")
	}
}

// configMirroredPipeline builds FROM a registry that only a mirror named
// by the step's buildkitd.toml (PLUGIN_BUILDKIT_CONFIG) serves.
const configMirroredPipeline = `pipeline:
  identifier: configmirrored
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
          cloneCodebase: true
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: build
                  type: BuildAndPushDockerRegistry
                  spec:
                    connectorRef: hub
                    repo: registry.example.com/team/app
                    tags: ["1"]
                    context: app
                    dockerfile: app/Dockerfile
                    envVariables:
                      PLUGIN_BUILDKIT_CONFIG: buildkitd.toml
`

// hoist pipeline run starts its one engine with the mirrors of its steps'
// buildkitd.toml, and the step builds through them.
func TestPipelineBuildkitConfig(t *testing.T) {
	f := harness.Inputs(t)
	mirror := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": f.Base, "PLUGIN_DAEMON_OFF": "true",
		"PLUGIN_DESTINATIONS": mirror.Host + "/team/pipeline-config-base:1"})
	dir := checkout(t, map[string]string{
		"app/Dockerfile": "FROM registry.hoist-test.invalid/team/pipeline-config-base:1\nRUN echo via-pipeline-config > /m.txt\n",
		"buildkitd.toml": "[registry.\"registry.hoist-test.invalid\"]\n  mirrors = [\"" + mirror.Host + "\"]\n",
		"pipeline.yaml":  configMirroredPipeline,
	})
	env := pipelineEnv(t, "PLUGIN_ENGINE_DIR", filepath.Join(t.TempDir(), "engine"), "PLUGIN_BUILDKITD", harness.Buildkitd(t))
	r, rep := pipelineRun(t, dir, env, "pipeline.yaml", "--local", "--keep", "--workspace", filepath.Join(t.TempDir(), "ws"))
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	reg := localRegistry(t, rep, "registry.example.com")
	if got := f.Docker.RunImage(t, reg.Host+"/team/app:1", "cat", "/m.txt"); got != "via-pipeline-config" {
		t.Errorf("the image prints %q", got)
	}
}

// Kaniko has a buildkitd.toml's registry settings as flags of its own:
// the Kaniko plugin image, as a runner runs it, pulls a base image
// through the mirror the file names for its registry.
func TestBuildkitConfigWithKaniko(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	image := pluginImage(t, "kaniko")
	mirror := harness.StartRegistry(t, harness.RegistryOptions{})
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": f.Base, "PLUGIN_DAEMON_OFF": "true",
		"PLUGIN_DESTINATIONS": mirror.Host + "/team/kaniko-mirrored-base:1"})
	ws := buildContext(t, "FROM registry.hoist-test.invalid/team/kaniko-mirrored-base:1\nRUN echo via-kaniko-mirror > /m.txt\n", map[string]string{
		"buildkitd.toml": "[registry.\"registry.hoist-test.invalid\"]\n  mirrors = [\"" + mirror.Host + "\"]\n[registry.\"" + mirror.Host + "\"]\n  http = true\n",
	})
	out, err := plugin(t, f.Docker, image, ws, map[string]string{"PLUGIN_REPO": reg.Host + "/kaniko/mirrored", "PLUGIN_TAGS": "1",
		"PLUGIN_BUILDKIT_CONFIG": "buildkitd.toml", "PLUGIN_PROGRESS": "plain"})
	if err != nil {
		t.Fatalf("build and push: %v\n%s", err, out)
	}
	if !strings.Contains(out, "build tool: kaniko") {
		t.Errorf("not built by Kaniko:\n%s", out)
	}
	if got := f.Docker.RunImage(t, reg.Host+"/kaniko/mirrored:1", "cat", "/m.txt"); got != "via-kaniko-mirror" {
		t.Errorf("the image prints %q", got)
	}
}
