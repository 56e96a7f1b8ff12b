package source

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/runid"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// skopeoInspect reads an image with skopeo, a client that is not hoist's.
func skopeoInspect(t *testing.T, ref string) (digest string, layers []string) {
	t.Helper()
	out := harness.Run(t, nil, "skopeo", "inspect", ref)
	var v struct {
		Digest string
		Layers []string
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
	}
	return v.Digest, v.Layers
}

// Inputs that docker save and skopeo wrote open as the image they hold:
// from an OCI layout or archive the digest is the one skopeo reads (the
// bytes are pushed as they are); from a docker-archive the layers are the
// ones skopeo lists.
func TestOpenThirdPartyInputs(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	for _, c := range []struct {
		path, skopeo string
		sameDigest   bool
	}{
		{f.SkopeoLayout, "oci:" + f.SkopeoLayout + ":1", true},
		{f.SkopeoOCIArch, "oci-archive:" + f.SkopeoOCIArch, true},
		{f.SkopeoArchive, "docker-archive:" + f.SkopeoArchive, false},
		{f.DockerSave, "docker-archive:" + f.DockerSave, false},
	} {
		img, err := Open(context.Background(), Request{TarPath: c.path, TempDir: t.TempDir()})
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		digest, layers := skopeoInspect(t, c.skopeo)
		if c.sameDigest && img.Digest.String() != digest {
			t.Errorf("%s: digest %s, skopeo reads %s", c.path, img.Digest, digest)
		}
		vimg, ok := img.Artifact.(v1.Image)
		if !ok {
			t.Fatalf("%s: %T is not an image", c.path, img.Artifact)
		}
		cfg, err := vimg.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if !c.sameDigest {
			// A docker-archive lists its (uncompressed) layers by diff id.
			var ids []string
			for _, d := range cfg.RootFS.DiffIDs {
				ids = append(ids, d.String())
			}
			if fmt.Sprint(ids) != fmt.Sprint(layers) {
				t.Errorf("%s: diff ids %v, skopeo lists %v", c.path, ids, layers)
			}
		}
		img.Close()
	}
	idx, err := Open(context.Background(), Request{TarPath: f.MultiLayout, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	im, err := idx.Artifact.(v1.ImageIndex).IndexManifest()
	if err != nil || len(im.Manifests) != 2 {
		t.Errorf("the two-platform layout opens as %v (%v)", im, err)
	}
}

// Steps of one workspace store their images at once: every image is found
// afterwards, and no blob or entry is lost.
func TestStoreConcurrently(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	store := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := StoreImage(context.Background(), "", store, f.SkopeoLayout, []string{fmt.Sprintf("registry.example.com/app:%d", i)}, runid.Run{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	want, _ := skopeoInspect(t, "oci:"+f.SkopeoLayout+":1")
	for i := 0; i < 8; i++ {
		img, err := Open(context.Background(), Request{Image: fmt.Sprintf("registry.example.com/app:%d", i), Store: store, TempDir: t.TempDir()})
		if err != nil {
			t.Errorf("image %d: %v", i, err)
			continue
		}
		if img.Digest.String() != want {
			t.Errorf("image %d: %s, want %s", i, img.Digest, want)
		}
		img.Close()
	}
}

// A scanner reads a docker save archive in place, or, when its cache
// holds the layers, a layout of the manifest and config alone, which
// skopeo reads as the same image; release removes that layout.
func TestScanTargetsOfADockerArchive(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	tmp := t.TempDir()
	img, err := Open(context.Background(), Request{TarPath: f.DockerSave, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	targets, release, err := img.ScanTargets(tmp)
	if err != nil || len(targets) != 1 {
		t.Fatalf("scan targets %v: %v", targets, err)
	}
	tg := targets[0]
	dir, digest, ok := strings.Cut(tg.Layerless, "@")
	if tg.Input != f.DockerSave || !ok || digest != img.Digest.String() {
		t.Fatalf("scan target %+v of %s (%s)", tg, f.DockerSave, img.Digest)
	}
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil || len(blobs) != 2 {
		t.Errorf("the layerless layout holds %d blobs (%v), want the manifest and the config", len(blobs), err)
	}
	out := harness.Run(t, nil, "skopeo", "inspect", "--raw", "oci:"+dir)
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.Config.Digest != tg.Config.String() || len(m.Layers) != len(tg.DiffIDs) {
		t.Errorf("skopeo reads the layerless layout as %s (%v), want config %s and %d layers", out, err, tg.Config, len(tg.DiffIDs))
	}
	release()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("release left %s: %v", dir, err)
	}
}
