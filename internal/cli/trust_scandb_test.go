package cli

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"

	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/runid"
)

// onlyRecord reads the one scan record in dir.
func onlyRecord(t *testing.T, dir string) map[string]any {
	t.Helper()
	var recs []string
	paths, _ := filepath.Glob(filepath.Join(dir, "sha256", "*.json"))
	for _, p := range paths {
		if !strings.Contains(filepath.Base(p), ".trivy-") {
			recs = append(recs, p)
		}
	}
	if len(recs) != 1 {
		t.Fatalf("%d scan records in %s, want 1: %v", len(recs), dir, recs)
	}
	b, err := os.ReadFile(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The vulnerability database is authenticated: its artifact's manifest
// digest (read with crane) is in the scan record and the provenance, and
// PLUGIN_SCAN_DB_DIGEST pins it. A pin of another digest is exit 7 naming
// both digests, with nothing pushed; a cached database counts for a pin
// only when hoist fetched it with that digest (a metadata file of hoist's
// beside Trivy's): one of unknown origin is fetched again, or refused
// when there is nowhere to fetch it from. Plain HTTP beyond loopback is
// TestPlainHTTPBeyondLoopbackIsRefusedByEveryClient's.
func TestScanDatabaseIsPinnedAndRecorded(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	dbRef := harness.PushTrivyDB(t, reg, "mirror/trivy-db", k.DB)
	dbDigest := reg.Digest(t, dbRef)
	const otherDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	scanWith := func(cache string, kv ...string) (result, string) {
		records := t.TempDir()
		env := with(scanEnv(t, k, "PLUGIN_SCAN_DB_REPOSITORY", dbRef, "PLUGIN_SCAN_CACHE_DIR", cache, "PLUGIN_SCAN_RECORDS", records, "PLUGIN_SCAN_EXIT_CODE", "0"), kv...)
		if env["PLUGIN_SCAN_DB_REPOSITORY"] == "" {
			delete(env, "PLUGIN_SCAN_DB_REPOSITORY")
		}
		return hoist(t, env, "scan", f.DockerSave), records
	}
	dbOf := func(t *testing.T, records string) (digest, from any) {
		t.Helper()
		rec := onlyRecord(t, records)
		return at(rec, "database", "digest"), at(rec, "database", "fetchedFrom")
	}

	t.Run("pinned right: recorded, and the cache counts", func(t *testing.T) {
		cache := t.TempDir()
		r, records := scanWith(cache, "PLUGIN_SCAN_DB_DIGEST", dbDigest)
		if r.code != 0 {
			t.Fatalf("exit %d:\n%s", r.code, r)
		}
		if d, from := dbOf(t, records); d != dbDigest || from != dbRef {
			t.Errorf("the record names the database %v from %v, want %s from %s", d, from, dbDigest, dbRef)
		}
		// The cache hoist filled serves the pin with no repository to
		// fetch from, and the record still names the digest.
		r, records = scanWith(cache, "PLUGIN_SCAN_DB_DIGEST", dbDigest, "PLUGIN_SCAN_DB_REPOSITORY", "")
		if r.code != 0 || strings.Contains(r.stderr, "fetching it") {
			t.Fatalf("from the cache: exit %d:\n%s", r.code, r)
		}
		if d, _ := dbOf(t, records); d != dbDigest {
			t.Errorf("from the cache: the record names %v, want %s", d, dbDigest)
		}
		// The same cache, pinned to another digest, with nowhere to fetch
		// it from: exit 7, both digests.
		r, _ = scanWith(cache, "PLUGIN_SCAN_DB_DIGEST", otherDigest, "PLUGIN_SCAN_DB_REPOSITORY", "")
		if r.code != ExitScan || !strings.Contains(r.stderr, dbDigest) || !strings.Contains(r.stderr, otherDigest) {
			t.Errorf("cache of another digest: exit %d, want %d with both digests:\n%s", r.code, ExitScan, r)
		}
	})

	t.Run("pinned wrong: exit 7 with both digests, nothing pushed", func(t *testing.T) {
		r, _ := scanWith(t.TempDir(), "PLUGIN_SCAN_DB_DIGEST", otherDigest)
		if r.code != ExitScan || !strings.Contains(r.stderr, "is "+dbDigest+", but PLUGIN_SCAN_DB_DIGEST pins "+otherDigest) {
			t.Errorf("exit %d, want %d with both digests:\n%s", r.code, ExitScan, r)
		}
		dst := harness.StartRegistry(t, harness.RegistryOptions{})
		p := hoist(t, scanEnv(t, k, "PLUGIN_PUSH_ONLY", "true", "PLUGIN_SOURCE_TAR_PATH", f.DockerSave, "PLUGIN_DESTINATIONS", dst.Host+"/pinned/app:1",
			"PLUGIN_SCAN", "true", "PLUGIN_SCAN_DB_REPOSITORY", dbRef, "PLUGIN_SCAN_DB_DIGEST", otherDigest))
		if p.code != ExitScan || !strings.Contains(p.stderr, otherDigest) || !strings.Contains(p.stderr, dbDigest) {
			t.Errorf("gated push: exit %d, want %d with both digests:\n%s", p.code, ExitScan, p)
		}
		if tags := tagsOf(t, dst, "pinned/app"); len(tags) != 0 {
			t.Errorf("pushed despite the mismatch: %v", tags)
		}
		bad := hoist(t, scanEnv(t, k, "PLUGIN_SCAN_DB_DIGEST", "latest"), "scan", f.DockerSave)
		if bad.code != ExitSettings || !strings.Contains(bad.stderr, `PLUGIN_SCAN_DB_DIGEST: "latest" is not a manifest digest`) {
			t.Errorf("a pin that is no digest: exit %d:\n%s", bad.code, bad)
		}
	})

	t.Run("cache of unknown origin", func(t *testing.T) {
		// A database written straight into the cache (as trivy
		// --download-db-only, a restored cache or a repository would
		// bring it): scanned with, but no digest is claimed for it.
		now := time.Now()
		cache := t.TempDir()
		harness.WriteTrivyDB(t, filepath.Join(cache, "db"), []harness.Advisory{harness.AdvMusl}, now.Add(-time.Hour), now.Add(24*time.Hour), trivydb.SchemaVersion)
		r, records := scanWith(cache, "PLUGIN_SCAN_DB_REPOSITORY", "")
		if r.code != 0 {
			t.Fatalf("exit %d:\n%s", r.code, r)
		}
		if d, _ := dbOf(t, records); d != nil {
			t.Errorf("a database hoist did not fetch is recorded as %v", d)
		}
		// Pinned with nowhere to fetch from: refused, saying why.
		r, _ = scanWith(cache, "PLUGIN_SCAN_DB_DIGEST", dbDigest, "PLUGIN_SCAN_DB_REPOSITORY", "")
		if r.code != ExitScanner || !strings.Contains(r.stderr, "was not fetched by hoist") || !strings.Contains(r.stderr, dbDigest) {
			t.Errorf("pinned, unknown origin, no repository: exit %d, want %d:\n%s", r.code, ExitScanner, r)
		}
		// Pinned with a repository: fetched again, and then recorded.
		r, records = scanWith(cache, "PLUGIN_SCAN_DB_DIGEST", dbDigest)
		if r.code != 0 || !strings.Contains(r.stderr, "was not fetched by hoist") {
			t.Fatalf("pinned, unknown origin: exit %d:\n%s", r.code, r)
		}
		if d, _ := dbOf(t, records); d != dbDigest {
			t.Errorf("after the fetch the record names %v, want %s", d, dbDigest)
		}
		// A database replaced after hoist fetched it is of unknown origin
		// again, though hoist's file is still there.
		os.Remove(filepath.Join(cache, "db", "trivy.db"))
		os.Remove(filepath.Join(cache, "db", "metadata.json"))
		harness.WriteTrivyDB(t, filepath.Join(cache, "db"), []harness.Advisory{harness.AdvBusybox}, now.Add(-time.Hour), now.Add(24*time.Hour), trivydb.SchemaVersion)
		if _, err := os.Stat(filepath.Join(cache, "db", "hoist-origin.json")); err != nil {
			t.Fatalf("hoist's record of the fetch is gone: %v", err)
		}
		r, _ = scanWith(cache, "PLUGIN_SCAN_DB_DIGEST", dbDigest, "PLUGIN_SCAN_DB_REPOSITORY", "")
		if r.code != ExitScanner || !strings.Contains(r.stderr, "was not fetched by hoist") {
			t.Errorf("replaced database: exit %d, want %d:\n%s", r.code, ExitScanner, r)
		}
	})

	t.Run("provenance names the database", func(t *testing.T) {
		dst := harness.StartRegistry(t, harness.RegistryOptions{})
		key, pub := keyPair(t, "pw")
		mustPush(t, scanEnv(t, k, "PLUGIN_PUSH_ONLY", "true", "PLUGIN_SOURCE_TAR_PATH", f.DockerSave, "PLUGIN_DESTINATIONS", dst.Host+"/prov/app:1",
			"PLUGIN_SCAN", "true", "PLUGIN_SCAN_DB_REPOSITORY", dbRef, "PLUGIN_SCAN_DB_DIGEST", dbDigest, "PLUGIN_SCAN_EXIT_CODE", "0",
			"PLUGIN_SIGN", "true", "PLUGIN_SIGN_KEY", key, "PLUGIN_SIGN_PASSWORD", "pw", "PLUGIN_PROVENANCE", "true"))
		ref := dst.Host + "/prov/app@" + digestOf(t, dst, dst.Host+"/prov/app:1")
		provs, out, err := statements(t, dst, pub, "slsaprovenance1", ref)
		if err != nil {
			t.Fatalf("cosign verify-attestation: %v\n%s", err, out)
		}
		db := at(provs[0], "predicate", "runDetails", "byproducts", 0, "annotations", "database")
		if at(db, "digest", "sha256") != strings.TrimPrefix(dbDigest, "sha256:") || at(db, "uri") != "oci://"+dbRef {
			t.Errorf("the provenance's database is %v, want %s at oci://%s", db, dbDigest, dbRef)
		}
	})
}

// A database's hoist-origin.json vouches for a digest only in the run that
// wrote it. A cache restored from elsewhere (PLUGIN_SCAN_CACHE_DIR)
// brings a database hoist did not fetch in this run, here an empty one,
// with an origin file written by hand that names the pinned digest and
// describes the planted files exactly (their metadata digest, size and
// time), as the attacker review's reproduction wrote it: naming no run,
// or stamped with an earlier run's identity. Pinned, the planted database
// is fetched again, checked against the pin, and the vulnerable image
// fails; pinned with nowhere to fetch from, it is refused (exit 8),
// saying why; unpinned, it is used, and the record names no digest (the
// log says why). The database hoist fetched in this run counts for the
// run's later scans, and for no later run.
func TestForgedDatabaseOriginVouchesForNothing(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	tar, digest := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r2")) // CVE-2099-1001, HIGH
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	dbRef := harness.PushTrivyDB(t, reg, "mirror/trivy-db", k.DB)
	dbDigest := reg.Digest(t, dbRef)
	runID := func(n int) string {
		env := droneRun(n)
		return runid.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }).ID
	}
	// plant writes the restored cache: an empty database in Trivy's own
	// format, and an origin file that says hoist fetched it, with the
	// pinned digest, in run (a runid ID; "" for none).
	plant := func(t *testing.T, run string) string {
		cache := t.TempDir()
		now := time.Now()
		fake := harness.WriteTrivyDB(t, filepath.Join(cache, "db"), nil, now.Add(-time.Hour), now.Add(24*time.Hour), trivydb.SchemaVersion)
		os.Remove(fake.Tarball)
		meta, err := os.ReadFile(filepath.Join(cache, "db", "metadata.json"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(cache, "db", "trivy.db"))
		if err != nil {
			t.Fatal(err)
		}
		origin, _ := json.Marshal(map[string]any{"repository": dbRef, "digest": dbDigest, "fetchedAt": now, "run": run,
			"metadata": fmt.Sprintf("sha256:%x", sha256.Sum256(meta)), "dbSize": st.Size(), "dbModTime": st.ModTime()})
		if err := os.WriteFile(filepath.Join(cache, "db", "hoist-origin.json"), origin, 0o644); err != nil {
			t.Fatal(err)
		}
		return cache
	}
	scanIn := func(run int, cache string, kv ...string) (result, string) {
		records := t.TempDir()
		env := with(scanEnv(t, k, "PLUGIN_SCAN_DB_REPOSITORY", dbRef, "PLUGIN_SCAN_CACHE_DIR", cache, "PLUGIN_SCAN_RECORDS", records), kv...)
		for k, v := range droneRun(run) {
			env[k] = v
		}
		if env["PLUGIN_SCAN_DB_REPOSITORY"] == "" {
			delete(env, "PLUGIN_SCAN_DB_REPOSITORY")
		}
		return hoist(t, env, "scan", tar), records
	}
	const found = "CVE-2099-1001"
	recordedDB := func(t *testing.T, records string) any {
		t.Helper()
		return at(record(t, records, digest), "database", "digest")
	}

	for _, c := range []struct {
		name, stamp, why string
	}{
		{"origin naming no run", "", "it names no run"},
		{"origin of an earlier run", runID(1), "it was made by another run than this one"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// Pinned: fetched again, and the real database fails the image.
			r, records := scanIn(2, plant(t, c.stamp), "PLUGIN_SCAN_DB_DIGEST", dbDigest)
			if r.code != ExitScan || !strings.Contains(r.stdout+r.stderr, found) {
				t.Errorf("pinned: exit %d, want %d with %s (the planted database was taken for the pinned %s):\n%s", r.code, ExitScan, found, dbDigest, r)
			}
			for _, w := range []string{"hoist-origin.json is not this run's: " + c.why, "fetching it from " + dbRef} {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("pinned: the log does not say %q:\n%s", w, r)
				}
			}
			if d := recordedDB(t, records); d != dbDigest {
				t.Errorf("pinned: the record names the database %v, want the fetched %s", d, dbDigest)
			}

			// Pinned, nowhere to fetch from: exit 8, saying why.
			r, _ = scanIn(2, plant(t, c.stamp), "PLUGIN_SCAN_DB_DIGEST", dbDigest, "PLUGIN_SCAN_DB_REPOSITORY", "")
			if r.code != ExitScanner || !strings.Contains(r.stderr, "was not fetched by hoist in this run") || !strings.Contains(r.stderr, c.why) {
				t.Errorf("pinned, no repository: exit %d, want %d saying why:\n%s", r.code, ExitScanner, r)
			}

			// Unpinned: the planted database is used (nothing pins
			// another), and the record claims no digest for it.
			r, records = scanIn(2, plant(t, c.stamp), "PLUGIN_SCAN_DB_REPOSITORY", "")
			if r.code != 0 {
				t.Fatalf("unpinned: exit %d:\n%s", r.code, r)
			}
			if d := recordedDB(t, records); d != nil {
				t.Errorf("unpinned: the record names the planted database's digest %v", d)
			}
			if !strings.Contains(r.stderr, "is used with no known digest") || !strings.Contains(r.stderr, c.why) {
				t.Errorf("unpinned: the log does not say why no digest is recorded:\n%s", r)
			}
		})
	}

	t.Run("fetched in this run: counts in this run only", func(t *testing.T) {
		t.Parallel()
		cache := t.TempDir()
		r, _ := scanIn(5, cache, "PLUGIN_SCAN_DB_DIGEST", dbDigest)
		if r.code != ExitScan || !strings.Contains(r.stderr, "fetching it from") {
			t.Fatalf("first scan: exit %d, want %d after a fetch:\n%s", r.code, ExitScan, r)
		}
		r, records := scanIn(5, cache, "PLUGIN_SCAN_DB_DIGEST", dbDigest, "PLUGIN_SCAN_DB_REPOSITORY", "")
		if r.code != ExitScan || strings.Contains(r.stderr, "fetching it") || !strings.Contains(r.stdout+r.stderr, found) {
			t.Errorf("same run, from the cache: exit %d, want %d without a fetch:\n%s", r.code, ExitScan, r)
		}
		if d := recordedDB(t, records); d != dbDigest {
			t.Errorf("same run, from the cache: the record names %v, want %s", d, dbDigest)
		}
		r, _ = scanIn(6, cache, "PLUGIN_SCAN_DB_DIGEST", dbDigest, "PLUGIN_SCAN_DB_REPOSITORY", "")
		if r.code != ExitScanner || !strings.Contains(r.stderr, "it was made by another run than this one") {
			t.Errorf("the next run, pinned, no repository: exit %d, want %d:\n%s", r.code, ExitScanner, r)
		}
	})
}

