package build_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/harness"
)

// kanikoInContainer returns an executable that runs the real, pinned
// Kaniko executor (harness.KanikoExecutor) the only way it may run: in a
// container (an image FROM scratch holding it at /kaniko/executor, made
// here), on the host's network, with root mounted at the same path, so
// that every path Kaniko.Build passes means the same inside. The
// executor's DOCKER_CONFIG is passed on; nothing else of the wrapper's
// environment. Beside it, its .version file.
func kanikoInContainer(t *testing.T, d *harness.Docker, root string) string {
	t.Helper()
	exe := harness.KanikoExecutor(t)
	dockerCLI, err := exec.LookPath("docker")
	if err != nil {
		harness.Missing(t, "docker CLI: %v", err)
	}
	ctx := filepath.Join(t.TempDir(), "image")
	os.MkdirAll(ctx, 0o755)
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, "executor"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY executor /kaniko/executor\n"+
		"ENV PATH=/kaniko HOME=/root\nENTRYPOINT [\"/kaniko/executor\"]\n"), 0o644)
	image := "hoist-build-test-kaniko:" + randomHex(4)
	d.Build(t, ctx, image)
	t.Cleanup(func() { harness.RunErr(d.Env(), "docker", "rmi", "-f", image) })
	wrapper := filepath.Join(t.TempDir(), "executor")
	script := "#!/bin/sh\nexec /usr/bin/env -i HOME=" + t.TempDir() + " DOCKER_HOST=" + d.Host + " " + dockerCLI +
		" run --rm --network host -v " + root + ":" + root + " -e DOCKER_CONFIG=\"$DOCKER_CONFIG\" " + image + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrapper+".version", []byte("v-test-"+randomHex(2)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return wrapper
}

// The real Kaniko executor builds, with a base image from a registry that
// wants a login (the credentials in the executor's docker config, made
// by DockerConfig), and every output is made from its tarball: an OCI
// layout crane pushes as the image of the digest the result reports, a
// docker tarball and a daemon stream of that image, which runs with the
// build arguments, labels and context given (hoist's files left out);
// the builder's version comes from the file beside the executor. A
// failing RUN step is ErrBuild with the executor's exit code and last
// lines.
func TestKanikoBuildsWithTheRealExecutor(t *testing.T) {
	t.Parallel()
	docker := harness.SharedDocker(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	base, _ := pushBase(t, reg, "private/base", "kaniko base")
	root, err := os.MkdirTemp("", "hoist-kaniko-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	exe := kanikoInContainer(t, docker, root)
	cfg, err := build.DockerConfig(map[string]authn.AuthConfig{reg.Host: {Username: reg.User, Password: reg.Password}})
	if err != nil {
		t.Fatal(err)
	}
	newKaniko := func() *build.Kaniko {
		tmp, _ := os.MkdirTemp(root, "tmp-")
		return &build.Kaniko{Executor: exe, TempDir: tmp, DockerConfig: cfg, Insecure: true}
	}

	t.Run("outputs", func(t *testing.T) {
		t.Parallel()
		who := "who-" + randomHex(4)
		ctxDir, _ := os.MkdirTemp(root, "ctx-")
		for n, c := range map[string]string{
			"Dockerfile":        "FROM " + base + "\nARG WHO\nRUN echo \"built by kaniko for $WHO\" > /who.txt\nCOPY . /ctx/\nCMD [\"cat\", \"/who.txt\"]\n",
			"data.txt":          "data",
			"excluded/file.txt": "hoist's own",
		} {
			os.MkdirAll(filepath.Dir(filepath.Join(ctxDir, n)), 0o755)
			os.WriteFile(filepath.Join(ctxDir, n), []byte(c), 0o644)
		}
		ws, _ := os.MkdirTemp(root, "ws-")
		out := filepath.Join(ws, "layout")
		name := "hoist-build-test-" + randomHex(4) + "/kaniko:1"
		t.Cleanup(func() { harness.RunErr(docker.Env(), "docker", "rmi", "-f", name) })
		tarPath, loadPath := filepath.Join(ws, "image.tar"), filepath.Join(ws, "load.tar")
		k := newKaniko()
		res, err := k.Build(context.Background(), build.Request{ContextDir: ctxDir, Names: []string{name},
			BuildArgs: []build.KV{{Key: "WHO", Value: who}}, Labels: []build.KV{{Key: "team", Value: "kaniko"}},
			Exclude:   build.Excludes(ctxDir, filepath.Join(ctxDir, "excluded")),
			Out:       build.Outputs{LayoutDir: out, Tar: createFile(t, tarPath), TarFormat: "docker", Load: createFile(t, loadPath)},
			Workspace: files.Workspace(ws)})
		if err != nil {
			t.Fatalf("kaniko build: %v", err)
		}
		want, _ := os.ReadFile(exe + ".version")
		if res.BuilderVersion != strings.TrimSpace(string(want)) {
			t.Errorf("builder version %q, want %q (the file beside the executor)", res.BuilderVersion, want)
		}
		plain := harness.StartRegistry(t, harness.RegistryOptions{})
		pushed := plain.Host + "/kaniko/app:1"
		plain.Crane(t, "push", out, pushed)
		if got := plain.Digest(t, pushed); got != res.Digest {
			t.Errorf("crane pushed the layout as %s, the result says %s", got, res.Digest)
		}
		config := "sha256:" + sha256Hex(t, plain.Crane(t, "config", pushed))
		docker.Run(t, "load", "-q", "-i", tarPath)
		if id := strings.TrimSpace(docker.Run(t, "image", "inspect", "--format", "{{.Id}}", name)); id != config {
			t.Errorf("the docker tarball loads as %s, the layout's config is %s", id, config)
		}
		if got := strings.TrimSpace(docker.Run(t, "run", "--rm", "--network", "host", name)); got != "built by kaniko for "+who {
			t.Errorf("the image prints %q", got)
		}
		if got := strings.TrimSpace(docker.Run(t, "image", "inspect", "--format", `{{index .Config.Labels "team"}}`, name)); got != "kaniko" {
			t.Errorf("label team = %q", got)
		}
		ls := strings.Fields(docker.Run(t, "run", "--rm", "--network", "host", name, "ls", "-a", "/ctx"))
		if !slices.Contains(ls, "data.txt") || slices.Contains(ls, "excluded") {
			t.Errorf("the context in the image holds %q: want data.txt, and hoist's own files left out", ls)
		}
		if got := tarballConfig(t, loadPath, name); got != config {
			t.Errorf("the daemon stream holds config %s, want %s", got, config)
		}
		if entries, _ := os.ReadDir(k.TempDir); len(entries) != 0 {
			t.Errorf("the build left %v in its temporary directory", entries)
		}
	})

	t.Run("oci tarball", func(t *testing.T) {
		t.Parallel()
		ctxDir, _ := os.MkdirTemp(root, "ctx-")
		os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+base+"\nRUN echo "+randomHex(4)+" > /x\n"), 0o644)
		ws, _ := os.MkdirTemp(root, "ws-")
		tarPath := filepath.Join(ws, "image.oci.tar")
		res, err := newKaniko().Build(context.Background(), build.Request{ContextDir: ctxDir,
			Out: build.Outputs{LayoutDir: filepath.Join(ws, "layout"), Tar: createFile(t, tarPath), TarFormat: "oci"}})
		if err != nil {
			t.Fatalf("kaniko build: %v", err)
		}
		if got := ociArchiveDigest(t, tarPath); got != res.Digest {
			t.Errorf("skopeo reads the OCI tarball as %s, the result says %s", got, res.Digest)
		}
	})

	t.Run("failure", func(t *testing.T) {
		t.Parallel()
		marker := "kaniko-fails-" + randomHex(4)
		ctxDir, _ := os.MkdirTemp(root, "ctx-")
		os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+base+"\nRUN echo "+marker+" && exit 3\n"), 0o644)
		_, err := newKaniko().Build(context.Background(), build.Request{ContextDir: ctxDir, Out: build.Outputs{LayoutDir: filepath.Join(root, "unused-"+randomHex(4))}})
		if !errors.Is(err, build.ErrBuild) {
			t.Fatalf("a failing RUN: %v, want ErrBuild", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "exited with code") || !strings.Contains(msg, marker) {
			t.Errorf("the error does not give the exit code and the last lines: %s", msg)
		}
	})

	t.Run("no login", func(t *testing.T) {
		t.Parallel()
		ctxDir, _ := os.MkdirTemp(root, "ctx-")
		os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+base+"\nRUN true\n"), 0o644)
		k := newKaniko()
		k.DockerConfig = nil
		// The executor's docker config is its own (empty), not one the
		// environment names, even when that one holds the login.
		elsewhere, _ := os.MkdirTemp(root, "docker-config-")
		if err := os.WriteFile(filepath.Join(elsewhere, "config.json"), cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		k.Env = []string{"DOCKER_CONFIG=" + elsewhere, "HOME=" + elsewhere}
		_, err := k.Build(context.Background(), build.Request{ContextDir: ctxDir})
		if !errors.Is(err, build.ErrBuild) || !strings.Contains(err.Error(), "401") && !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
			t.Errorf("a private base without credentials: %v, want ErrBuild saying the registry refused", err)
		}
	})
}

