package step

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/build"
	"github.com/hoist-build/hoist/internal/daemon"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/publish"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/runid"
	"github.com/hoist-build/hoist/internal/source"
)

// layoutOf copies the fixture's OCI layout (skopeo's, one image) into a
// directory of its own and returns it, with the image's manifest digest
// and config digest as skopeo's index.json and manifest say.
func layoutOf(t *testing.T) (dir, digest, config string) {
	t.Helper()
	f := harness.Inputs(t)
	dir = filepath.Join(t.TempDir(), "layout")
	harness.Run(t, nil, "cp", "-r", f.SkopeoLayout, dir)
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil || json.Unmarshal(b, &idx) != nil || len(idx.Manifests) != 1 {
		t.Fatalf("skopeo's layout: %v %s", err, b)
	}
	digest = idx.Manifests[0].Digest
	var m struct{ Config struct{ Digest string } }
	b, err = os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil || json.Unmarshal(b, &m) != nil {
		t.Fatalf("skopeo's manifest: %v", err)
	}
	return dir, digest, m.Config.Digest
}

// The tarball publisher writes a tarball from an image's layout (skopeo
// reads it back: the same manifest, the same config), from the build's
// stream, and leaves nothing when it does not publish.
func TestTarFilePublisher(t *testing.T) {
	t.Parallel()
	layout, digest, config := layoutOf(t)
	ws := t.TempDir()
	ctx := context.Background()
	img := &Image{Digest: digest, Names: []string{"example.com/app:1"}, Layout: layout}
	for _, format := range []string{"oci", "docker"} {
		p := &tarFile{ws: files.Workspace(ws), path: filepath.Join(ws, "out", format+".tar"), format: format, shown: "out/" + format + ".tar"}
		res, err := p.Publish(ctx, img)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		p.Close()
		if res.Outputs["IMAGE_TAR_PATH"] != p.shown || !strings.Contains(res.Message, p.path) {
			t.Errorf("%s: %+v", format, res)
		}
		transport := map[string]string{"oci": "oci-archive:", "docker": "docker-archive:"}[format]
		cfg := harness.Run(t, nil, "skopeo", "inspect", "--config", "--raw", transport+p.path)
		if got := mustDigest(cfg); got != config {
			t.Errorf("%s tarball: config %s, the layout's is %s", format, got, config)
		}
		if format == "oci" {
			if got := mustDigest(harness.Run(t, nil, "skopeo", "inspect", "--raw", transport+p.path)); got != digest {
				t.Errorf("oci tarball: manifest %s, the layout's is %s", got, digest)
			}
		}
	}

	// Streamed: the build writes it; Publish commits it.
	p := &tarFile{ws: files.Workspace(ws), path: filepath.Join(ws, "streamed.tar"), format: "oci"}
	var out build.Outputs
	if err := p.Stream(ctx, &out); err != nil || out.Tar == nil || out.TarFormat != "oci" {
		t.Fatalf("stream: %v %+v", err, out)
	}
	src, _ := os.Open(harness.Inputs(t).SkopeoOCIArch)
	io.Copy(out.Tar, src)
	src.Close()
	out.Tar.Close() // as a builder does
	if _, err := os.Stat(p.path); err == nil {
		t.Errorf("the tarball is at its path before it is published")
	}
	if _, err := p.Publish(ctx, &Image{}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if got := mustDigest(harness.Run(t, nil, "skopeo", "inspect", "--config", "--raw", "oci-archive:"+p.path)); got != config {
		t.Errorf("streamed tarball: config %s, want %s", got, config)
	}

	// Not published (the build failed): nothing at the path, nothing
	// beside it.
	dir := filepath.Join(ws, "failed")
	p = &tarFile{ws: files.Workspace(ws), path: filepath.Join(dir, "image.tar"), format: "docker"}
	if err := p.Stream(ctx, &out); err != nil {
		t.Fatal(err)
	}
	out.Tar.Write([]byte("half a tarball"))
	p.Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a tarball that was not published left %v", entries)
	}
}

// The daemon publisher loads the image into a real Docker daemon, from a
// layout or from the build's stream; the daemon then holds it under its
// name, with the layout's config as its id. One that does not publish
// ends its load.
func TestDaemonLoadPublisher(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	layout, digest, config := layoutOf(t)
	d := daemon.New(f.Docker.Host)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ref := "hoist-step-publisher/load:" + strings.TrimPrefix(digest, "sha256:")[:12]
	p := &daemonLoad{d: d}
	res, err := p.Publish(ctx, &Image{Digest: digest, Names: []string{ref}, Layout: layout})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if !strings.Contains(res.Message, ref) {
		t.Errorf("message %q", res.Message)
	}
	t.Cleanup(func() { f.Docker.Run(t, "rmi", "-f", ref) })
	if id := strings.TrimSpace(f.Docker.Run(t, "image", "inspect", "--format", "{{.Id}}", ref)); id != config {
		t.Errorf("the daemon holds %s as %s, the layout's config is %s", ref, id, config)
	}
	if out := strings.TrimSpace(f.Docker.Run(t, "run", "--rm", "--network", "host", ref, "cat", "/built.txt")); out != f.Built {
		t.Errorf("the loaded image prints %q", out)
	}

	// Streamed, then not published: the load ends, nothing is loaded.
	p = &daemonLoad{d: d}
	var out build.Outputs
	if err := p.Stream(ctx, &out); err != nil || out.Load == nil {
		t.Fatalf("stream: %v", err)
	}
	out.Load.Write([]byte("not a tarball"))
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Close of an unpublished load does not return")
	}
}

