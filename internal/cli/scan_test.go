package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// apkImage is the rootfs files of an Alpine 3.19 system whose package
// database lists pkgs (name → version).
func apkImage(pkgs ...string) map[string]string {
	var db strings.Builder
	for i := 0; i+1 < len(pkgs); i += 2 {
		db.WriteString("P:" + pkgs[i] + "\nV:" + pkgs[i+1] + "\nA:x86_64\nL:MIT\no:" + pkgs[i] + "\nT:" + pkgs[i] + " (hoist test)\n\n")
	}
	return map[string]string{
		"rootfs/etc/alpine-release":    "3.19.1\n",
		"rootfs/etc/os-release":        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n",
		"rootfs/lib/apk/db/installed": db.String(),
	}
}

// scanEnv is the environment of a scan with the kit: the pinned Trivy, a
// cache of the test's own, the database fetched from its registry.
func scanEnv(t *testing.T, k *harness.ScanKit, kv ...string) map[string]string {
	env := map[string]string{
		"PLUGIN_SCAN_TRIVY":         k.Trivy,
		"PLUGIN_SCAN_CACHE_DIR":     t.TempDir(),
		"PLUGIN_SCAN_DB_REPOSITORY": k.DBRef,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

// buildTar builds a Dockerfile context with BuildKit (build-only) into a
// docker tarball and returns its path and the digest the build reported.
func buildTar(t *testing.T, dockerfile string, files map[string]string) (string, string) {
	t.Helper()
	ctxDir := buildContext(t, dockerfile, files)
	tar := filepath.Join(t.TempDir(), "image.tar")
	r := mustPush(t, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_TAR_PATH", tar, "PLUGIN_REPO", "scan/test", "PLUGIN_IMAGE_STORE", filepath.Join(t.TempDir(), "store")))
	return tar, strings.TrimSpace(r.stdout)
}

// The test images: an Alpine 3.19 package database with a fixed musl
// (clean), a vulnerable musl (fixed upstream), a busybox with no fix, a Go
// program built with a vulnerable module, and a planted credential.
type scanImages struct {
	clean, musl, unfixed, gobin, secret string // docker tarballs (BuildKit)
	digests                             map[string]string
}

func makeScanImages(t *testing.T, f *harness.Fixtures, k *harness.ScanKit) *scanImages {
	t.Helper()
	bin, err := os.ReadFile(k.GoBinary)
	if err != nil {
		t.Fatal(err)
	}
	df := "FROM " + f.Base + "\nCOPY rootfs/ /\n"
	im := &scanImages{digests: map[string]string{}}
	for _, c := range []struct {
		dst        *string
		dockerfile string
		files      map[string]string
	}{
		{&im.clean, df, apkImage("musl", "1.2.4-r3")},
		{&im.musl, df, apkImage("musl", "1.2.4-r2")},
		{&im.unfixed, df, apkImage("musl", "1.2.4-r3", "busybox", "1.36.1-r15")},
		{&im.gobin, df + "COPY --chmod=755 vulnapp /app/vulnapp\n", with(apkImage("musl", "1.2.4-r3"), "vulnapp", string(bin))},
		{&im.secret, df, with(apkImage("musl", "1.2.4-r3"), "rootfs/app/config.env", "GITHUB_TOKEN="+k.Secret+"\n")},
	} {
		tar, digest := buildTar(t, c.dockerfile, c.files)
		*c.dst = tar
		im.digests[tar] = digest
	}
	return im
}

func with(m map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// record reads the scan record of digest in dir.
func record(t *testing.T, dir, digest string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "sha256", strings.TrimPrefix(digest, "sha256:")+".json"))
	if err != nil {
		t.Fatalf("no scan record for %s: %v", digest, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// hoist scan on images built by BuildKit, with a database Trivy fetched
// from a registry: each dirty image fails with Trivy's findings, the
// clean one passes, and Trivy's filters change the verdict as in Trivy.
func TestScanVerdicts(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	im := makeScanImages(t, f, k)
	records := filepath.Join(t.TempDir(), "records")
	cache := t.TempDir()
	run := func(tar string, kv ...string) result {
		env := scanEnv(t, k, append([]string{"PLUGIN_SCAN_RECORDS", records, "PLUGIN_SCAN_CACHE_DIR", cache}, kv...)...)
		return hoist(t, env, "scan", tar)
	}

	r := run(im.clean)
	if r.code != 0 {
		t.Fatalf("clean image:\n%s", r)
	}
	// The digest and verdict on stderr (Trivy's table, on stdout, is
	// empty without findings).
	assertContains(t, r, "scan: "+im.digests[im.clean]+" passed (no findings)")
	rec := record(t, records, im.digests[im.clean])
	if rec["passed"] != true || rec["digest"] != im.digests[im.clean] || rec["scanner"].(map[string]any)["version"] != "0.74.0" {
		t.Errorf("record of the clean image: %v", rec)
	}
	if db := rec["database"].(map[string]any); db["schema"] != 2.0 || db["updatedAt"] == "" {
		t.Errorf("record's database: %v", db)
	}

	cases := []struct {
		name, tar string
		env       []string
		code      int
		want      []string
	}{
		{"vulnerable musl", im.musl, nil, 7, []string{"CVE-2099-1001", "musl", "1.2.4-r3", "FAILED (1 HIGH)"}},
		{"unfixed busybox", im.unfixed, nil, 7, []string{"CVE-2099-1002", "FAILED (1 MEDIUM)"}},
		{"unfixed busybox, --ignore-unfixed", im.unfixed, []string{"PLUGIN_SCAN_IGNORE_UNFIXED", "true"}, 0, []string{"passed (no findings)"}},
		{"unfixed busybox, --severity HIGH,CRITICAL", im.unfixed, []string{"PLUGIN_SCAN_SEVERITY", "high,CRITICAL"}, 0, []string{"passed (no findings)"}},
		{"Go module", im.gobin, nil, 7, []string{"GHSA-hois-t000-0001", "github.com/google/go-cmp", "FAILED (1 CRITICAL)"}},
		{"Go module, --skip-files", im.gobin, []string{"PLUGIN_SCAN_SKIP_FILES", "/app/vulnapp"}, 0, []string{"passed (no findings)"}},
		{"planted credential", im.secret, nil, 7, []string{"github-pat", "/app/config.env", "FAILED (1 CRITICAL)"}},
		{"planted credential, --skip-dirs", im.secret, []string{"PLUGIN_SCAN_SKIP_DIRS", "/app"}, 0, []string{"passed (no findings)"}},
		{"vulnerable musl, --exit-code 3", im.musl, []string{"PLUGIN_SCAN_EXIT_CODE", "3"}, 3, []string{"FAILED (1 HIGH)"}},
		{"vulnerable musl, --exit-code 0 reports only", im.musl, []string{"PLUGIN_SCAN_EXIT_CODE", "0"}, 0, []string{"FAILED (1 HIGH)"}},
	}
	for _, c := range cases {
		r := run(c.tar, c.env...)
		if r.code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.name, r.code, c.code, r)
			continue
		}
		assertContains(t, r, c.want...)
		rec := record(t, records, im.digests[c.tar])
		if want := c.code == 0 && !strings.Contains(strings.Join(c.want, ""), "FAILED"); rec["passed"] != want {
			t.Errorf("%s: record passed=%v, want %v", c.name, rec["passed"], want)
		}
	}

	// The ignore file, in Trivy's format: the finding it names is left
	// out. Named explicitly, it must exist.
	ignore := filepath.Join(t.TempDir(), "trivyignore")
	os.WriteFile(ignore, []byte("# accepted until the base image moves\nCVE-2099-1001\n"), 0o644)
	if r := run(im.musl, "PLUGIN_SCAN_IGNOREFILE", ignore); r.code != 0 {
		t.Errorf("ignore file: exit %d\n%s", r.code, r)
	}
	if rec := record(t, records, im.digests[im.musl]); rec["policy"].(map[string]any)["ignoreFile"] != ignore {
		t.Errorf("record's policy: %v", rec["policy"])
	}
	if r := run(im.musl, "PLUGIN_SCAN_IGNOREFILE", ignore+".missing"); r.code != 2 || !strings.Contains(r.stderr, "trivyignore.missing cannot be read") {
		t.Errorf("missing ignore file: %s", r)
	}

	// Secret scanning needs no database: no repository, an empty cache.
	r = hoist(t, map[string]string{"PLUGIN_SCAN_TRIVY": k.Trivy, "PLUGIN_SCAN_CACHE_DIR": t.TempDir(), "PLUGIN_SCAN_SCANNERS": "secret",
		"PLUGIN_SCAN_RECORDS": records}, "scan", im.secret)
	if r.code != 7 || !strings.Contains(r.stdout, "github-pat") {
		t.Errorf("secret scan without a database:\n%s", r)
	}
	assertNotContains(t, r, k.Secret)
}

// Every report format at once, each to its file.
func TestScanReports(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	tar, digest := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r2"))
	out := t.TempDir()
	names := []string{"r.json", "r.sarif", "r.cdx.json", "r.spdx.json"}
	var outputs []string
	for _, n := range names {
		if n != "" {
			n = filepath.Join(out, n)
		}
		outputs = append(outputs, n)
	}
	r := hoist(t, scanEnv(t, k, "PLUGIN_SCAN_FORMAT", "json,sarif,cyclonedx,spdx-json,table", "PLUGIN_SCAN_OUTPUT", strings.Join(outputs, ","), "PLUGIN_SCAN_RECORDS", filepath.Join(out, "records")), "scan", tar)
	if r.code != 7 {
		t.Fatalf("exit %d\n%s", r.code, r)
	}
	// The table, which has no report file, is on stdout.
	if !strings.Contains(r.stdout, "│ musl    │ CVE-2099-1001 │ HIGH") {
		t.Errorf("no table on stdout:\n%s", r)
	}
	for file, want := range map[string]string{"r.json": `"VulnerabilityID": "CVE-2099-1001"`, "r.sarif": `"ruleId": "CVE-2099-1001"`,
		"r.cdx.json": `"bomFormat": "CycloneDX"`, "r.spdx.json": `"spdxVersion": "SPDX-2.3"`} {
		b, err := os.ReadFile(filepath.Join(out, file))
		if err != nil || !strings.Contains(string(b), want) || !json.Valid(b) {
			t.Errorf("%s lacks %s (%v): %.300s", file, want, err, b)
		}
	}
	rec := record(t, filepath.Join(out, "records"), digest)
	if reps, _ := json.Marshal(rec["reports"]); !strings.Contains(string(reps), filepath.Join(out, "r.sarif")) {
		t.Errorf("record lists reports %s", reps)
	}
}
