package cli

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"

	"github.com/hoist-build/hoist/internal/harness"
)

// paddedEmptyLayer is a gzip of an empty tar, exactly size bytes long
// (padded with the gzip header's FEXTRA field): what an attacker plants
// under a real layer's digest so that every size check passes.
func paddedEmptyLayer(t *testing.T, size int64) []byte {
	t.Helper()
	var tb bytes.Buffer
	tar.NewWriter(&tb).Close()
	gz := func(extra []byte) []byte {
		var zb bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
		zw.Extra = extra
		zw.Write(tb.Bytes())
		zw.Close()
		return zb.Bytes()
	}
	b := gz(nil)
	pad := size - int64(len(b)) - 2
	if pad < 0 {
		t.Fatalf("the genuine layer is %d bytes, the empty one %d", size, len(b))
	}
	b = gz(bytes.Repeat([]byte{'x'}, int(pad)))
	if int64(len(b)) != size {
		t.Fatalf("the padded layer is %d bytes, want %d", len(b), size)
	}
	return b
}

// fileSum is the sha256 of a file's bytes.
func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// vulnerableRelease builds and pushes release 1 of an image whose last
// layer holds a vulnerable musl (an earlier run: from then on the
// registry holds that layer), and returns the build context (with
// Dockerfile.2, release 2 of the same content) and that layer.
func vulnerableRelease(t *testing.T, f *harness.Fixtures, reg *harness.Registry) (string, v1.Descriptor) {
	t.Helper()
	files := apkImage("musl", "1.2.4-r2")
	files["Dockerfile.1"] = "FROM " + f.Base + "\nCOPY rootfs/ /\nLABEL release=1\n"
	files["Dockerfile.2"] = "FROM " + f.Base + "\nCOPY rootfs/ /\nLABEL release=2\n"
	ctxDir := buildContext(t, "FROM "+f.Base+"\n", files)
	r := hoistIn(t, t.TempDir(), merged(droneRun(11), buildEnv(t, ctxDir, "PLUGIN_DOCKERFILE", filepath.Join(ctxDir, "Dockerfile.1"),
		"PLUGIN_REPO", reg.Host+"/app", "PLUGIN_TAGS", "1")))
	if r.code != 0 {
		t.Fatalf("release 1:\n%s", r)
	}
	var m v1.Manifest
	if err := json.Unmarshal([]byte(reg.Crane(t, "manifest", reg.Host+"/app:1")), &m); err != nil {
		t.Fatal(err)
	}
	return ctxDir, m.Layers[len(m.Layers)-1]
}

