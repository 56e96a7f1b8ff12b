package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// The CPU the content check of one layer costs (docs/benchmarks.md, "What
// the registry cannot check"): a 64 MiB layer of incompressible bytes,
// gzip level 1 as hoist and BuildKit's layouts carry it, decompressed and
// hashed against its diff_id; and an uncompressed one, hashed. The
// bytes/s reported are of the layer as stored.
//
//	go test -run '^$' -bench LayerCheck -benchtime 20x ./internal/source
func BenchmarkLayerCheck(b *testing.B) {
	raw := make([]byte, 64<<20)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(raw)
	diffID := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(raw))}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, 1)
	zw.Write(raw)
	zw.Close()
	for _, c := range []struct {
		name string
		mt   types.MediaType
		data []byte
	}{
		{"gzip", types.OCILayer, gz.Bytes()},
		{"uncompressed", types.OCIUncompressedLayer, raw},
	} {
		b.Run(c.name, func(b *testing.B) {
			check := layerCheck{mt: c.mt, diffID: diffID, file: "bench"}
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if err := check.check(context.Background(), bytes.NewReader(c.data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