// What Kaniko cannot do is ErrInput before the executor runs, and a
// missing executor is ErrNoExecutor saying what to do.
func TestKanikoInputErrors(t *testing.T) {
	t.Parallel()
	ctxDir := contextDir(t, map[string]string{"Dockerfile": "FROM scratch\n"})
	// An executor that must not run: it leaves a mark.
	mark := filepath.Join(t.TempDir(), "ran")
	exe := filepath.Join(t.TempDir(), "executor")
	os.WriteFile(exe, []byte("#!/bin/sh\ntouch "+mark+"\n"), 0o755)
	k := &build.Kaniko{Executor: exe, TempDir: t.TempDir()}
	for _, c := range []struct {
		name string
		req  build.Request
		want string
	}{
		{"two platforms", build.Request{ContextDir: ctxDir, Platforms: []string{"linux/amd64", "linux/arm64"}}, "PLUGIN_BUILD_TOOL=buildkit"},
		{"secrets", build.Request{ContextDir: ctxDir, Secrets: map[string][]byte{"a": []byte("b")}}, "no build secrets"},
		{"network", build.Request{ContextDir: ctxDir, Network: "none"}, "PLUGIN_NETWORK=none needs BuildKit"},
		{"no dockerfile", build.Request{ContextDir: ctxDir, Dockerfile: filepath.Join(ctxDir, "nope")}, "does not exist"},
	} {
		_, err := k.Build(context.Background(), c.req)
		if !errors.Is(err, build.ErrInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInput saying %q", c.name, err, c.want)
		}
	}
	if _, err := os.Stat(mark); err == nil {
		t.Errorf("the executor ran for a request that is wrong")
	}
	_, err := (&build.Kaniko{Executor: filepath.Join(t.TempDir(), "absent")}).Build(context.Background(), build.Request{ContextDir: ctxDir})
	if !errors.Is(err, build.ErrNoExecutor) || !strings.Contains(err.Error(), "PLUGIN_KANIKO_EXECUTOR") {
		t.Errorf("a missing executor: %v, want ErrNoExecutor saying what to do", err)
	}
}
