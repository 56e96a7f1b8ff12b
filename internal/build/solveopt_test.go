package build

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/buildkit/client"
	"golang.org/x/crypto/ssh"
)

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// The frontend's attributes say what the request asks for; add-hosts
// become host=ip (IPv6 keeps its colons); a host network needs its
// entitlement; an unknown network is bad input.
func TestFrontendAttrs(t *testing.T) {
	t.Parallel()
	req := Request{Target: "prod", BuildArgs: []KV{{"A", "1"}}, Labels: []KV{{"l", "v"}}, Platforms: []string{"linux/amd64", "linux/arm64"},
		NoCache: true, Pull: true, AddHosts: []string{"db:10.0.0.1", "v6:fd00::1", "x=1.2.3.4"}, Network: "host"}
	attrs, ents, err := frontendAttrs(req, "Dockerfile.prod")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"filename": "Dockerfile.prod", "target": "prod", "build-arg:A": "1", "label:l": "v", "platform": "linux/amd64,linux/arm64",
		"no-cache": "", "image-resolve-mode": "pull", "add-hosts": "db=10.0.0.1,v6=fd00::1,x=1.2.3.4", "force-network-mode": "host"}
	if d := cmp.Diff(want, attrs); d != "" {
		t.Errorf("attrs (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"network.host"}, ents); d != "" {
		t.Errorf("entitlements (-want +got):\n%s", d)
	}
	if _, _, err := frontendAttrs(Request{Network: "bridge"}, "Dockerfile"); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), `network "bridge"`) {
		t.Errorf("network bridge: %v", err)
	}
}

// The exporters are those of the outputs asked for, with the layer
// compression; contradictory outputs are bad input before anything runs.
func TestExports(t *testing.T) {
	t.Parallel()
	w := nopWriteCloser{io.Discard}
	b := &BuildKit{}
	ex, err := b.exports(Request{Compression: "zstd", Level: 3, Names: []string{"r/app:1"}, Out: Outputs{LayoutDir: "/l", Tar: w, TarFormat: "oci", Load: w}}, false)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range ex {
		types = append(types, e.Type)
		if e.Attrs["compression"] != "zstd" || e.Attrs["compression-level"] != "3" || e.Attrs["force-compression"] != "true" {
			t.Errorf("%s: attrs %v, want the compression", e.Type, e.Attrs)
		}
	}
	if d := cmp.Diff([]string{client.ExporterOCI, "oci", client.ExporterDocker}, types); d != "" {
		t.Errorf("exporters (-want +got):\n%s", d)
	}
	if ex, err := b.exports(Request{Out: Outputs{LayoutDir: "/l", Tar: w}}, true); err != nil || len(ex) != 1 || ex[0].Type != client.ExporterImage {
		t.Errorf("direct: %+v, %v; want the image exporter alone", ex, err)
	}
	// A push by the builder: by digest, untagged, OCI media types, with
	// the compression.
	ex, err = b.exports(Request{Level: 1, Out: Outputs{Push: "r.example.com/app"}}, false)
	if err != nil || len(ex) != 1 || ex[0].Type != client.ExporterImage {
		t.Fatalf("push: %+v, %v; want the image exporter alone", ex, err)
	}
	want := map[string]string{"name": "r.example.com/app", "push": "true", "push-by-digest": "true", "oci-mediatypes": "true", "compression": "gzip", "compression-level": "1", "force-compression": "true"}
	if d := cmp.Diff(want, ex[0].Attrs); d != "" {
		t.Errorf("push (-want +got):\n%s", d)
	}
	// The image's filesystem is BuildKit's to write, direct or not.
	for _, direct := range []bool{false, true} {
		ex, err := b.exports(Request{Out: Outputs{LayoutDir: "/l", FSTar: w, FSDir: "/fs"}}, direct)
		if err != nil || len(ex) != 3 || ex[1].Type != client.ExporterTar || ex[1].Output == nil || ex[2].Type != client.ExporterLocal || ex[2].OutputDir != "/fs" {
			t.Errorf("direct %t, the filesystem: %+v, %v", direct, ex, err)
		}
	}
	for _, c := range []struct {
		b    *BuildKit
		req  Request
		want string
	}{
		{&BuildKit{Docker: true}, Request{}, "needs PLUGIN_REPO"},
		{&BuildKit{Docker: true}, Request{Names: []string{"a"}, Out: Outputs{Tar: w}}, "writes into the daemon only"},
		{&BuildKit{Docker: true}, Request{Names: []string{"a"}, Out: Outputs{FSDir: "/fs"}}, "writes into the daemon only"},
		{b, Request{Out: Outputs{TarFormat: "zip"}}, `tar format "zip"`},
		{b, Request{Out: Outputs{Push: "r/app", LayoutDir: "/l"}}, "a push by the builder writes no other output"},
		{b, Request{Out: Outputs{Push: "r/app", Tar: w}}, "a push by the builder writes no other output"},
		{&BuildKit{Docker: true}, Request{Names: []string{"a"}, Out: Outputs{Push: "r/app"}}, "writes into the daemon only"},
		{b, Request{Platforms: []string{"a", "b"}, Out: Outputs{Load: w}}, "hold one platform, and 2 are built"},
	} {
		if _, err := c.b.exports(c.req, false); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.req, err, c.want)
		}
	}
}

