package cli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/console"

	"github.com/hoist-build/hoist/internal/harness"
)

// buildContext writes a build context: a Dockerfile and the files given.
func buildContext(t *testing.T, dockerfile string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	for n, c := range files {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// buildEnv is the environment of a build step on the shared BuildKit, used
// as a running embedded engine (the image is taken from its content store).
func buildEnv(t *testing.T, ctxDir string, kv ...string) map[string]string {
	dir, _ := harness.SharedEngine(t)
	env := map[string]string{
		"PLUGIN_CONTEXT":    ctxDir,
		"PLUGIN_ENGINE_DIR": dir,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] != "" {
			env[kv[i]] = kv[i+1]
		}
	}
	return env
}

// The default mode: one build, pushed to two registries, pulled back and
// run; build args, labels and COPY reach the image.
func TestBuildAndPush(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	b := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	ctxDir := buildContext(t, "FROM "+f.Base+"\nARG GREETING\nCOPY note.txt /note.txt\nRUN echo \"$GREETING from RUN\" > /built.txt\nCMD [\"cat\", \"/built.txt\"]\n",
		map[string]string{"note.txt": "copied"})
	out := t.TempDir()
	r := mustPush(t, buildEnv(t, ctxDir,
		"PLUGIN_REPO", a.Host+"/built/app",
		"PLUGIN_TAGS", "1.0,latest",
		"PLUGIN_DESTINATIONS", b.Host+"/built/app:1.0",
		"PLUGIN_REGISTRY", b.Host, "PLUGIN_USERNAME", b.User, "PLUGIN_PASSWORD", b.Password,
		"PLUGIN_BUILD_ARGS", "GREETING=hello",
		"PLUGIN_CUSTOM_LABELS", "team=platform",
		"DRONE_COMMIT_SHA", "0123abcd",
		"PLUGIN_METADATA_FILE", filepath.Join(out, "metadata.json"),
		"DRONE_OUTPUT", filepath.Join(out, "drone.env"),
	))
	digest := strings.TrimSpace(r.stdout)
	assertContains(t, r, "RUN echo", "built sha256:")
	assertSummary(t, r, a.Host+"/built/app:1.0", digest)
	assertSummary(t, r, a.Host+"/built/app:latest", digest)
	assertSummary(t, r, b.Host+"/built/app:1.0", digest)
	for _, ref := range []struct {
		reg *harness.Registry
		ref string
	}{{a, a.Host + "/built/app:1.0"}, {a, a.Host + "/built/app:latest"}, {b, b.Host + "/built/app:1.0"}} {
		if got := digestOf(t, ref.reg, ref.ref); got != digest {
			t.Errorf("%s holds %s, hoist printed %s", ref.ref, got, digest)
		}
	}
	if got := f.Docker.RunImage(t, a.Host+"/built/app:1.0"); got != "hello from RUN" {
		t.Errorf("image prints %q", got)
	}
	if got := f.Docker.RunImage(t, a.Host+"/built/app:1.0", "cat", "/note.txt"); got != "copied" {
		t.Errorf("COPY gave %q", got)
	}
	labels := f.Docker.Run(t, "inspect", "--format", "{{json .Config.Labels}}", a.Host+"/built/app:1.0")
	if !strings.Contains(labels, `"team":"platform"`) || !strings.Contains(labels, `"org.opencontainers.image.revision":"0123abcd"`) {
		t.Errorf("labels: %s", labels)
	}
	var md map[string]string
	b2, _ := os.ReadFile(filepath.Join(out, "metadata.json"))
	if err := json.Unmarshal(b2, &md); err != nil || md["containerimage.digest"] != digest {
		t.Errorf("metadata file: %s (%v)", b2, err)
	}
	env, _ := os.ReadFile(filepath.Join(out, "drone.env"))
	if !strings.Contains(string(env), "digest="+digest) {
		t.Errorf("DRONE_OUTPUT: %s", env)
	}
}

// Build-only writes a tarball (in one pass, from the build), loads the
// daemon and records the image in the workspace image store; push-only
// then pushes the tarball to two registries, and, in another step with
// neither tarball nor daemon, the image from the store.
func TestBuildOnlyThenPushOnly(t *testing.T) {
	t.Parallel()
	_, addr := harness.SharedEngine(t)
	for _, c := range []struct{ name, key, value string }{
		{"embedded engine with direct export", "", ""},
		{"remote builder with export through the session", "PLUGIN_BUILDER_REMOTE_CONN", addr},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			buildOnlyThenPushOnly(t, c.key, c.value)
		})
	}
}

