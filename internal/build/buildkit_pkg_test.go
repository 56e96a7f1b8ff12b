package build_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/buildkit/client"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/daemon"
	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/harness"
)

// (The package's first test binary with shared components: harness.Main
// stops the shared buildkitd when the tests end.)
func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// basicKeychain answers with one login for one registry, anonymous for
// every other.
type basicKeychain struct{ host, user, password string }

func (k basicKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() != k.host {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: k.user, Password: k.password}, nil
}

// pushBase pushes a linux/amd64 busybox image (made here, without a
// daemon) to reg as repo:1, and returns its reference and digest, read
// back with crane.
func pushBase(t *testing.T, reg *harness.Registry, repo, msg string) (ref, digest string) {
	t.Helper()
	layer, err := tarball.LayerFromFile(harness.Rootfs(t, "amd64", msg))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"/bin/sh"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref = reg.Host + "/" + repo + ":1"
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithTransport(reg.Client().Transport)}
	if reg.User != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Password}))
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		t.Fatal(err)
	}
	return ref, reg.Digest(t, ref)
}

var engineClient struct {
	sync.Once
	c   *client.Client
	dir string
	err error
}

// sharedBuildKit connects to the shared buildkitd (harness).
func sharedBuildKit(t *testing.T) *client.Client {
	t.Helper()
	dir, addr := harness.SharedEngine(t)
	engineClient.Do(func() {
		engineClient.c, engineClient.err = client.New(context.Background(), addr)
		engineClient.dir = dir
	})
	if engineClient.err != nil {
		t.Fatal(engineClient.err)
	}
	return engineClient.c
}

// contentStore is the shared buildkitd's content store, which the direct
// export reads (the engine makes it with its first build).
func contentStore(t *testing.T) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(engineClient.dir, "root", "runc-*", "content"))
	if len(m) != 1 {
		t.Fatalf("the shared engine's content store: %v", m)
	}
	return m[0]
}

