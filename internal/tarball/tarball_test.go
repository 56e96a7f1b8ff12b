package tarball

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// A docker tarball written from skopeo's layout loads into a real Docker
// daemon under its names and runs; an OCI one is read by skopeo with the
// layout's digest.
func TestWriteLoadsAndRuns(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	dir := t.TempDir()
	ref := "hoist-test/tarball:" + strings.ToLower(t.Name())
	docker := filepath.Join(dir, "docker.tar")
	out, err := os.Create(docker)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(context.Background(), out, f.SkopeoLayout, Docker, []string{"index.docker.io/" + ref}); err != nil {
		t.Fatal(err)
	}
	out.Close()
	f.Docker.Run(t, "load", "-q", "-i", docker)
	t.Cleanup(func() { f.Docker.Run(t, "rmi", "-f", ref) })
	if got := strings.TrimSpace(f.Docker.Run(t, "run", "--rm", "--network", "host", ref, "cat", "/built.txt")); got != f.Built {
		t.Errorf("the loaded image prints %q, want %q", got, f.Built)
	}

	oci := filepath.Join(dir, "oci.tar")
	out, _ = os.Create(oci)
	if err := Write(context.Background(), out, f.SkopeoLayout, OCI, nil); err != nil {
		t.Fatal(err)
	}
	out.Close()
	var idx struct {
		Manifests []struct{ Digest string }
	}
	b, _ := os.ReadFile(filepath.Join(f.SkopeoLayout, "index.json"))
	json.Unmarshal(b, &idx)
	raw := harness.Run(t, nil, "skopeo", "inspect", "oci-archive:"+oci)
	var got struct{ Digest string }
	json.Unmarshal([]byte(raw), &got)
	if len(idx.Manifests) != 1 || got.Digest != idx.Manifests[0].Digest {
		t.Errorf("skopeo reads digest %s from the OCI tarball; the layout holds %v", got.Digest, idx.Manifests)
	}
}

// A cancelled write stops.
func TestWriteStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var b strings.Builder
	if err := Write(ctx, &b, f.SkopeoLayout, Docker, nil); err == nil {
		t.Error("a cancelled write succeeded")
	}
}
