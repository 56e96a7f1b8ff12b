package daemon_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hoist-build/hoist/internal/daemon"
	"github.com/hoist-build/hoist/internal/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

func randomName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("hoist-daemon-test-%x", b)
}

// testImage is a runnable image (a static busybox and /hello.txt holding
// msg), made here without the daemon, and its docker tarball under ref.
func testImage(t *testing.T, ref, msg string) (v1.Image, []byte) {
	t.Helper()
	layer, err := tarball.LayerFromFile(harness.Rootfs(t, "amd64", msg))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"cat", "/hello.txt"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	return img, buf.Bytes()
}

func removeImages(t *testing.T, d *harness.Docker, refs ...string) {
	t.Cleanup(func() {
		harness.RunErr(d.Env(), "docker", append([]string{"rmi", "-f"}, refs...)...)
	})
}

// Load streams a docker tarball into the daemon: the daemon then holds
// the image under its name, with the config digest the tarball has (read
// back with docker inspect), and runs it. Has, TagsOf, Save and
// SaveToFile then find and save it: docker save's tarball holds the same
// image (the same config, layers and tag).
func TestLoadHasSaveTags(t *testing.T) {
	t.Parallel()
	docker := harness.SharedDocker(t)
	ctx := context.Background()
	repo := randomName(t) + "/app"
	ref, other := repo+":1", repo+":2"
	removeImages(t, docker, ref, other)
	msg := "hello from " + repo
	img, tb := testImage(t, ref, msg)
	cfgDigest, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}

	d := daemon.New(docker.Host)
	if s := d.String(); !strings.Contains(s, docker.Host) {
		t.Errorf("String() = %q, does not name the host", s)
	}
	if ok, err := d.Has(ctx, ref); err != nil || ok {
		t.Fatalf("before the load, Has(%s) = %v, %v; want false, nil", ref, ok, err)
	}
	if err := d.Load(ctx, bytes.NewReader(tb)); err != nil {
		t.Fatalf("load: %v", err)
	}
	if id := strings.TrimSpace(docker.Run(t, "image", "inspect", "--format", "{{.Id}}", ref)); id != cfgDigest.String() {
		t.Errorf("the daemon holds %s as %s, want the tarball's config %s", ref, id, cfgDigest)
	}
	if got := strings.TrimSpace(docker.Run(t, "run", "--rm", "--network", "host", ref)); got != msg {
		t.Errorf("the loaded image prints %q, want %q", got, msg)
	}
	if ok, err := d.Has(ctx, ref); err != nil || !ok {
		t.Errorf("after the load, Has(%s) = %v, %v; want true, nil", ref, ok, err)
	}
	if ok, err := d.Has(ctx, repo+":absent"); err != nil || ok {
		t.Errorf("Has of a tag the daemon lacks = %v, %v; want false, nil", ok, err)
	}

	docker.Run(t, "tag", ref, other)
	if got, want := d.TagsOf(ctx, repo), []string{ref, other}; !slices.Equal(got, want) {
		t.Errorf("TagsOf(%s) = %q, want %q", repo, got, want)
	}
	if got := d.TagsOf(ctx, randomName(t)+"/none"); len(got) != 0 {
		t.Errorf("TagsOf a repository the daemon lacks = %q", got)
	}

	var saved bytes.Buffer
	if err := d.Save(ctx, []string{ref}, &saved); err != nil {
		t.Fatalf("save: %v", err)
	}
	checkSaved(t, saved.Bytes(), ref, img)

	dir := t.TempDir()
	p, err := d.SaveToFile(ctx, []string{ref}, dir)
	if err != nil {
		t.Fatalf("save to file: %v", err)
	}
	if filepath.Dir(p) != dir {
		t.Errorf("SaveToFile wrote %s, not in %s", p, dir)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	checkSaved(t, b, ref, img)
}