func buildOnlyThenPushOnly(t *testing.T, key, value string) {
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	b := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo built-only > /built.txt\n", nil)
	work := t.TempDir()
	tarPath := filepath.Join(work, "out", "nested", "image.tar")
	repo := a.Host + "/bo/app"
	r := mustPush(t, buildEnv(t, ctxDir, key, value,
		"PLUGIN_NO_PUSH", "true",
		"PLUGIN_TAR_PATH", tarPath,
		"PLUGIN_BUILDX_LOAD", "true",
		// The mission's build-once step on Cloud infrastructure, where
		// Harness sets PLUGIN_DAEMON_OFF: the daemon at DOCKER_HOST loads.
		"PLUGIN_DAEMON_OFF", "true",
		"DOCKER_HOST", f.Docker.Host,
		"PLUGIN_IMAGE_STORE", filepath.Join(work, ".hoist/images"),
		"PLUGIN_REPO", repo, "PLUGIN_TAGS", "5",
		"DRONE_OUTPUT", filepath.Join(work, "drone.env"),
	))
	built := strings.TrimSpace(r.stdout)
	if tags := tagsOf(t, a, "bo/app"); len(tags) != 0 {
		t.Fatalf("build-only pushed: %v\n%s", tags, r)
	}
	// Loaded: the daemon runs it without a pull.
	if got := strings.TrimSpace(f.Docker.Run(t, "run", "--rm", "--network", "host", repo+":5", "cat", "/built.txt")); got != "built-only" {
		t.Errorf("loaded image prints %q", got)
	}
	env, _ := os.ReadFile(filepath.Join(work, "drone.env"))
	if !strings.Contains(string(env), "IMAGE_TAR_PATH="+tarPath) || !strings.Contains(string(env), "digest="+built) {
		t.Errorf("DRONE_OUTPUT: %s", env)
	}
	// The tarball is what docker load reads: a docker-archive with the name.
	listing := harness.Run(t, nil, "tar", "tf", tarPath)
	if !strings.Contains(listing, "manifest.json") {
		t.Errorf("tarball lacks manifest.json:\n%s", listing)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(tarPath), ".hoist-tmp-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	r = mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": tarPath,
		"PLUGIN_REPO": repo, "PLUGIN_TAGS": "5", "PLUGIN_DESTINATIONS": b.Host + "/bo/app:5",
		"PLUGIN_IMAGE_STORE": filepath.Join(work, ".hoist/images")})
	// The hand-off holds gzip layers (the default), pushed as they are:
	// the digest the build step reported is the one every registry holds.
	pushed := strings.TrimSpace(r.stdout)
	assertNotContains(t, r, "compressed layer")
	// Its layers are the build's, which the workspace store vouches for:
	// none is decompressed again. From another workspace, each is.
	assertContains(t, r, "layers checked against the image config's diff_ids: 0 decompressed and hashed, 0 compressed by hoist,", "vouched for by the workspace image store's build")
	r = mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": tarPath, "PLUGIN_DESTINATIONS": b.Host + "/bo/elsewhere:5"})
	assertContains(t, r, "layers checked against the image config's diff_ids: ", " decompressed and hashed, 0 compressed by hoist, 0 vouched")
	assertNotContains(t, r, "diff_ids: 0 decompressed")
	if pushed != built || digestOf(t, a, repo+":5") != built || digestOf(t, b, b.Host+"/bo/app:5") != built {
		t.Errorf("built %s, pushed %s", built, pushed)
	}
	if got := f.Docker.RunImage(t, b.Host+"/bo/app:5", "cat", "/built.txt"); got != "built-only" {
		t.Errorf("pushed image prints %q", got)
	}

	// Another step of the workspace: no tarball, no daemon, same image.
	c := harness.StartRegistry(t, harness.RegistryOptions{})
	sock := harness.CountingSocket(t)
	r = mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REPO": repo, "PLUGIN_TAGS": "5",
		"PLUGIN_DESTINATIONS": c.Host + "/from-store/app:5", "PLUGIN_DAEMON_OFF": "true", "DOCKER_HOST": sock.Host,
		"PLUGIN_IMAGE_STORE": filepath.Join(work, ".hoist/images")})
	assertContains(t, r, "source: workspace image store")
	if n := sock.Connections(); n != 0 {
		t.Errorf("the store hand-off opened DOCKER_HOST %d times", n)
	}
	if got := digestOf(t, c, c.Host+"/from-store/app:5"); got != pushed {
		t.Errorf("from the store: %s, from the tarball %s", got, pushed)
	}
}