// contextDir writes a build context with the given files.
func contextDir(t *testing.T, fs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, c := range fs {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fileWriter is an output file; Close may be called more than once.
type fileWriter struct {
	*os.File
	once sync.Once
	err  error
}

func (f *fileWriter) Close() error {
	f.once.Do(func() { f.err = f.File.Close() })
	return f.err
}

func createFile(t *testing.T, p string) *fileWriter {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := &fileWriter{File: f}
	t.Cleanup(func() { w.Close() })
	return w
}

// One BuildKit solve writes every output the request asks for, through
// the session or (with the engine's content store) directly: an OCI
// layout that crane pushes as the image of the digest the result
// reports; a docker tarball and a daemon stream of that same image (the
// config crane reads back is the image id docker load gives) that runs
// with the build arguments, labels and context given (hoist's excluded
// files left out), and the base image BuildKit resolved, with its digest
// as the registry holds it.
func TestBuildKitWritesEveryOutput(t *testing.T) {
	t.Parallel()
	bk := sharedBuildKit(t)
	docker := harness.SharedDocker(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	base, baseDigest := pushBase(t, reg, "base/busybox", "hello from the base")
	for _, direct := range []bool{false, true} {
		// (In turn: the direct export reads the content store the
		// engine's first build makes.)
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			who := "who-" + randomHex(4)
			ctxDir := contextDir(t, map[string]string{
				"Dockerfile":        "FROM " + base + "\nARG WHO\nRUN echo \"built for $WHO\" > /who.txt\nCOPY . /ctx/\nCMD [\"cat\", \"/who.txt\"]\n",
				"data.txt":          "data",
				"excluded/file.txt": "hoist's own",
				".hoist-tmp-x":      "half written",
			})
			ws := t.TempDir()
			out := filepath.Join(ws, ".hoist", "images", "layout")
			os.MkdirAll(out, 0o755)
			name := "hoist-build-test-" + randomHex(4) + "/app:1"
			t.Cleanup(func() { harness.RunErr(docker.Env(), "docker", "rmi", "-f", name) })
			tarPath, loadPath := filepath.Join(ws, "image.tar"), filepath.Join(ws, "load.tar")
			req := build.Request{ContextDir: ctxDir, BuildArgs: []build.KV{{Key: "WHO", Value: who}},
				Labels: []build.KV{{Key: "team", Value: "hoist"}}, Names: []string{name}, BaseImages: true,
				Exclude:   build.Excludes(ctxDir, filepath.Join(ctxDir, "excluded")),
				Out:       build.Outputs{LayoutDir: out, Tar: createFile(t, tarPath), TarFormat: "docker", Load: createFile(t, loadPath)},
				Workspace: files.Workspace(ws)}
			b := &build.BuildKit{Client: bk}
			if direct {
				b.ContentDir = contentStore(t)
			}
			res, err := b.Build(context.Background(), req)
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			if !strings.HasPrefix(res.Digest, "sha256:") {
				t.Fatalf("result digest %q", res.Digest)
			}

			// The layout, pushed by crane, is the image of the digest.
			pushed := reg.Host + "/built/app:" + randomHex(4)
			reg.Crane(t, "push", out, pushed)
			if got := reg.Digest(t, pushed); got != res.Digest {
				t.Errorf("crane pushed the layout as %s, the result says %s", got, res.Digest)
			}
			config := "sha256:" + sha256Hex(t, reg.Crane(t, "config", pushed))

			// The docker tarball is that image, and runs.
			docker.Run(t, "load", "-q", "-i", tarPath)
			if id := strings.TrimSpace(docker.Run(t, "image", "inspect", "--format", "{{.Id}}", name)); id != config {
				t.Errorf("the docker tarball loads as %s, the layout's config is %s", id, config)
			}
			if got := strings.TrimSpace(docker.Run(t, "run", "--rm", "--network", "host", name)); got != "built for "+who {
				t.Errorf("the image prints %q, want the build argument's value", got)
			}
			if got := strings.TrimSpace(docker.Run(t, "image", "inspect", "--format", `{{index .Config.Labels "team"}}`, name)); got != "hoist" {
				t.Errorf("label team = %q", got)
			}
			ls := strings.Fields(docker.Run(t, "run", "--rm", "--network", "host", name, "ls", "-a", "/ctx"))
			if !slices.Contains(ls, "data.txt") || slices.Contains(ls, "excluded") || slices.Contains(ls, ".hoist-tmp-x") {
				t.Errorf("the context in the image holds %q: want data.txt, and hoist's own files left out", ls)
			}
			// The daemon stream is the same image.
			if got := tarballConfig(t, loadPath, name); got != config {
				t.Errorf("the daemon stream holds config %s, want %s", got, config)
			}

			found := false
			for _, r := range res.BaseImages {
				if strings.Contains(r.URI, "base/busybox") && "sha256:"+r.Digest["sha256"] == baseDigest {
					found = true
				}
			}
			if !found {
				t.Errorf("base images %+v, want %s at %s", res.BaseImages, base, baseDigest)
			}
			if res.BuilderVersion == "" {
				t.Errorf("no builder version")
			}
		})
	}
}

func sha256Hex(t *testing.T, s string) string {
	t.Helper()
	h, _, err := v1.SHA256(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return h.Hex
}

// tarballConfig reads a docker tarball with go-containerregistry: the
// config digest of the image tagged ref.
func tarballConfig(t *testing.T, p, ref string) string {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(p, &tag)
	if err != nil {
		t.Fatalf("%s holds no %s: %v", p, ref, err)
	}
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// ociArchiveDigest is the digest of the manifest skopeo (a reader
// independent of hoist) reads from an OCI archive.
func ociArchiveDigest(t *testing.T, p string) string {
	t.Helper()
	raw := harness.Run(t, nil, harness.Need(t, "skopeo"), "inspect", "--raw", "oci-archive:"+p)
	return "sha256:" + sha256Hex(t, raw)
}

// An OCI tarball is written by BuildKit's exporter through the session,
// and from the engine's content store in the direct export: both are
// the image of the result's digest, as skopeo reads them.
func TestBuildKitOCITarball(t *testing.T) {
	t.Parallel()
	bk := sharedBuildKit(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	base, _ := pushBase(t, reg, "base/busybox", "base")
	ctxDir := contextDir(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo " + randomHex(8) + " > /x\n"})
	for _, direct := range []bool{false, true} {
		ws := t.TempDir()
		tarPath := filepath.Join(ws, "image.oci.tar")
		b := &build.BuildKit{Client: bk}
		if direct {
			b.ContentDir = contentStore(t)
		}
		res, err := b.Build(context.Background(), build.Request{ContextDir: ctxDir, Workspace: files.Workspace(ws),
			Out: build.Outputs{LayoutDir: filepath.Join(ws, "layout"), Tar: createFile(t, tarPath), TarFormat: "oci"}})
		if err != nil {
			t.Fatalf("direct=%v: %v", direct, err)
		}
		if got := ociArchiveDigest(t, tarPath); got != res.Digest {
			t.Errorf("direct=%v: skopeo reads the OCI tarball as %s, the result says %s", direct, got, res.Digest)
		}
	}
}

// A failing RUN step is ErrBuild with BuildKit's own words (the command
// and its exit code), not a gRPC status.
func TestBuildKitFailedStep(t *testing.T) {
	t.Parallel()
	bk := sharedBuildKit(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	base, _ := pushBase(t, reg, "base/busybox", "base")
	marker := "fails-here-" + randomHex(4)
	ctxDir := contextDir(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo " + marker + " && exit 3\n"})
	_, err := (&build.BuildKit{Client: bk}).Build(context.Background(), build.Request{ContextDir: ctxDir, Out: build.Outputs{LayoutDir: t.TempDir()}})
	if !errors.Is(err, build.ErrBuild) {
		t.Fatalf("a failing RUN: %v, want ErrBuild", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, marker) || !strings.Contains(msg, "exit code: 3") {
		t.Errorf("the error does not name the step and its exit code: %s", msg)
	}
	if strings.Contains(msg, "rpc error") {
		t.Errorf("the error keeps gRPC's wrapping: %s", msg)
	}
}

// Base images come from a registry that wants a login with the
// credentials of the builder's keychain (through BuildKit's session),
// and without them the build fails.
func TestBuildKitPullsWithTheKeychain(t *testing.T) {
	t.Parallel()
	bk := sharedBuildKit(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	base, _ := pushBase(t, reg, "private/base", "private base")
	ctxDir := contextDir(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN cat /hello.txt > /copied.txt\n"})
	req := func() build.Request {
		return build.Request{ContextDir: ctxDir, NoCache: true, Out: build.Outputs{LayoutDir: t.TempDir()}}
	}
	_, err := (&build.BuildKit{Client: bk}).Build(context.Background(), req())
	if !errors.Is(err, build.ErrBuild) {
		t.Errorf("a private base without credentials: %v, want ErrBuild", err)
	}
	wrongPassword := "wrong-" + randomHex(8)
	wrong := basicKeychain{host: reg.Host, user: reg.User, password: wrongPassword}
	if _, err := (&build.BuildKit{Client: bk, Keychain: wrong}).Build(context.Background(), req()); !errors.Is(err, build.ErrBuild) {
		t.Errorf("a private base with a wrong password: %v, want ErrBuild", err)
	} else if strings.Contains(err.Error(), wrongPassword) {
		t.Errorf("the error holds the password: %v", err)
	}
	kc := basicKeychain{host: reg.Host, user: reg.User, password: reg.Password}
	r := req()
	res, err := (&build.BuildKit{Client: bk, Keychain: kc}).Build(context.Background(), r)
	if err != nil {
		t.Fatalf("with the keychain: %v", err)
	}
	if got := layoutDigest(t, r.Out.LayoutDir); got != res.Digest {
		t.Errorf("the layout holds %s, the result says %s", got, res.Digest)
	}
}

// layoutDigest is the one manifest of an OCI layout, read with
// go-containerregistry.
func layoutDigest(t *testing.T, dir string) string {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("layout %s: %v, %v", dir, m, err)
	}
	return m.Manifests[0].Digest.String()
}

// A build secret reaches the RUN step that mounts it, and no byte of it
// is in the image.
func TestBuildKitSecretsStayOutOfTheImage(t *testing.T) {
	t.Parallel()
	bk := sharedBuildKit(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	base, _ := pushBase(t, reg, "base/busybox", "base")
	secret := "s3cret-" + randomHex(8)
	ctxDir := contextDir(t, map[string]string{"Dockerfile": "FROM " + base + "\n" +
		"RUN --mount=type=secret,id=tok,required=true test \"$(cat /run/secrets/tok)\" = \"" + secret[:7] + "$(echo " + secret[7:] + ")\" && echo seen > /seen.txt\n"})
	// (The Dockerfile names the secret in two halves, so its own text in
	// the build's history holds no copy of it.)
	out := t.TempDir()
	_, err := (&build.BuildKit{Client: bk}).Build(context.Background(), build.Request{ContextDir: ctxDir,
		Secrets: map[string][]byte{"tok": []byte(secret)}, Out: build.Outputs{LayoutDir: out}})
	if err != nil {
		t.Fatalf("build with the secret: %v", err)
	}
	seen := false
	forEachLayerFile(t, out, func(n string, b []byte) {
		if strings.Contains(string(b), secret) {
			t.Errorf("layer file %s holds the secret", n)
		}
		if n == "seen.txt" {
			seen = true
		}
	})
	filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("the layout's %s holds the secret", p)
			}
		}
		return nil
	})
	if !seen {
		t.Errorf("the RUN step that reads the secret left no /seen.txt")
	}
}

// forEachLayerFile calls f with each regular file of each layer of the
// layout's image.
func forEachLayerFile(t *testing.T, dir string, f func(name string, body []byte)) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := idx.IndexManifest()
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Typeflag == tar.TypeReg {
				b, _ := io.ReadAll(tr)
				f(strings.TrimPrefix(h.Name, "./"), b)
			}
		}
		rc.Close()
	}
}

// Layers are compressed as asked, whatever the engine holds already:
// zstd gives zstd layers, then gzip of the same build gzip ones (read
// back from the layout with go-containerregistry, and by their magic
// numbers).
func TestBuildKitCompression(t *testing.T) {
	t.Parallel()
	bk := sharedBuildKit(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	base, _ := pushBase(t, reg, "base/busybox", "base")
	ctxDir := contextDir(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo " + randomHex(8) + " > /x\n"})
	for _, c := range []string{"zstd", "gzip"} {
		checkCompression(t, bk, ctxDir, c, c)
	}
}

// Request.Compression "" is gzip, as documented, also after a zstd build
// of the same layers (BuildKit would otherwise reuse the zstd variant it
// holds: it did before the compression was always forced).
func TestBuildKitDefaultCompressionIsGzip(t *testing.T) {
	t.Parallel()
	bk := sharedBuildKit(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	base, _ := pushBase(t, reg, "base/busybox", "base")
	ctxDir := contextDir(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo " + randomHex(8) + " > /x\n"})
	checkCompression(t, bk, ctxDir, "zstd", "zstd")
	checkCompression(t, bk, ctxDir, "", "gzip")
}

func checkCompression(t *testing.T, bk *client.Client, ctxDir, compression, want string) {
	t.Helper()
	out := t.TempDir()
	if _, err := (&build.BuildKit{Client: bk}).Build(context.Background(), build.Request{ContextDir: ctxDir,
		Compression: compression, Out: build.Outputs{LayoutDir: out}}); err != nil {
		t.Fatalf("build with %q: %v", compression, err)
	}
	idx, _ := layout.ImageIndexFromPath(out)
	im, _ := idx.IndexManifest()
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		if mt := "application/vnd.oci.image.layer.v1.tar+" + want; string(l.MediaType) != mt {
			t.Errorf("compression %q: layer %s is %s, want %s", compression, l.Digest, l.MediaType, mt)
		}
		rl, _ := img.LayerByDigest(l.Digest)
		rc, err := rl.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 4)
		io.ReadFull(rc, head)
		rc.Close()
		isGzip := head[0] == 0x1f && head[1] == 0x8b
		isZstd := bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd})
		if want == "zstd" && !isZstd || want == "gzip" && !isGzip {
			t.Errorf("compression %q: layer %s starts with % x, not %s", compression, l.Digest, head, want)
		}
	}
}

// A request that is wrong before anything runs is ErrInput and says what
// is wrong: no context, no Dockerfile (naming the setting that chose
// it), an unknown network or tar format, a docker tarball of several
// platforms, the daemon's builder with a layout.
func TestBuildKitInputErrors(t *testing.T) {
	t.Parallel()
	bk := sharedBuildKit(t)
	ctxDir := contextDir(t, map[string]string{"Dockerfile": "FROM scratch\n"})
	tarW := createFile(t, filepath.Join(t.TempDir(), "x.tar"))
	for _, c := range []struct {
		name string
		b    *build.BuildKit
		req  build.Request
		want []string
	}{
		{"no context", &build.BuildKit{Client: bk}, build.Request{ContextDir: filepath.Join(ctxDir, "absent")}, []string{"absent", "is not a directory", "PLUGIN_CONTEXT"}},
		{"no dockerfile", &build.BuildKit{Client: bk}, build.Request{ContextDir: ctxDir, Dockerfile: filepath.Join(ctxDir, "Other.Dockerfile"), DockerfileFrom: "PLUGIN_DOCKERFILE set"},
			[]string{"Other.Dockerfile", "does not exist", "PLUGIN_DOCKERFILE set"}},
		{"network", &build.BuildKit{Client: bk}, build.Request{ContextDir: ctxDir, Network: "bridge"}, []string{`"bridge"`, "default, host or none"}},
		{"tar format", &build.BuildKit{Client: bk}, build.Request{ContextDir: ctxDir, Out: build.Outputs{Tar: tarW, TarFormat: "zip"}}, []string{`"zip"`, "docker or oci"}},
		{"docker tarball of two platforms", &build.BuildKit{Client: bk}, build.Request{ContextDir: ctxDir, Platforms: []string{"linux/amd64", "linux/arm64"}, Out: build.Outputs{Tar: tarW}},
			[]string{"one platform", "2 are built", "PLUGIN_BUILDX_OUTPUT_FORMAT=oci"}},
		{"daemon builder without names", &build.BuildKit{Client: bk, Docker: true}, build.Request{ContextDir: ctxDir}, []string{"PLUGIN_REPO"}},
		{"daemon builder with a layout", &build.BuildKit{Client: bk, Docker: true}, build.Request{ContextDir: ctxDir, Names: []string{"x/y:1"}, Out: build.Outputs{LayoutDir: t.TempDir()}},
			[]string{"into the daemon only"}},
	} {
		_, err := c.b.Build(context.Background(), c.req)
		if !errors.Is(err, build.ErrInput) {
			t.Errorf("%s: %v, want ErrInput", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", c.name, err, w)
			}
		}
	}
}

// Excludes are hoist's temporary files everywhere in the context, and
// each given path that lies inside the context, relative to it; paths
// outside it and the context itself are not.
func TestExcludes(t *testing.T) {
	t.Parallel()
	got := build.Excludes("/ws/ctx", "/ws/ctx/.hoist", "/ws/ctx/out/image.tar", "/ws/other", "/ws/ctx", "", "/ws/ctx/../ctx2/x")
	want := append(append([]string(nil), build.TempPatterns...), ".hoist", "out/image.tar")
	if !slices.Equal(got, want) {
		t.Errorf("Excludes = %q, want %q", got, want)
	}
}

// The Docker daemon's built-in BuildKit (reached through the daemon, as
// buildx's docker driver does) puts the image into the daemon's image
// store under the request's names: docker runs it with the build
// argument, and its image id is the result's digest.
func TestBuildKitIntoTheDaemon(t *testing.T) {
	t.Parallel()
	docker := harness.SharedDocker(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	base, _ := pushBase(t, reg, "base/busybox", "base")
	ctx := context.Background()
	eng, err := engine.OpenDocker(ctx, daemon.New(docker.Host), 30*time.Second)
	if err != nil {
		t.Fatalf("the daemon's BuildKit: %v", err)
	}
	t.Cleanup(func() { eng.Client.Close() })
	who := "who-" + randomHex(4)
	name := "hoist-build-test-" + randomHex(4) + "/daemon:1"
	t.Cleanup(func() { harness.RunErr(docker.Env(), "docker", "rmi", "-f", name) })
	ctxDir := contextDir(t, map[string]string{"Dockerfile": "FROM " + base + "\nARG WHO\nRUN echo \"built in the daemon for $WHO\" > /who.txt\nCMD [\"cat\", \"/who.txt\"]\n"})
	// The daemon here has no bridge: RUN steps take the host's network.
	res, err := (&build.BuildKit{Client: eng.Client, Docker: true}).Build(ctx, build.Request{ContextDir: ctxDir, Names: []string{name},
		Network: "host", BuildArgs: []build.KV{{Key: "WHO", Value: who}}})
	if err != nil {
		t.Fatalf("build into the daemon: %v", err)
	}
	if got := strings.TrimSpace(docker.Run(t, "run", "--rm", "--network", "host", name)); got != "built in the daemon for "+who {
		t.Errorf("the image in the daemon prints %q", got)
	}
	// The daemon's builder reports the image id (the config's digest:
	// the daemon stores no manifest), which internal/step prints as
	// such; Result.Digest's comment says "manifest or index".
	if id := strings.TrimSpace(docker.Run(t, "image", "inspect", "--format", "{{.Id}}", name)); id != res.Digest {
		t.Errorf("the daemon holds %s as %s, the build says %s", name, id, res.Digest)
	}
}