// checkSaved reads a docker save tarball with go-containerregistry's
// tarball reader: it holds want under ref.
func checkSaved(t *testing.T, tb []byte, ref string, want v1.Image) {
	t.Helper()
	tag, _ := name.NewTag(ref)
	got, err := tarball.Image(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil }, &tag)
	if err != nil {
		t.Fatalf("the saved tarball holds no %s: %v", ref, err)
	}
	for _, f := range []func(v1.Image) (v1.Hash, error){v1.Image.ConfigName} {
		g, err1 := f(got)
		w, err2 := f(want)
		if err1 != nil || err2 != nil || g != w {
			t.Errorf("saved config %s (%v), want %s (%v)", g, err1, w, err2)
		}
	}
	gl, _ := got.Layers()
	wl, _ := want.Layers()
	if len(gl) != len(wl) {
		t.Fatalf("saved %d layers, want %d", len(gl), len(wl))
	}
	for i := range gl {
		g, _ := gl[i].DiffID()
		w, _ := wl[i].DiffID()
		if g != w {
			t.Errorf("layer %d: diff_id %s, want %s", i, g, w)
		}
	}
}

// Save and SaveToFile of an image the daemon lacks fail, naming the
// reference and the daemon, and SaveToFile leaves no file behind.
func TestSaveOfAMissingImage(t *testing.T) {
	t.Parallel()
	docker := harness.SharedDocker(t)
	ctx := context.Background()
	ref := randomName(t) + "/absent:1"
	d := daemon.New(docker.Host)
	var buf bytes.Buffer
	err := d.Save(ctx, []string{ref}, &buf)
	if err == nil || !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), docker.Host) {
		t.Errorf("save of a missing image: %v; want an error naming %s and the daemon", err, ref)
	}
	dir := t.TempDir()
	p, err := d.SaveToFile(ctx, []string{ref}, dir)
	if err == nil || p != "" {
		t.Errorf("SaveToFile of a missing image: %q, %v; want an error", p, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("SaveToFile left %v behind", entries)
	}
}

// Load of bytes that are no image tarball fails, naming the daemon.
func TestLoadOfGarbage(t *testing.T) {
	t.Parallel()
	docker := harness.SharedDocker(t)
	d := daemon.New(docker.Host)
	err := d.Load(context.Background(), strings.NewReader("this is not a tarball"))
	if err == nil || !strings.Contains(err.Error(), "load into docker daemon at "+docker.Host) {
		t.Errorf("load of garbage: %v; want an error naming the daemon", err)
	}
}

// A daemon that does not answer is an error within a few seconds that
// names it, from every method (the first connection's error is kept);
// Has says so rather than "no such image", TagsOf lists nothing. New
// contacts nothing.
func TestUnreachableDaemon(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sock := harness.CountingSocket(t)
	d := daemon.New(sock.Host)
	if n := sock.Connections(); n != 0 {
		t.Errorf("New connected %d times", n)
	}
	start := time.Now()
	if _, err := d.Client(ctx); err == nil || !strings.Contains(err.Error(), "is not reachable") || !strings.Contains(err.Error(), sock.Host) {
		t.Errorf("client of a daemon that does not answer: %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("it took %s to find the daemon does not answer", el)
	}
	if ok, err := d.Has(ctx, "x:1"); ok || err == nil {
		t.Errorf("Has on a daemon that does not answer = %v, %v; want an error", ok, err)
	}
	if err := d.Save(ctx, []string{"x:1"}, &bytes.Buffer{}); err == nil {
		t.Errorf("Save on a daemon that does not answer gave no error")
	}
	if err := d.Load(ctx, strings.NewReader("")); err == nil {
		t.Errorf("Load on a daemon that does not answer gave no error")
	}
	if tags := d.TagsOf(ctx, "x"); tags != nil {
		t.Errorf("TagsOf on a daemon that does not answer = %q", tags)
	}
	if n := sock.Connections(); n < 1 || n > 3 {
		// The ping is tried once (with the client's version
		// negotiation, a connection or two); later calls reuse its end.
		t.Errorf("%d connections to the socket, want the first call's only", n)
	}

	gone := daemon.New("unix://" + filepath.Join(t.TempDir(), "no.sock"))
	if _, err := gone.Client(ctx); err == nil || !strings.Contains(err.Error(), "no.sock") {
		t.Errorf("client of a socket that does not exist: %v", err)
	}
}

// A daemon that accepts the connection and never answers is given a few
// seconds (the ping's bound), not forever.
func TestSilentDaemonIsBounded(t *testing.T) {
	t.Parallel()
	addr := harness.SilentServer(t)
	d := daemon.New("tcp://" + addr)
	start := time.Now()
	_, err := d.Client(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is not reachable") || !strings.Contains(err.Error(), addr) {
		t.Errorf("a daemon that never answers: %v", err)
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("it took %s to give up on a daemon that never answers", el)
	}
}