// An OCI-format tarball is written when asked; built with an explicit
// compression, its bytes are pushed as they are: the same digest.
func TestBuildOnlyOCITarball(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo oci > /built.txt\n", nil)
	tarPath := filepath.Join(t.TempDir(), "image-oci.tar")
	r := mustPush(t, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_TAR_PATH", tarPath, "PLUGIN_BUILDX_OUTPUT_FORMAT", "oci", "PLUGIN_COMPRESSION", "gzip",
		"PLUGIN_REPO", reg.Host+"/oci/app", "PLUGIN_IMAGE_STORE", filepath.Join(t.TempDir(), "store")))
	built := strings.TrimSpace(r.stdout)
	if listing := harness.Run(t, nil, "tar", "tf", tarPath); !strings.Contains(listing, "oci-layout") {
		t.Errorf("not an OCI archive:\n%s", listing)
	}
	// The archive's own manifest digest, read by skopeo, is the one the
	// build printed and the one the registry holds (read by crane).
	inArchive := strings.TrimSpace(harness.Run(t, nil, "skopeo", "inspect", "--format", "{{.Digest}}", "oci-archive:"+tarPath))
	if inArchive != built {
		t.Errorf("the OCI archive holds %s, the build printed %s", inArchive, built)
	}
	r = mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": tarPath, "PLUGIN_DESTINATIONS": reg.Host + "/oci/app:1"})
	assertContains(t, r, "source: OCI archive")
	assertNotContains(t, r, "compressed layer")
	if got := digestOf(t, reg, reg.Host+"/oci/app:1"); got != inArchive {
		t.Errorf("the registry holds %s, the archive %s", got, inArchive)
	}
}