// The image store publisher records a layout under its names, stamped
// with the run: skopeo reads the entry back by name.
func TestImageStorePublisher(t *testing.T) {
	t.Parallel()
	layout, digest, _ := layoutOf(t)
	ws := t.TempDir()
	store := filepath.Join(ws, ".hoist", "images")
	p := &imageStore{ws: files.Workspace(ws), dir: store, run: runid.Run{ID: "store-run"}}
	ref := "registry.example.com/team/app:1"
	res, err := p.Publish(context.Background(), &Image{Digest: digest, Names: []string{ref}, Layout: layout})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Message, store) {
		t.Errorf("message %q", res.Message)
	}
	if got := mustDigest(harness.Run(t, nil, "skopeo", "inspect", "--raw", "oci:"+store+":"+ref)); got != digest {
		t.Errorf("the store holds %s as %s, the layout %s", ref, got, digest)
	}
	b, _ := os.ReadFile(filepath.Join(store, "index.json"))
	if !strings.Contains(string(b), "store-run") {
		t.Errorf("the entry names no run: %s", b)
	}
	if _, err := (&imageStore{ws: files.Workspace(ws), dir: store}).Publish(context.Background(), &Image{Names: []string{ref}}); err == nil {
		t.Errorf("an image without a layout was recorded")
	}
}

// The registries publisher pushes an opened image to every destination
// (crane reads the digest back), and a destination whose login failed
// gets a failed result without a request.
func TestRegistriesPublisher(t *testing.T) {
	t.Parallel()
	layout, digest, _ := layoutOf(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	b := harness.StartRegistry(t, harness.RegistryOptions{})
	ctx := context.Background()
	tr, err := registry.NewTransport(registry.TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := source.Open(ctx, source.Request{TarPath: layout, TempDir: t.TempDir(), Access: registry.Access{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	var dests []name.Tag
	for _, r := range []string{a.Host + "/pub/app:1", b.Host + "/pub/app:2", b.Host + "/pub/other:1"} {
		tag, _ := name.NewTag(r)
		dests = append(dests, tag)
	}
	skipped, _ := name.NewTag("127.0.0.1:1/pub/app:1")
	checked := false
	p := &registries{dests: append(dests, skipped), skip: map[string]error{"127.0.0.1:1": os.ErrPermission},
		opts: publish.Options{Access: registry.Access{Transport: tr}, Jobs: 2, Progress: progress.New(io.Discard, progress.Quiet)}}
	if got := p.pushed(); len(got) != 3 {
		t.Errorf("pushed to %v", got)
	}
	res, err := p.Publish(ctx, &Image{Digest: digest, Source: img, Check: func(context.Context) error { checked = true; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 4 || !checked {
		t.Fatalf("results %+v, checked %v", res.Results, checked)
	}
	for i, d := range dests {
		r := res.Results[i]
		reg := map[string]*harness.Registry{a.Host: a, b.Host: b}[d.RegistryStr()]
		if r.Err != nil || r.Ref != d.Name() || reg.Digest(t, d.Name()) != digest {
			t.Errorf("%s: %+v; the layout holds %s", d, r, digest)
		}
	}
	if last := res.Results[3]; last.Err == nil || last.Ref != skipped.Name() || !errors.Is(last.Err, publish.ErrPush) {
		t.Errorf("skipped destination: %+v", last)
	}
	if _, err := p.Publish(ctx, &Image{Digest: digest}); err == nil {
		t.Errorf("published without an image")
	}
}

// The publishers are composed from the configuration: the daemon, the
// tarball, the store for a build, in that order; the registries when the
// mode pushes.
func TestPublishersComposed(t *testing.T) {
	t.Parallel()
	dest, _ := name.NewTag("127.0.0.1:1/app:1")
	r := &runner{st: &Step{Mode: ModeBuildOnly, Destinations: []name.Tag{dest},
		Build: &Build{TarPath: "/ws/x.tar", TarFormat: "oci", Store: "/ws/.hoist/images"}}, pr: progress.New(io.Discard, progress.Quiet)}
	p, err := r.publishers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.registries != nil || len(p.side) != 2 {
		t.Fatalf("build-only: %+v", p)
	}
	if _, ok := p.side[0].(*tarFile); !ok {
		t.Errorf("first %T, want the tarball", p.side[0])
	}
	if _, ok := p.side[1].(*imageStore); !ok {
		t.Errorf("second %T, want the image store", p.side[1])
	}
	r.st.Mode, r.st.Build = ModePushOnly, nil
	if p, err = r.publishers(context.Background()); err != nil || p.registries == nil || len(p.side) != 0 {
		t.Errorf("push-only: %+v %v", p, err)
	}
	// Load without a daemon the step may use: refused before the build.
	r.st.Mode, r.st.Build = ModeBuildOnly, &Build{Load: true}
	if _, err := r.publishers(context.Background()); !errors.Is(err, ErrInvalid) {
		t.Errorf("load without the daemon: %v", err)
	}
	// A daemon that does not answer: known before the build.
	r.daemon = daemon.New(harness.CountingSocket(t).Host)
	if _, err := r.publishers(context.Background()); err == nil {
		t.Errorf("load into a daemon that does not answer: no error")
	}
}