// TRIVY_REGISTRY_TOKEN, Trivy's registry token for its database
// repositories, is hoist's too, since hoist fetches the database: sent
// as a bearer token to the database repositories' registry (a registry
// that wants a token server's tokens, with no other login), it fetches
// the database, which the record names by the digest crane reads; it
// wins over a wrong TRIVY_USERNAME/TRIVY_PASSWORD, as in Trivy; and it is
// never printed. Without it the registry refuses the fetch (the
// control: the token is what opened it).
func TestTrivyRegistryTokenFetchesTheDatabase(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	reg, ts := harness.StartTokenRegistry(t)
	dbRef := harness.PushTrivyDB(t, reg, "mirror/trivy-db", k.DB)
	dbDigest := reg.Digest(t, dbRef)
	token := ts.Token(t, "repository:mirror/trivy-db:pull")
	scanWith := func(kv ...string) (result, string) {
		records := t.TempDir()
		return hoist(t, with(scanEnv(t, k, "PLUGIN_SCAN_DB_REPOSITORY", dbRef, "PLUGIN_SCAN_RECORDS", records, "PLUGIN_SCAN_EXIT_CODE", "0"), kv...), "scan", f.DockerSave), records
	}

	r, _ := scanWith()
	if r.code != ExitScanner {
		t.Fatalf("no login (control): exit %d, want %d:\n%s", r.code, ExitScanner, r)
	}
	for _, kv := range [][]string{
		{"TRIVY_REGISTRY_TOKEN", token},
		{"TRIVY_REGISTRY_TOKEN", token, "TRIVY_USERNAME", "nobody", "TRIVY_PASSWORD", "wrong-password-77"},
	} {
		r, records := scanWith(kv...)
		if r.code != 0 || !strings.Contains(r.stderr, "fetching it from "+dbRef) {
			t.Errorf("with %s (%d settings): exit %d, want 0 after a fetch:\n%s", kv[0], len(kv)/2, r.code, r)
			continue
		}
		if d := at(onlyRecord(t, records), "database", "digest"); d != dbDigest {
			t.Errorf("the record names the database %v, want %s (crane)", d, dbDigest)
		}
		if strings.Contains(r.stdout+r.stderr, token) || strings.Contains(r.stdout+r.stderr, "wrong-password-77") {
			t.Errorf("the token or the password is printed:\n%s", r)
		}
	}
}