// Two platforms make an image index; the arm64 RUN ran under qemu.
func TestMultiPlatformBuild(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir := buildContext(t, "FROM "+f.MultiRemote+"\nRUN uname -m > /arch.txt\n", nil)
	ref := reg.Host + "/multi/built:1"
	mustPush(t, buildEnv(t, ctxDir, "PLUGIN_DESTINATIONS", ref, "PLUGIN_PLATFORM", "linux/amd64,linux/arm64"))
	raw := harness.Run(t, nil, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
	if !strings.Contains(raw, `"arm64"`) || !strings.Contains(raw, `"amd64"`) {
		t.Fatalf("not a two-platform index: %s", raw)
	}
	f.Docker.Run(t, "pull", "-q", "--platform", "linux/arm64", ref)
	if got := strings.TrimSpace(f.Docker.Run(t, "run", "--rm", "--network", "host", "--platform", "linux/arm64", ref, "cat", "/arch.txt")); got != "aarch64" {
		t.Errorf("arm64 RUN saw %q", got)
	}
	if got := f.Docker.RunImage(t, ref, "cat", "/arch.txt"); got != "x86_64" {
		t.Errorf("amd64 RUN saw %q", got)
	}
}

// Build secrets from the environment and from files reach RUN
// --mount=type=secret, and are not in the image.
func TestBuildSecrets(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	secretFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(secretFile, []byte("from-file-s3cret"), 0o600)
	ctxDir := buildContext(t, "FROM "+f.Base+"\n"+
		"RUN --mount=type=secret,id=envtok --mount=type=secret,id=filetok test \"$(cat /run/secrets/envtok)\" = from-env-s3cret && test \"$(cat /run/secrets/filetok)\" = from-file-s3cret && echo secrets-ok > /ok.txt\n"+
		// buildx's own --secret specs (PLUGIN_SECRET), as the peers pass them.
		"RUN --mount=type=secret,id=rawfile --mount=type=secret,id=rawenv --mount=type=secret,id=RAW_BARE test \"$(cat /run/secrets/rawfile)\" = from-file-s3cret && test \"$(cat /run/secrets/rawenv)\" = raw-env-s3cret && test \"$(cat /run/secrets/RAW_BARE)\" = bare-s3cret && echo raw-ok >> /ok.txt\n", nil)
	ref := reg.Host + "/secret/app:1"
	mustPush(t, buildEnv(t, ctxDir, "PLUGIN_DESTINATIONS", ref,
		"PLUGIN_SECRETS_FROM_ENV", "envtok=MY_TOKEN", "MY_TOKEN", "from-env-s3cret",
		"PLUGIN_SECRETS_FROM_FILE", "filetok="+secretFile,
		"PLUGIN_SECRET", "id=rawfile,src="+secretFile+";id=rawenv,env=RAW_TOKEN;id=RAW_BARE", "RAW_TOKEN", "raw-env-s3cret", "RAW_BARE", "bare-s3cret"))
	if got := f.Docker.RunImage(t, ref, "cat", "/ok.txt"); got != "secrets-ok\nraw-ok" {
		t.Errorf("image prints %q", got)
	}
	if out := strings.TrimSpace(f.Docker.Run(t, "run", "--rm", "--network", "host", ref, "sh", "-c", "cat /run/secrets/envtok /run/secrets/filetok 2>/dev/null || echo absent")); out != "absent" {
		t.Errorf("secrets left in the image: %q", out)
	}
}

// BuildKit's terminal display, drawn on a real terminal (a pty), shows a
// RUN step's output live; a build secret the step prints is masked there
// too. The masked form is seen, so the output searched did hold the line.
func TestBuildKitTerminalDisplayIsMasked(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	pty, slavePath, err := console.NewPty()
	if err != nil {
		harness.Missing(t, "no pseudo-terminal: %v", err)
	}
	defer pty.Close()
	pty.Resize(console.WinSize{Height: 40, Width: 160})
	slave, err := os.OpenFile(slavePath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	var screen syncBuffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(&screen, pty)
	}()
	const secret = "tty-s3cret-value-9c1f"
	// The RUN step prints the secret, then works for a while, so the
	// display draws its output.
	ctxDir := buildContext(t, "FROM "+f.Base+"\n"+
		"RUN --mount=type=secret,id=tok echo \"token is $(cat /run/secrets/tok)\" && i=0 && while [ $i -lt 300000 ]; do i=$((i+1)); done\n", nil)
	env := buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_REPO", "tty/app", "PLUGIN_PROGRESS", "tty",
		"PLUGIN_SECRETS_FROM_ENV", "tok=TTY_TOKEN", "TTY_TOKEN", secret, "DOCKER_HOST", "unix:///nonexistent/docker.sock")
	var stdout syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := Main(ctx, nil, Env{
		Lookup:  func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		WorkDir: t.TempDir(),
		Stdout:  &stdout,
		Stderr:  slave,
	})
	slave.Close()
	pty.Close()
	<-read
	out := screen.String()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "token is ****") {
		t.Errorf("the display never showed the step's output:\n%q", out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("the secret is on the terminal:\n%q", out)
	}
}