// The solve options mount the context and the Dockerfile's directory; a
// missing Dockerfile is bad input naming it.
func TestSolveOptMounts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opt, err := (&BuildKit{}).solveOpt(Request{ContextDir: dir, Out: Outputs{LayoutDir: t.TempDir()}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if opt.LocalMounts["context"] == nil || opt.LocalMounts["dockerfile"] == nil || opt.FrontendAttrs["filename"] != "Dockerfile" || len(opt.Session) != 1 {
		t.Errorf("solve options: %+v", opt)
	}
	if _, err := (&BuildKit{}).solveOpt(Request{ContextDir: dir, Dockerfile: filepath.Join(dir, "nope")}, false); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing Dockerfile: %v", err)
	}
}

// Named contexts: an image is the frontend's context:NAME as given; a
// directory is a local mount of its own, with its excludes.
func TestSolveOptNamedContexts(t *testing.T) {
	t.Parallel()
	dir, extra := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	os.WriteFile(filepath.Join(extra, "keep.txt"), []byte("k"), 0o644)
	os.WriteFile(filepath.Join(extra, "drop.txt"), []byte("d"), 0o644)
	opt, err := (&BuildKit{}).solveOpt(Request{ContextDir: dir, Out: Outputs{LayoutDir: t.TempDir()},
		NamedContexts: map[string]string{"img": "docker-image://reg.example.com/a:1", "dir": extra},
		NamedExcludes: map[string][]string{"dir": {"drop.txt"}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if opt.FrontendAttrs["context:img"] != "docker-image://reg.example.com/a:1" || opt.FrontendAttrs["context:dir"] != "local:named-context:dir" {
		t.Errorf("attrs: %v", opt.FrontendAttrs)
	}
	fs := opt.LocalMounts["named-context:dir"]
	if fs == nil || len(opt.LocalMounts) != 3 {
		t.Fatalf("mounts: %v", opt.LocalMounts)
	}
	var seen []string
	fs.Walk(context.Background(), "", func(p string, _ iofs.DirEntry, err error) error {
		seen = append(seen, p)
		return err
	})
	if d := cmp.Diff([]string{"keep.txt"}, seen); d != "" {
		t.Errorf("the named directory (-want +got):\n%s", d)
	}
}

// The SSH key becomes the session's default agent; its file is gone once
// the agent holds it; a value that is no key is bad input.
func TestSSHAgent(t *testing.T) {
	t.Parallel()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	tmp := t.TempDir()
	a, err := sshAgent(pem.EncodeToMemory(block), tmp)
	if err != nil || a == nil {
		t.Fatalf("agent: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
	if _, err := sshAgent([]byte("no key"), tmp); !errors.Is(err, ErrInput) || strings.Contains(err.Error(), "no key\"") {
		t.Errorf("not a key: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
	opt, err := (&BuildKit{}).solveOpt(Request{ContextDir: tmp, Dockerfile: writeDockerfile(t), SSHKey: pem.EncodeToMemory(block), TempDir: tmp, Out: Outputs{LayoutDir: t.TempDir()}}, false)
	if err != nil || len(opt.Session) != 2 {
		t.Errorf("session: %+v, %v", opt.Session, err)
	}
}

func writeDockerfile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "Dockerfile")
	os.WriteFile(p, []byte("FROM scratch\n"), 0o644)
	return p
}

// A registry's access is the executor's per-registry flags.
func TestKanikoRegistryArgs(t *testing.T) {
	t.Parallel()
	got := KanikoRegistry{Host: "reg.example.com", Mirrors: []string{"m1", "m2:5000"}, PlainHTTP: true, SkipVerify: true, CAFile: "/ca.pem"}.args()
	want := []string{"--registry-map=reg.example.com=m1", "--registry-map=reg.example.com=m2:5000", "--insecure-registry=reg.example.com",
		"--skip-tls-verify-registry=reg.example.com", "--registry-certificate=reg.example.com=/ca.pem"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got := (KanikoRegistry{Host: "r"}).args(); len(got) != 0 {
		t.Errorf("no access asked: %v", got)
	}
}
