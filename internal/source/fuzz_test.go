package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// tarOf is a tar of the given files, in order.
func tarOf(files ...[2]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(f[1]))
	}
	tw.Close()
	return b.Bytes()
}

func sha(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// seedArchives are a minimal docker-archive (one gzip layer) and a minimal
// OCI archive of the same image, both valid.
func seedArchives() (docker, oci []byte) {
	content := tarOf([2]string{"hello.txt", "hello\n"})
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(content)
	zw.Close()
	layer := z.Bytes()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"config":{}}`, sha(content)))
	manifest, _ := json.Marshal([]map[string]any{{"Config": sha(cfg) + ".json", "RepoTags": []string{"app:1"}, "Layers": []string{sha(layer) + ".tar.gz"}}})
	docker = tarOf([2]string{sha(cfg) + ".json", string(cfg)}, [2]string{sha(layer) + ".tar.gz", string(layer)}, [2]string{"manifest.json", string(manifest)})
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}`, sha(cfg), len(cfg), sha(layer), len(layer)))
	idx := fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}`, sha(m), len(m))
	oci = tarOf([2]string{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`}, [2]string{"index.json", idx},
		[2]string{"blobs/sha256/" + sha(m), string(m)}, [2]string{"blobs/sha256/" + sha(cfg), string(cfg)}, [2]string{"blobs/sha256/" + sha(layer), string(layer)})
	return docker, oci
}

// Whatever bytes a tarball holds (docker-archive, OCI archive, compressed
// or not): opening and verifying it never panics and ends, and the valid
// seeds open and verify.
func FuzzOpenArchive(f *testing.F) {
	docker, oci := seedArchives()
	for _, seed := range [][]byte{docker, oci} {
		f.Add(seed)
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(seed)
		zw.Close()
		f.Add(z.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "image.tar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		img, err := Open(ctx, Request{TarPath: p, TempDir: dir})
		valid := bytes.Equal(data, docker) || bytes.Equal(data, oci)
		if err != nil {
			if valid {
				t.Fatalf("a valid seed is refused: %v", err)
			}
			return
		}
		defer img.Close()
		if err := img.CheckContent(ctx); err != nil && valid {
			t.Fatalf("a valid seed fails its check: %v", err)
		}
	})
}
