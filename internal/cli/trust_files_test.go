package cli

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hoist-build/hoist/internal/harness"
)

// Files hoist writes in the workspace follow no symbolic link out of it
// (internal/files.Workspace): the repository, an earlier step or a
// restored cache may have put image.tar -> /root/.ssh/authorized_keys
// there. Each case: the step fails with exit 2 naming the link, before
// anything is built or pushed, and the file outside keeps its content
// and mtime; a link that stays inside the workspace works.

// outsideDir is a directory outside every workspace holding one file; it
// must hold exactly that when the test ends.
func outsideDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	outsideFileIn(t, filepath.Join(dir, "keep"), "kept")
	t.Cleanup(func() {
		var all []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && p != dir {
				r, _ := filepath.Rel(dir, p)
				all = append(all, r)
			}
			return nil
		})
		if strings.Join(all, " ") != "keep" {
			t.Errorf("%s, outside the workspace, now holds %v", dir, all)
		}
	})
	return dir
}

func outsideFileIn(t *testing.T, p, content string) {
	os.WriteFile(p, []byte(content), 0o600)
}

// randomTarball writes an image that crane and hoist can read (made by
// go-containerregistry, not by hoist) and returns its manifest digest.
func randomTarball(t *testing.T, path string) string {
	t.Helper()
	img, _ := random.Image(1024, 2)
	if err := tarball.WriteToFile(path, name.MustParseReference("app:1"), img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// uncompressedArchive writes a docker-archive with one uncompressed
// layer (as docker save writes them): pushing it compresses the layer,
// through the workspace's compression cache.
func uncompressedArchive(t *testing.T, path string) {
	t.Helper()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 6, Typeflag: tar.TypeReg})
	tw.Write([]byte("hello\n"))
	tw.Close()
	sum := func(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"config":{}}`, sum(layer.Bytes())))
	manifest, _ := json.Marshal([]map[string]any{{"Config": sum(cfg) + ".json", "RepoTags": []string{"app:1"}, "Layers": []string{"layer.tar"}}})
	var out bytes.Buffer
	aw := tar.NewWriter(&out)
	for _, f := range []struct {
		n string
		b []byte
	}{{sum(cfg) + ".json", cfg}, {"layer.tar", layer.Bytes()}, {"manifest.json", manifest}} {
		aw.WriteHeader(&tar.Header{Name: f.n, Mode: 0o644, Size: int64(len(f.b)), Typeflag: tar.TypeReg})
		aw.Write(f.b)
	}
	aw.Close()
	os.WriteFile(path, out.Bytes(), 0o644)
}

// assertLinkOut checks a refused step: exit 2, the link named, nothing
// pushed to repo.
func assertLinkOut(t *testing.T, what string, r result, reg *harness.Registry, repo, link string) {
	t.Helper()
	if r.code != 2 || !strings.Contains(r.stderr, link+" is a symbolic link to ") || !strings.Contains(r.stderr, "hoist writes nothing through it") {
		t.Errorf("%s: exit %d, want 2 naming the link %s:\n%s", what, r.code, link, r)
	}
	if reg != nil {
		if tags := tagsOf(t, reg, repo); len(tags) > 0 {
			t.Errorf("%s: %s was pushed (%v) though the step failed", what, repo, tags)
		}
	}
}

// The digest file, DRONE_OUTPUT inside the workspace and the artifact
// file: each a link out is refused before the push; links inside work
// (the link kept, its target written).
func TestOutputsFollowNoLinkOut(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	src := filepath.Join(t.TempDir(), "image.tar")
	digest := randomTarball(t, src)
	secret := harness.Untouched(t, filepath.Join(t.TempDir(), "authorized_keys"), "ssh-ed25519 AAAA the-real-key")
	env := func(ws, repo string) map[string]string {
		return map[string]string{
			"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": src, "PLUGIN_REPO": reg.Host + "/" + repo, "PLUGIN_TAGS": "1",
			"PLUGIN_DIGEST_FILE": "digest", "DRONE_OUTPUT": filepath.Join(ws, "drone.env"), "PLUGIN_ARTIFACT_FILE": "artifact.json",
		}
	}
	for i, link := range []string{"digest", "drone.env", "artifact.json"} {
		ws := t.TempDir()
		os.Symlink(secret, filepath.Join(ws, link))
		repo := fmt.Sprintf("out%d/app", i)
		assertLinkOut(t, link, hoistIn(t, ws, env(ws, repo)), reg, repo, filepath.Join(ws, link))
	}
	// A relative link up and out, and .hoist-like directories are the
	// same: the directory of DRONE_OUTPUT a link out.
	ws := t.TempDir()
	rel, _ := filepath.Rel(ws, filepath.Dir(secret))
	os.Symlink(rel, filepath.Join(ws, "ci"))
	e := env(ws, "outdir/app")
	e["DRONE_OUTPUT"] = filepath.Join(ws, "ci", "authorized_keys")
	assertLinkOut(t, "a directory link", hoistIn(t, ws, e), reg, "outdir/app", filepath.Join(ws, "ci"))

	// Inside: every output a link to a file in out/.
	ws = t.TempDir()
	os.MkdirAll(filepath.Join(ws, "out"), 0o755)
	for _, link := range []string{"digest", "drone.env", "artifact.json"} {
		os.Symlink(filepath.Join("out", link), filepath.Join(ws, link))
	}
	r := hoistIn(t, ws, env(ws, "in/app"))
	if r.code != 0 {
		t.Fatalf("links inside the workspace:\n%s", r)
	}
	if got := digestOf(t, reg, reg.Host+"/in/app:1"); got != digest {
		t.Errorf("the registry holds %s, want %s", got, digest)
	}
	for link, want := range map[string]string{"digest": digest + "\n", "drone.env": "digest=" + digest, "artifact.json": `"digest": "` + digest + `"`} {
		if fi, _ := os.Lstat(filepath.Join(ws, link)); fi == nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a link", link)
		}
		if b, _ := os.ReadFile(filepath.Join(ws, "out", link)); !strings.Contains(string(b), want) {
			t.Errorf("out/%s holds %q, want %q", link, b, want)
		}
	}
}

// The tarball of a build-only step: image.tar -> an authorized_keys out
// of the workspace is refused before the build; a link to out/image.tar
// gets the tarball there.
func TestTarballFollowsNoLinkOut(t *testing.T) {
	t.Parallel()
	secret := harness.Untouched(t, filepath.Join(t.TempDir(), "authorized_keys"), "ssh-ed25519 AAAA the-real-key")
	build := func(ws string) result {
		os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM scratch\nCOPY note.txt /note.txt\n"), 0o644)
		os.WriteFile(filepath.Join(ws, "note.txt"), []byte("note"), 0o644)
		return hoistIn(t, ws, buildEnv(t, ws, "PLUGIN_NO_PUSH", "true", "PLUGIN_REPO", "local/app", "PLUGIN_TAGS", "1", "PLUGIN_TAR_PATH", "image.tar"))
	}
	ws := t.TempDir()
	os.Symlink(secret, filepath.Join(ws, "image.tar"))
	r := build(ws)
	assertLinkOut(t, "image.tar", r, nil, "", filepath.Join(ws, "image.tar"))
	if strings.Contains(r.stderr, "built sha256:") {
		t.Errorf("the image was built before the tarball was refused:\n%s", r)
	}

	ws = t.TempDir()
	os.MkdirAll(filepath.Join(ws, "out"), 0o755)
	os.Symlink(filepath.Join("out", "image.tar"), filepath.Join(ws, "image.tar"))
	r = build(ws)
	if r.code != 0 {
		t.Fatalf("a link inside the workspace:\n%s", r)
	}
	if fi, _ := os.Lstat(filepath.Join(ws, "image.tar")); fi == nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("image.tar is no longer a link")
	}
	// skopeo and crane, not hoist, read the tarball: it holds the image
	// built (the manifest the build reported, as skopeo reads it from the
	// tarball's OCI index; the image ID skopeo reads is the one crane
	// pushed from it; the file the Dockerfile copied).
	tar := filepath.Join(ws, "out", "image.tar")
	if got, want := manifestDigestOf(t, "oci-archive:"+tar), strings.TrimSpace(r.stdout); got != want {
		t.Errorf("the tarball through the link holds %s, the build reported %s", got, want)
	}
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	reg.Crane(t, "push", tar, reg.Host+"/tar/app:1")
	if got, want := imageIDAt(t, reg, reg.Host+"/tar/app:1"), imageIDOf(t, "docker-archive:"+tar); got != want {
		t.Errorf("crane pushed the image %s from the tarball, skopeo reads %s", got, want)
	}
	if got := fileOf(t, reg, reg.Host+"/tar/app:1", "note.txt"); got != "note" {
		t.Errorf("the tarball's image holds note.txt %q", got)
	}
}

// The state directory itself (.hoist) a link out of the workspace: the
// image store a build-only step records in, the compression cache a push
// of uncompressed layers fills, the scan records, the pipeline's
// sequence counter and a --report file are all refused with exit 2,
// nothing is pushed, and the directory outside is left as it was. With
// .hoist a link to a directory inside, the store works.
func TestStateDirLinkOutIsRefused(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	state := outsideDir(t)
	workspace := func() string {
		ws := t.TempDir()
		os.Symlink(state, filepath.Join(ws, ".hoist"))
		os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM scratch\nCOPY note.txt /note.txt\n"), 0o644)
		os.WriteFile(filepath.Join(ws, "note.txt"), []byte("note"), 0o644)
		return ws
	}

	// The image store of a build-only step.
	ws := workspace()
	r := hoistIn(t, ws, buildEnv(t, ws, "PLUGIN_NO_PUSH", "true", "PLUGIN_REPO", reg.Host+"/store/app", "PLUGIN_TAGS", "1"))
	assertLinkOut(t, "the image store", r, reg, "store/app", filepath.Join(ws, ".hoist"))

	// The compression cache of a push of uncompressed layers.
	ws = workspace()
	src := filepath.Join(t.TempDir(), "saved.tar")
	uncompressedArchive(t, src)
	r = hoistIn(t, ws, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": src, "PLUGIN_REPO": reg.Host + "/cache/app", "PLUGIN_TAGS": "1"})
	assertLinkOut(t, "the compression cache", r, reg, "cache/app", filepath.Join(ws, ".hoist"))

	// The scan records of a scanning push (refused before Trivy is
	// looked for).
	ws = workspace()
	r = hoistIn(t, ws, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": src, "PLUGIN_REPO": reg.Host + "/scan/app", "PLUGIN_TAGS": "1",
		"PLUGIN_SCAN": "true", "PLUGIN_COMPRESS_CACHE": ""})
	assertLinkOut(t, "the scan records", r, reg, "scan/app", filepath.Join(ws, ".hoist"))

	// The pipeline's sequence counter, and a --report link out.
	ws = workspace()
	os.WriteFile(filepath.Join(ws, "p.yaml"), []byte(`pipeline:
  identifier: p
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: r, type: Run, spec: {command: "true"}}
`), 0o644)
	penv := map[string]string{"PATH": os.Getenv("PATH"), "HOME": t.TempDir()}
	r = hoistIn(t, ws, penv, "pipeline", "run", "p.yaml", "--local")
	assertLinkOut(t, "the sequence counter", r, nil, "", filepath.Join(ws, ".hoist"))
	report := harness.Untouched(t, filepath.Join(t.TempDir(), "authorized_keys"), "not a report")
	os.Remove(filepath.Join(ws, ".hoist"))
	os.Symlink(report, filepath.Join(ws, "report.json"))
	r = hoistIn(t, ws, penv, "pipeline", "run", "p.yaml", "--local", "--report", "report.json")
	if r.code == 0 || !strings.Contains(r.stderr, filepath.Join(ws, "report.json")+" is a symbolic link to "+report) {
		t.Errorf("--report through a link out: exit %d:\n%s", r.code, r)
	}

	// .hoist a link to a directory inside: the store is written there.
	ws = t.TempDir()
	os.MkdirAll(filepath.Join(ws, "ci-state"), 0o755)
	os.Symlink("ci-state", filepath.Join(ws, ".hoist"))
	os.WriteFile(filepath.Join(ws, "Dockerfile"), []byte("FROM scratch\nCOPY note.txt /note.txt\n"), 0o644)
	os.WriteFile(filepath.Join(ws, "note.txt"), []byte("note"), 0o644)
	r = hoistIn(t, ws, buildEnv(t, ws, "PLUGIN_NO_PUSH", "true", "PLUGIN_REPO", reg.Host+"/store/app", "PLUGIN_TAGS", "1"))
	if r.code != 0 {
		t.Fatalf("a .hoist link inside the workspace:\n%s", r)
	}
	if _, err := os.Stat(filepath.Join(ws, "ci-state", "images", "index.json")); err != nil {
		t.Errorf("the store is not in ci-state: %v\n%s", err, r)
	}
}

// hoist scan's reports and records: a report that is a link out of the
// workspace, a report directory that is one, and a records directory
// that is one are refused with exit 2 before Trivy runs; with links
// inside (a JSON report, a SARIF report Trivy converts, .hoist itself),
// the reports and the record are written through them.
func TestScanFilesFollowNoLinkOut(t *testing.T) {
	t.Parallel()
	k := harness.Scan(t)
	src := filepath.Join(t.TempDir(), "image.tar")
	randomTarball(t, src)
	secret := harness.Untouched(t, filepath.Join(t.TempDir(), "authorized_keys"), "ssh-ed25519 AAAA the-real-key")
	dir := outsideDir(t)
	for what, c := range map[string]struct {
		link, to string
		env      []string
	}{
		"a JSON report":         {"report.json", secret, []string{"PLUGIN_SCAN_FORMAT", "json", "PLUGIN_SCAN_OUTPUT", "report.json"}},
		"a SARIF report's dir":  {"reports", dir, []string{"PLUGIN_SCAN_FORMAT", "sarif", "PLUGIN_SCAN_OUTPUT", "reports/r.sarif"}},
		"the records directory": {"records", dir, []string{"PLUGIN_SCAN_RECORDS", "records"}},
	} {
		ws := t.TempDir()
		os.Symlink(c.to, filepath.Join(ws, c.link))
		r := hoistIn(t, ws, scanEnv(t, k, c.env...), "scan", src)
		assertLinkOut(t, what, r, nil, "", filepath.Join(ws, c.link))
	}

	ws := t.TempDir()
	os.MkdirAll(filepath.Join(ws, "out"), 0o755)
	os.MkdirAll(filepath.Join(ws, "ci-state"), 0o755)
	os.Symlink(filepath.Join("out", "r.json"), filepath.Join(ws, "report.json"))
	os.Symlink(filepath.Join(ws, "out", "r.sarif"), filepath.Join(ws, "report.sarif"))
	os.Symlink("ci-state", filepath.Join(ws, ".hoist"))
	r := hoistIn(t, ws, scanEnv(t, k, "PLUGIN_SCAN_FORMAT", "json,sarif", "PLUGIN_SCAN_OUTPUT", "report.json,report.sarif"), "scan", src)
	if r.code != 0 {
		t.Fatalf("links inside the workspace:\n%s", r)
	}
	for link, want := range map[string]string{"report.json": `"SchemaVersion"`, "report.sarif": `"$schema"`} {
		if fi, _ := os.Lstat(filepath.Join(ws, link)); fi == nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a link", link)
		}
		if b, _ := os.ReadFile(filepath.Join(ws, link)); !strings.Contains(string(b), want) {
			t.Errorf("%s's target holds no report: %.200q", link, b)
		}
	}
	if recs, _ := filepath.Glob(filepath.Join(ws, "ci-state", "scans", "sha256", "*.json")); len(recs) == 0 {
		t.Errorf("no scan record under ci-state/scans:\n%s", r)
	}
}
