package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hoist-build/hoist/internal/harness"
)

// The workspace state (.hoist: scan records, the compression cache, the
// image store) is written by whoever can write the checkout: the
// repository itself (committed), a restored cache, an earlier run. These
// tests plant state as such an attacker would, and check that it vouches
// for nothing unless hoist made it in this run.

const droneCommit = "0123456789abcdef0123456789abcdef01234567"

// droneRun is what Drone's runner sets for build n of acme/app.
func droneRun(n int) map[string]string {
	return map[string]string{"CI": "true", "DRONE": "true", "DRONE_REPO": "acme/app", "DRONE_BUILD_NUMBER": fmt.Sprint(n),
		"DRONE_COMMIT_SHA": droneCommit, "DRONE_STEP_NAME": "publish"}
}

// hostPath is a PATH with git, for the runs without a run identity.
func hostPath() map[string]string { return map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin"} }

// gitCommitAll makes dir a git repository whose one commit holds every
// file in it: the state a repository brings with its checkout.
func gitCommitAll(t *testing.T, dir string) {
	t.Helper()
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"-c", "user.name=attacker", "-c", "user.email=a@example.com", "commit", "-q", "-m", "state"}} {
		harness.Run(t, nil, "git", append([]string{"-C", dir}, args...)...)
	}
	if out := harness.Run(t, nil, "git", "-C", dir, "ls-files", ".hoist"); out == "" {
		t.Fatalf("git tracks nothing under %s/.hoist", dir)
	}
}