// plantBlob writes the attacker's bytes under a layer's digest in the
// blobs of the layout (or store) dir.
func plantBlob(t *testing.T, dir string, layer v1.Descriptor) string {
	t.Helper()
	p := filepath.Join(dir, "blobs", "sha256", layer.Digest.Hex)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.Remove(p) // a link of the store's own blob, in a copy
	if err := os.WriteFile(p, paddedEmptyLayer(t, layer.Size), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A blob planted in the workspace image store (committed, or brought by
// a restored cache) under the digest of a layer this run's build makes
// is not kept: the build's store entry holds the build's bytes, so the
// push-only step's scan reads the vulnerable layer, the gate fails and
// nothing is pushed. (The registry already holds the genuine layer from
// an earlier release, so nothing would ever have checked the planted
// bytes: they would have been scanned, "passed", and the genuine image
// pushed under that verdict.)
func TestStoreKeepsOnlyBlobsItWrote(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir, vuln := vulnerableRelease(t, f, reg)

	dir := t.TempDir()
	p := plantBlob(t, filepath.Join(dir, ".hoist", "images"), vuln)
	if fileSum(t, p) == vuln.Digest.Hex {
		t.Fatal("the planted blob is the genuine layer: the test proves nothing")
	}
	r := hoistIn(t, dir, merged(droneRun(12), buildEnv(t, ctxDir, "PLUGIN_DOCKERFILE", filepath.Join(ctxDir, "Dockerfile.2"),
		"PLUGIN_NO_PUSH", "true", "PLUGIN_REPO", reg.Host+"/app", "PLUGIN_TAGS", "2")))
	if r.code != 0 {
		t.Fatalf("build-only:\n%s", r)
	}
	built := strings.TrimSpace(r.stdout)
	if got := fileSum(t, p); got != vuln.Digest.Hex {
		t.Errorf("the store's blob %s holds bytes of sha256:%s after this run's build: the planted blob was kept", p, got)
	}
	if !slices.Contains(layersOfLayout(t, filepath.Join(dir, ".hoist", "images"), built), vuln.Digest.String()) {
		t.Fatalf("the build %s lacks the layer %s: the test proves nothing", built, vuln.Digest)
	}

	r = hoistIn(t, dir, merged(droneRun(12), scanEnv(t, k, "PLUGIN_PUSH_ONLY", "true", "PLUGIN_SCAN", "true",
		"PLUGIN_REPO", reg.Host+"/app", "PLUGIN_TAGS", "2")))
	if r.code != ExitScan {
		t.Errorf("push-only with PLUGIN_SCAN of the vulnerable build: exit %d, want %d\n%s", r.code, ExitScan, r)
	}
	assertContains(t, r, "scan gate failed for "+built)
	if tags := tagsOf(t, reg, "app"); slices.Contains(tags, "2") {
		t.Errorf("the image was pushed: %v", tags)
	}
	if rec := record(t, filepath.Join(dir, ".hoist", "scans"), built); rec["passed"] != false {
		t.Errorf("the record of %s says passed=%v", built, rec["passed"])
	}
}

// layersOfLayout lists the layer digests of the manifest digest in an
// OCI layout directory.
func layersOfLayout(t *testing.T, dir, digest string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// A scan reads only bytes that are checked: an OCI layout whose layer
// file holds other bytes than its digest (and config) say is refused
// before Trivy reads it (exit 3, naming the layer), even when this run's
// build made a layer of that digest (that build vouches for the store's
// blob it wrote, not for a file of that name elsewhere). Without the
// check, Trivy scans the planted bytes and records "passed" for the
// genuine image's digest, which the registry then serves.
func TestScanReadsOnlyCheckedBytes(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir, vuln := vulnerableRelease(t, f, reg)

	dir := t.TempDir()
	r := hoistIn(t, dir, merged(droneRun(12), buildEnv(t, ctxDir, "PLUGIN_DOCKERFILE", filepath.Join(ctxDir, "Dockerfile.2"),
		"PLUGIN_NO_PUSH", "true", "PLUGIN_REPO", reg.Host+"/app", "PLUGIN_TAGS", "2")))
	if r.code != 0 {
		t.Fatalf("build-only:\n%s", r)
	}
	built := strings.TrimSpace(r.stdout)
	// A layout of the same image (what a repository commits, or a
	// restored cache brings), its vulnerable layer replaced.
	layout := filepath.Join(dir, "vendor", "image")
	copyLayout(t, filepath.Join(dir, ".hoist", "images"), layout)
	plantBlob(t, layout, vuln)

	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"hoist scan", []string{"scan", layout}, nil},
		{"push-only with PLUGIN_SCAN", nil, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SCAN": "true", "PLUGIN_SOURCE_TAR_PATH": layout,
			"PLUGIN_REPO": reg.Host + "/scanned/app", "PLUGIN_TAGS": "2"}},
	} {
		senv := scanEnv(t, k)
		cache := senv["PLUGIN_SCAN_CACHE_DIR"]
		r := hoistIn(t, dir, merged(droneRun(12), senv, c.env), c.args...)
		// Trivy kept no analysis of the planted bytes in its layer cache,
		// where it would answer for the genuine diff_id in a later scan:
		// the gate's Trivy runs on its in-memory cache. (The cache is the
		// one Trivy used: its database is there.)
		if _, err := os.Stat(filepath.Join(cache, "db", "trivy.db")); err != nil {
			t.Errorf("%s: the scan's cache holds no database: %v", c.name, err)
		}
		if _, err := os.Stat(filepath.Join(cache, "fanal")); err == nil {
			t.Errorf("%s: Trivy's layer cache %s/fanal holds an analysis of unchecked bytes", c.name, cache)
		}
		if r.code != ExitSource {
			t.Errorf("%s of a layout with a planted layer: exit %d, want %d\n%s", c.name, r.code, ExitSource, r)
		}
		assertContains(t, r, "blobs/sha256/"+vuln.Digest.Hex+" of OCI layout "+layout, "but the image config says its content is")
		assertNotContains(t, r, "passed (")
		if _, err := os.Stat(filepath.Join(dir, ".hoist", "scans", "sha256", strings.TrimPrefix(built, "sha256:")+".json")); err == nil {
			t.Errorf("%s: a scan record of %s was written", c.name, built)
		}
	}
	if tags := tagsOf(t, reg, "scanned/app"); len(tags) > 0 {
		t.Errorf("pushed: %v", tags)
	}
	// Trivy run by itself on the same layout keeps its analysis in
	// <cache>/fanal: the place the checks above look is where it would be.
	cache := scanEnv(t, k)["PLUGIN_SCAN_CACHE_DIR"]
	harness.Run(t, nil, k.Trivy, "image", "--input", layout, "--cache-dir", cache, "--skip-db-update", "--offline-scan", "--scanners", "secret", "--quiet")
	if _, err := os.Stat(filepath.Join(cache, "fanal", "fanal.db")); err != nil {
		t.Errorf("Trivy with its default cache kept no layer analysis in %s/fanal: %v", cache, err)
	}
}

// A push-only step that names its source by tag (the mission's
// promotion: staging/app:1 to prod/app:1) takes the registry's image,
// not a store entry of that name which this run did not make (committed
// to the repository, or from a restored cache): the entry is skipped with
// a line that says why, and the lookup goes on.
func TestStoreByNameTakesOnlyThisRunsEntries(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": f.Base, "PLUGIN_DESTINATIONS": reg.Host + "/staging/app:1"})
	staging := digestOf(t, reg, reg.Host+"/staging/app:1")

	for _, c := range []struct {
		name   string
		env    map[string]string
		commit bool
		why    string
	}{
		{"committed, CI run", droneRun(12), true, "it names no run"},
		{"committed, no run identity", hostPath(), true, "tracks it"},
		{"another run's", droneRun(13), false, "made by another run than this one"},
	} {
		dir := t.TempDir()
		_, planted := plantStore(t, f, dir, reg.Host+"/staging/app:1", false)
		if planted.String() == staging {
			t.Fatal("the planted entry is the staging image: the test proves nothing")
		}
		if c.name == "another run's" {
			idx := layoutIndex(t, filepath.Join(dir, ".hoist", "images"))
			idx.Manifests[0].Annotations["io.github.hoist-build.run"] = runIDOf(droneRun(11))
			writeJSON(t, filepath.Join(dir, ".hoist", "images", "index.json"), idx)
		}
		if c.commit {
			gitCommitAll(t, dir)
		}
		repo := "prod/" + strings.ToLower(strings.NewReplacer(" ", "-", ",", "", "'", "").Replace(c.name))
		r := hoistIn(t, dir, merged(c.env, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": reg.Host + "/staging/app:1",
			"PLUGIN_DESTINATIONS": reg.Host + "/" + repo + ":1"}))
		if r.code != 0 {
			t.Fatalf("%s: promotion:\n%s", c.name, r)
		}
		if got := digestOf(t, reg, reg.Host+"/"+repo+":1"); got != staging {
			t.Errorf("%s: pushed %s, staging/app:1 is %s (the planted entry %s)", c.name, got, staging, planted)
		}
		assertContains(t, r, "the workspace image store's entry "+planted.String()+" for "+reg.Host+"/staging/app:1 is not this run's", c.why,
			"skipped; looking further", "source: registry image "+reg.Host+"/staging/app:1")
	}
}
