package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/harness"
)

// hoistWithin is hoistIn, failed when it does not end within wait (a
// FIFO's open waits for a writer that never comes; /dev/zero never ends).
func hoistWithin(t *testing.T, wait time.Duration, dir string, env map[string]string, args ...string) result {
	t.Helper()
	done := make(chan result, 1)
	go func() { done <- hoistIn(t, dir, env, args...) }()
	select {
	case r := <-done:
		return r
	case <-time.After(wait):
		t.Fatalf("hoist did not end within %s", wait)
		return result{}
	}
}

// State the repository or a restored cache plants (a scan record, the
// compression cache's record and layer, the image store's index.json) is
// read before anything says who made it: a FIFO there is not waited on,
// and a link to /dev/zero is not read, so each step ends in a few
// seconds with a clear outcome: the record is refused (exit 7), the cache
// entry is compressed afresh and the push succeeds, the store is refused
// (exit 3).
func TestPlantedStateIsReadBounded(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoArchive, "PLUGIN_DESTINATIONS": reg.Host + "/probe/app:1"})
	digest := digestOf(t, reg, reg.Host+"/probe/app:1")
	hex := strings.TrimPrefix(digest, "sha256:")
	fifo := func(p string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	requireScan := func(repo string) map[string]string {
		return merged(droneRun(12), map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REQUIRE_SCAN": "true",
			"PLUGIN_SOURCE_TAR_PATH": f.SkopeoArchive, "PLUGIN_REPO": reg.Host + "/" + repo, "PLUGIN_TAGS": "1"})
	}

	t.Run("fifo record", func(t *testing.T) {
		dir := t.TempDir()
		fifo(filepath.Join(dir, ".hoist", "scans", "sha256", hex+".json"))
		r := hoistWithin(t, time.Minute, dir, requireScan("fifo/record"))
		if r.code != ExitScan {
			t.Errorf("exit %d, want %d\n%s", r.code, ExitScan, r)
		}
		assertContains(t, r, "not a regular file (a FIFO)", "nothing was pushed")
	})
	t.Run("fifo compression cache", func(t *testing.T) {
		// The fixture's docker save has uncompressed layers: each is
		// compressed through the cache.
		push := func(dir, repo string) result {
			return hoistWithin(t, time.Minute, dir, merged(droneRun(12), map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
				"PLUGIN_REPO": reg.Host + "/" + repo, "PLUGIN_TAGS": "1"}))
		}
		clean := t.TempDir()
		if r := push(clean, "clean/cache"); r.code != 0 {
			t.Fatalf("a clean workspace:\n%s", r)
		}
		names, _ := filepath.Glob(filepath.Join(clean, ".hoist", "compressed", "gzip-1", "*.json"))
		dir := t.TempDir()
		cache := filepath.Join(dir, ".hoist", "compressed", "gzip-1")
		for _, n := range names {
			base := filepath.Join(cache, strings.TrimSuffix(filepath.Base(n), ".json"))
			fifo(base + ".json")
			fifo(base + ".gz")
		}
		r := push(dir, "fifo/cache")
		if r.code != 0 {
			t.Errorf("exit %d\n%s", r.code, r)
		}
		entries, _ := filepath.Glob(filepath.Join(cache, "*"))
		for _, e := range entries {
			if st, err := os.Lstat(e); err != nil || !st.Mode().IsRegular() {
				t.Errorf("the cache entry %s is not replaced: %v", e, err)
			}
		}
		if len(names) == 0 || len(entries) < 2*len(names) {
			t.Errorf("the clean cache holds %v, the planted one %v: the test proves nothing", names, entries)
		}
		if got, want := layersOf(t, reg, reg.Host+"/fifo/cache:1"), layersOf(t, reg, reg.Host+"/clean/cache:1"); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("pushed layers %v, a clean workspace pushes %v", got, want)
		}
	})
	t.Run("fifo store index", func(t *testing.T) {
		dir := t.TempDir()
		store := filepath.Join(dir, ".hoist", "images")
		os.MkdirAll(store, 0o755)
		os.WriteFile(filepath.Join(store, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
		fifo(filepath.Join(store, "index.json"))
		r := hoistWithin(t, time.Minute, dir, merged(droneRun(12), map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": reg.Host + "/probe/app:1",
			"PLUGIN_DESTINATIONS": reg.Host + "/fifo/store:1"}))
		if r.code != ExitSource {
			t.Errorf("exit %d, want %d\n%s", r.code, ExitSource, r)
		}
		assertContains(t, r, "index.json", "not a regular file (a FIFO)")
	})
	t.Run("record linked to dev-zero", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, ".hoist", "scans", "sha256", hex+".json")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.Symlink("/dev/zero", p)
		r := hoistWithin(t, time.Minute, dir, requireScan("zero/record"))
		if r.code != ExitScan {
			t.Errorf("exit %d, want %d\n%s", r.code, ExitScan, r)
		}
		assertContains(t, r, "is a symbolic link to /dev/zero, out of the workspace")
		// Records kept outside the workspace (a setting's own path):
		// the link is followed, and the device is not read.
		out := t.TempDir()
		os.MkdirAll(filepath.Join(out, "sha256"), 0o755)
		os.Symlink("/dev/zero", filepath.Join(out, "sha256", hex+".json"))
		r = hoistWithin(t, time.Minute, dir, merged(requireScan("zero/outside"), map[string]string{"PLUGIN_SCAN_RECORDS": out}))
		if r.code != ExitScan {
			t.Errorf("outside the workspace: exit %d, want %d\n%s", r.code, ExitScan, r)
		}
		assertContains(t, r, "not a regular file (a character device)")
	})
	for _, repo := range []string{"fifo/record", "zero/record", "zero/outside"} {
		if tags := tagsOf(t, reg, repo); len(tags) > 0 {
			t.Errorf("%s: pushed %v", repo, tags)
		}
	}
}