// layersOf reads ref's layer digests back with crane.
func layersOf(t *testing.T, reg *harness.Registry, ref string) []string {
	t.Helper()
	var m v1.Manifest
	if err := json.Unmarshal([]byte(reg.Crane(t, "manifest", ref)), &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// writeJSON writes v to path, making its directory.
func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A compressed layer planted in the compression cache under a real
// layer's diff_id (a blob and its record, sizes matching) is never pushed
// as that layer: the push sends the real layer (crane reads back the
// digests an untouched workspace pushes), whether the planted entry has
// no run identity in a CI run, is committed to the repository, or the
// step has no run identity. An entry this run made is reused without a
// check; another run's good entry is checked, then reused.
func TestCompressCacheTrust(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	push := func(dir, repo string, env ...map[string]string) result {
		return hoistIn(t, dir, merged(append([]map[string]string{{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
			"PLUGIN_REPO": reg.Host + "/" + repo, "PLUGIN_TAGS": "1"}}, env...)...))
	}

	// The real compressed layers, from a workspace of its own.
	clean := t.TempDir()
	if r := push(clean, "real/app"); r.code != 0 {
		t.Fatalf("push from a clean workspace:\n%s", r)
	}
	real := layersOf(t, reg, reg.Host+"/real/app:1")
	entries, _ := filepath.Glob(filepath.Join(clean, ".hoist", "compressed", "gzip-1", "*.json"))
	if len(entries) == 0 || len(entries) != len(real) {
		t.Fatalf("the compression cache holds %v for layers %v", entries, real)
	}
	evil := otherLayer(t)
	planted, _, _ := v1.SHA256(bytes.NewReader(evil))
	plant := func(dir string) {
		for _, e := range entries {
			base := filepath.Join(dir, ".hoist", "compressed", "gzip-1", strings.TrimSuffix(filepath.Base(e), ".json"))
			writeJSON(t, base+".json", map[string]any{"digest": planted.String(), "size": len(evil)})
			if err := os.WriteFile(base+".gz", evil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(what string, r result, ref string) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("%s:\n%s", what, r)
		}
		if got := layersOf(t, reg, ref); !slices.Equal(got, real) {
			t.Errorf("%s: %s holds layers %v, want %v (planted %s)", what, ref, got, real, planted)
		}
	}

	// In a CI run: the planted entries name no run; checked, found bad,
	// compressed afresh.
	ci := t.TempDir()
	plant(ci)
	r := push(ci, "ci/app", droneRun(12))
	check("planted, CI run", r, reg.Host+"/ci/app:1")
	assertContains(t, r, "is not this run's", "and it decompresses to sha256:", "not to its diff_id: compressed afresh")
	// Now this run's: reused as it is by its next step.
	r = push(ci, "ci/again", droneRun(12))
	check("this run's entry", r, reg.Host+"/ci/again:1")
	assertContains(t, r, "(from the compression cache "+filepath.Join(ci, ".hoist", "compressed")+")")
	assertNotContains(t, r, "is not this run's")
	// The next run checks it, and reuses it.
	r = push(ci, "ci/next", droneRun(13))
	check("an earlier run's good entry", r, reg.Host+"/ci/next:1")
	assertContains(t, r, "is not this run's", "checked: it decompresses to its diff_id; reused")

	// Committed to the repository, no run identity.
	repo := t.TempDir()
	plant(repo)
	gitCommitAll(t, repo)
	r = push(repo, "committed/app", hostPath())
	check("planted, committed", r, reg.Host+"/committed/app:1")
	assertContains(t, r, "the repository "+repo+" tracks it", "compressed afresh")
}

// copyLayout copies an OCI layout directory.
func copyLayout(t *testing.T, from, to string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(to), 0o755)
	harness.Run(t, nil, "cp", "-r", from, to)
}

// layoutIndex reads a layout's index.json.
func layoutIndex(t *testing.T, dir string) v1.IndexManifest {
	t.Helper()
	var idx v1.IndexManifest
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

// plantStore makes dir/.hoist/images the image store an attacker would
// commit: skopeo's layout of the fixture app, its one image named name,
// with the first layer replaced by other content under its own digest
// when lie is set (the config's diff_id unchanged: every blob is what its
// digest says, and the image is not what its config says).
func plantStore(t *testing.T, f *harness.Fixtures, dir, name string, lie bool) (store string, digest v1.Hash) {
	t.Helper()
	store = filepath.Join(dir, ".hoist", "images")
	copyLayout(t, f.SkopeoLayout, store)
	idx := layoutIndex(t, store)
	d := idx.Manifests[0]
	if lie {
		blobs := filepath.Join(store, "blobs", "sha256")
		var m v1.Manifest
		b, _ := os.ReadFile(filepath.Join(blobs, d.Digest.Hex))
		json.Unmarshal(b, &m)
		evil := otherLayer(t)
		h, size, _ := v1.SHA256(bytes.NewReader(evil))
		os.WriteFile(filepath.Join(blobs, h.Hex), evil, 0o644)
		m.Layers[0].Digest, m.Layers[0].Size = h, size
		raw, _ := json.Marshal(m)
		d.Digest, d.Size, _ = v1.SHA256(bytes.NewReader(raw))
		os.WriteFile(filepath.Join(blobs, d.Digest.Hex), raw, 0o644)
	}
	d.Annotations = map[string]string{"org.opencontainers.image.ref.name": name}
	idx.Manifests = []v1.Descriptor{d}
	writeJSON(t, filepath.Join(store, "index.json"), idx)
	return store, d.Digest
}

// The workspace image store: an entry this run's build did not write
// vouches for no layer (a planted entry whose layer is not what its
// config says is refused, exit 3, nothing tagged), is not the lone image
// a push-only step falls back to (it is pushed only when named), while
// this run's build's entry still is.
func TestImageStoreTrust(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})

	// A planted entry that lies about its layer: by name, it is not
	// taken (TestStoreByNameTakesOnlyThisRunsEntries), and the registry
	// has no such image; as a layout source, it is checked like any
	// layout, and the lie is found.
	for _, c := range []struct {
		name   string
		env    map[string]string
		commit bool
	}{{"CI run", droneRun(12), false}, {"committed", hostPath(), true}} {
		dir := t.TempDir()
		store, _ := plantStore(t, f, dir, reg.Host+"/lie/app:1", true)
		if c.commit {
			gitCommitAll(t, dir)
		}
		repo := "lie/" + strings.ReplaceAll(strings.ToLower(c.name), " ", "-")
		r := hoistIn(t, dir, merged(c.env, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": reg.Host + "/lie/app:1",
			"PLUGIN_DESTINATIONS": reg.Host + "/" + repo + ":1"}))
		if r.code != ExitSource {
			t.Errorf("%s: a lying store entry by name: exit %d, want %d\n%s", c.name, r.code, ExitSource, r)
		}
		assertContains(t, r, "is not this run's", "skipped; looking further", "was found nowhere")
		r = hoistIn(t, dir, merged(c.env, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": store,
			"PLUGIN_DESTINATIONS": reg.Host + "/" + repo + ":1"}))
		if r.code != ExitSource {
			t.Errorf("%s: a lying store entry as a layout: exit %d, want %d\n%s", c.name, r.code, ExitSource, r)
		}
		assertContains(t, r, "decompresses to sha256:", "but the image config says its content is", "nothing was tagged")
		if tags := tagsOf(t, reg, repo); len(tags) > 0 {
			t.Errorf("%s: tags were written: %v", c.name, tags)
		}
	}

	// The lone image of the store: a planted one is not pushed for a
	// destination it does not name.
	for _, c := range []struct {
		name   string
		env    map[string]string
		commit bool
	}{{"CI run", droneRun(12), false}, {"committed", hostPath(), true}} {
		dir := t.TempDir()
		plantStore(t, f, dir, "planted/app:1", false)
		if c.commit {
			gitCommitAll(t, dir)
		}
		repo := "lone/" + strings.ReplaceAll(strings.ToLower(c.name), " ", "-")
		r := hoistIn(t, dir, merged(c.env, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REPO": reg.Host + "/" + repo, "PLUGIN_TAGS": "1"}))
		if r.code != ExitSource {
			t.Errorf("%s: the lone planted image: exit %d, want %d\n%s", c.name, r.code, ExitSource, r)
		}
		assertContains(t, r, "nothing to push", "not made by this run")
		if tags := tagsOf(t, reg, repo); len(tags) > 0 {
			t.Errorf("%s: tags were written: %v", c.name, tags)
		}
	}

	// This run's build: its image is the lone one the push-only step of
	// the same run takes; the next run's step does not take it.
	dir := t.TempDir()
	plantStore(t, f, dir, "planted/app:1", false)
	ctxDir := buildContext(t, "FROM "+f.Base+"\nCOPY note.txt /note.txt\n", map[string]string{"note.txt": "built in run 12"})
	r := hoistIn(t, dir, merged(droneRun(12), buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_REPO", "built/app", "PLUGIN_TAGS", "1")))
	if r.code != 0 {
		t.Fatalf("build-only:\n%s", r)
	}
	// What the build recorded in the store, as skopeo reads it.
	built := manifestDigestOf(t, "oci:"+filepath.Join(dir, ".hoist", "images")+":index.docker.io/built/app:1")
	r = hoistIn(t, dir, merged(droneRun(12), map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REPO": reg.Host + "/run12/app", "PLUGIN_TAGS": "1"}))
	if r.code != 0 {
		t.Fatalf("push-only of this run's build:\n%s", r)
	}
	if got := digestOf(t, reg, reg.Host+"/run12/app:1"); got != built {
		t.Errorf("pushed %s, the build made %s", got, built)
	}
	if got := fileOf(t, reg, reg.Host+"/run12/app:1", "note.txt"); got != "built in run 12" {
		t.Errorf("the image pushed holds note.txt %q, not this run's build", got)
	}
	assertContains(t, r, "vouched for by the workspace image store's build")
	r = hoistIn(t, dir, merged(droneRun(13), map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REPO": reg.Host + "/run13/app", "PLUGIN_TAGS": "1"}))
	if r.code != ExitSource {
		t.Errorf("push-only of an earlier run's build: exit %d\n%s", r.code, r)
	}
	if tags := tagsOf(t, reg, "run13/app"); len(tags) > 0 {
		t.Errorf("an earlier run's build was pushed: %v", tags)
	}
}

// A digest-pinned PLUGIN_SOURCE_IMAGE yields that digest or fails with
// exit 3 naming what was found: a store entry named by the pinned
// reference but holding another digest, and the lone unnamed image of a
// layout, are not pushed in its place.
func TestPinnedSourceDigest(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	other := "sha256:" + strings.Repeat("ab", 32)

	dir := t.TempDir()
	_, held := plantStore(t, f, dir, reg.Host+"/pin/app@"+other, false)
	r := hoistIn(t, dir, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": reg.Host + "/pin/app@" + other,
		"PLUGIN_DESTINATIONS": reg.Host + "/pin/store:1"})
	if r.code != ExitSource {
		t.Errorf("a store entry of another digest: exit %d, want %d\n%s", r.code, ExitSource, r)
	}
	assertContains(t, r, other, held.String())
	if tags := tagsOf(t, reg, "pin/store"); len(tags) > 0 {
		t.Errorf("another digest was pushed: %v", tags)
	}

	// An unnamed image in a layout.
	layout := filepath.Join(t.TempDir(), "layout")
	copyLayout(t, f.SkopeoLayout, layout)
	idx := layoutIndex(t, layout)
	idx.Manifests[0].Annotations = nil
	writeJSON(t, filepath.Join(layout, "index.json"), idx)
	digest := idx.Manifests[0].Digest.String()
	r = hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": layout, "PLUGIN_SOURCE_IMAGE": "app@" + other,
		"PLUGIN_DESTINATIONS": reg.Host + "/pin/layout:1"})
	if r.code != ExitSource {
		t.Errorf("the lone unnamed image of another digest: exit %d, want %d\n%s", r.code, ExitSource, r)
	}
	assertContains(t, r, other, digest)
	if tags := tagsOf(t, reg, "pin/layout"); len(tags) > 0 {
		t.Errorf("another digest was pushed: %v", tags)
	}
	// Its own digest is pushed.
	r = mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": layout, "PLUGIN_SOURCE_IMAGE": "app@" + digest,
		"PLUGIN_DESTINATIONS": reg.Host + "/pin/layout:1"})
	if got := digestOf(t, reg, reg.Host+"/pin/layout:1"); got != digest {
		t.Errorf("pinned %s, pushed %s", digest, got)
	}
}

// plantRecord writes the scan record an attacker commits: digest passed.
func plantRecord(t *testing.T, dir, digest string) string {
	t.Helper()
	p := filepath.Join(dir, ".hoist", "scans", "sha256", strings.TrimPrefix(digest, "sha256:")+".json")
	writeJSON(t, p, map[string]any{"digest": digest, "passed": true, "source": "planted", "scannedAt": "2025-01-01T00:00:00Z",
		"scanner": map[string]any{"name": "trivy", "version": "0.74.0"}, "counts": map[string]int{}, "findings": 0})
	return p
}

// A scan record planted in the workspace ("passed" for an image no one
// scanned) lets no push through PLUGIN_REQUIRE_SCAN: committed to the
// repository (no run identity), or in a CI run, where it names no run.
// Nothing is pushed (the registry has no tag), so no provenance names it
// and hoist verify --require scan refuses the reference.
func TestPlantedScanRecord(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	key, pub := keyPair(t, "pw")
	tar, digest := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r2"))
	for _, c := range []struct {
		name   string
		env    map[string]string
		commit bool
		why    string
	}{
		{"committed", hostPath(), true, "tracks it: it came with the checkout"},
		{"ci", droneRun(12), false, "it names no run"},
	} {
		dir := t.TempDir()
		rec := plantRecord(t, dir, digest)
		if c.commit {
			gitCommitAll(t, dir)
		}
		repo := "planted/" + c.name
		r := hoistIn(t, dir, merged(c.env, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REQUIRE_SCAN": "true", "PLUGIN_SOURCE_TAR_PATH": tar,
			"PLUGIN_REPO": reg.Host + "/" + repo, "PLUGIN_TAGS": "1",
			"PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": key, "PLUGIN_SIGN_PASSWORD": "pw", "PLUGIN_PROVENANCE": "true"}))
		if r.code != ExitScan {
			t.Errorf("%s: a planted record: exit %d, want %d\n%s", c.name, r.code, ExitScan, r)
		}
		assertContains(t, r, "the scan record "+rec+" of "+digest+" is not this run's", c.why, "nothing was pushed", "scan the image in this run")
		if tags := tagsOf(t, reg, repo); len(tags) > 0 {
			t.Errorf("%s: tags were written: %v", c.name, tags)
		}
		v := hoist(t, map[string]string{}, "verify", "--key", pub, "--require", "scan", reg.Host+"/"+repo+":1")
		if v.code == 0 {
			t.Errorf("%s: hoist verify --require scan accepts the image:\n%s", c.name, v)
		}
	}
}

// A real record of an earlier run (another DRONE_BUILD_NUMBER, the same
// commit and workspace) does not let this run's push through; this run's
// scan step does (the document's build → scan → push), and the digest
// pushed is the one scanned.
func TestScanRecordOfAnotherRun(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	dir := t.TempDir()
	tar := filepath.Join(dir, "image.tar")
	ctxDir := buildContext(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r3"))
	r := hoistIn(t, dir, merged(droneRun(11), buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_TAR_PATH", tar, "PLUGIN_REPO", "acme/app")))
	if r.code != 0 {
		t.Fatalf("build:\n%s", r)
	}
	// The image of the tarball, as skopeo reads it (hoist's docker
	// tarball carries its OCI index).
	built := manifestDigestOf(t, "oci-archive:"+tar)
	if r := hoistIn(t, dir, merged(droneRun(11), scanEnv(t, k)), "scan", "image.tar"); r.code != 0 {
		t.Fatalf("scan in run 11:\n%s", r)
	}
	push := func(run int) result {
		return hoistIn(t, dir, merged(droneRun(run), map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REQUIRE_SCAN": "true",
			"PLUGIN_SOURCE_TAR_PATH": tar, "PLUGIN_REPO": reg.Host + "/acme/app", "PLUGIN_TAGS": fmt.Sprint(run)}))
	}
	r = push(12)
	if r.code != ExitScan {
		t.Errorf("run 12 with run 11's record: exit %d, want %d\n%s", r.code, ExitScan, r)
	}
	assertContains(t, r, "is not this run's", "made by another run than this one (Drone build acme/app#12 at commit "+droneCommit[:12]+")", "nothing was pushed")
	if tags := tagsOf(t, reg, "acme/app"); len(tags) > 0 {
		t.Errorf("tags were written: %v", tags)
	}
	// Run 12's own scan step, then its push step.
	if r := hoistIn(t, dir, merged(droneRun(12), scanEnv(t, k)), "scan", "image.tar"); r.code != 0 {
		t.Fatalf("scan in run 12:\n%s", r)
	}
	r = push(12)
	if r.code != 0 {
		t.Fatalf("run 12's push after its scan:\n%s", r)
	}
	if got := digestOf(t, reg, reg.Host+"/acme/app:12"); got != built {
		t.Errorf("pushed %s, built and scanned %s", got, built)
	}
	assertContains(t, r, "scan record: "+built+" passed")
}

// A planted record that says "passed", with a planted Trivy report
// without findings (what an attacker computes offline from the image),
// is not reused by PLUGIN_SCAN: Trivy runs, finds the credential, and
// nothing is pushed.
func TestPlantedTrivyReportIsNotReused(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	tar, digest := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", with(apkImage("musl", "1.2.4-r3"), "rootfs/app/config.env", "GITHUB_TOKEN="+k.Secret+"\n"))
	hex := strings.TrimPrefix(digest, "sha256:")
	scanEnvOf := func(kv ...string) map[string]string {
		return scanEnv(t, k, append([]string{"PLUGIN_SCAN_SCANNERS", "secret"}, kv...)...)
	}
	// The attacker's forgery: a real scan's record and report, findings
	// taken out.
	scratch := t.TempDir()
	if r := hoistIn(t, scratch, scanEnvOf(), "scan", tar); r.code != ExitScan {
		t.Fatalf("scan of the image with a credential:\n%s", r)
	}
	scans := filepath.Join(scratch, ".hoist", "scans", "sha256")
	var rec map[string]any
	b, _ := os.ReadFile(filepath.Join(scans, hex+".json"))
	json.Unmarshal(b, &rec)
	rec["passed"], rec["counts"], rec["findings"] = true, map[string]int{}, 0
	for _, im := range rec["images"].([]any) {
		im.(map[string]any)["counts"] = map[string]int{}
	}
	var rep map[string]any
	b, _ = os.ReadFile(filepath.Join(scans, hex+".trivy-0.json"))
	json.Unmarshal(b, &rep)
	if rep["Results"] == nil {
		t.Fatalf("Trivy's report lists no finding: %s", b)
	}
	delete(rep, "Results")

	for _, c := range []struct {
		name   string
		env    map[string]string
		commit bool
	}{{"committed", hostPath(), true}, {"ci", droneRun(12), false}} {
		dir := t.TempDir()
		writeJSON(t, filepath.Join(dir, ".hoist", "scans", "sha256", hex+".json"), rec)
		writeJSON(t, filepath.Join(dir, ".hoist", "scans", "sha256", hex+".trivy-0.json"), rep)
		if c.commit {
			gitCommitAll(t, dir)
		}
		repo := "forged/" + c.name
		r := hoistIn(t, dir, merged(c.env, scanEnvOf("PLUGIN_PUSH_ONLY", "true", "PLUGIN_SCAN", "true", "PLUGIN_SOURCE_TAR_PATH", tar,
			"PLUGIN_REPO", reg.Host+"/"+repo, "PLUGIN_TAGS", "1")))
		if r.code != ExitScan {
			t.Errorf("%s: a forged record and report: exit %d, want %d\n%s", c.name, r.code, ExitScan, r)
		}
		assertContains(t, r, "is not this run's: Trivy runs afresh", "github-pat", "scan gate failed for "+digest)
		assertNotContains(t, r, "are reused")
		if tags := tagsOf(t, reg, repo); len(tags) > 0 {
			t.Errorf("%s: tags were written: %v", c.name, tags)
		}
	}
}

// hoist pipeline run gives each run an identity of its own
// (HARNESS_EXECUTION_ID) and sends it to every step: the scan step's
// record lets the same run's push step through PLUGIN_REQUIRE_SCAN; in a
// later run over the same workspace, that record is another run's, and
// the push is refused.
func TestPipelineRunIdentity(t *testing.T) {
	t.Parallel()
	stage := func(clone bool, steps string) string {
		return `
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
          cloneCodebase: ` + fmt.Sprint(clone) + `
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
` + steps
	}
	push := `              - step:
                  identifier: push
                  type: BuildAndPushDockerRegistry
                  spec:
                    connectorRef: c
                    repo: myorg/trust
                    tags: ["<+pipeline.sequenceId>"]
                    envVariables: {PLUGIN_PUSH_ONLY: "true", PLUGIN_SOURCE_TAR_PATH: /harness/image.tar, PLUGIN_REQUIRE_SCAN: "true"}
`
	dir := checkout(t, map[string]string{
		"trust.yaml": "pipeline:\n  identifier: trust" + stage(true, `              - step:
                  identifier: base
                  type: Run
                  spec: {command: 'mkdir -p examples/pipelines/app/rootfs/bin && cp "$(command -v busybox)" examples/pipelines/app/rootfs/bin/busybox'}
              - step:
                  identifier: build
                  type: BuildAndPushDockerRegistry
                  spec:
                    connectorRef: c
                    repo: myorg/trust
                    context: examples/pipelines/app
                    dockerfile: examples/pipelines/app/Dockerfile
                    tags: ["1"]
                    envVariables: {PLUGIN_NO_PUSH: "true", PLUGIN_TAR_PATH: /harness/image.tar}
              - step:
                  identifier: scan
                  type: AquaTrivy
                  spec:
                    mode: orchestration
                    config: default
                    target: {type: container, name: trust, variant: "1", workspace: /harness/image.tar}
                    image: {type: local_archive}
`+push),
		"push.yaml": "pipeline:\n  identifier: pushonly" + stage(false, push),
	})
	env := pipelineEnv(t)
	ws := t.TempDir()
	r, rep := pipelineRun(t, dir, env, "trust.yaml", "--local", "--keep", "--workspace", ws)
	if r.code != 0 {
		t.Fatalf("build, scan, push in one run:\n%s", r)
	}
	tar := stepOf(t, rep, "build").Tarballs[0]
	built := manifestDigestOf(t, "oci-archive:"+tar)
	assertHold(t, rep, built, imageIDOf(t, "docker-archive:"+tar), "push")
	assertContains(t, r, "scan record: "+built+" passed")

	r, rep = pipelineRun(t, dir, env, "push.yaml", "--local", "--keep", "--workspace", ws)
	if r.code == 0 || len(stepOf(t, rep, "push").Pushed) > 0 {
		t.Fatalf("a later run's push with the earlier run's record:\n%s", r)
	}
	assertContains(t, r, "is not this run's", "made by another run than this one (Harness execution ")
}
