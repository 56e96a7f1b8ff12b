package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		"rootfs/etc/alpine-release":   "3.19.1\n",
		"rootfs/etc/os-release":       "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n",
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

	// Scanned again with the same policy, database and Trivy: Trivy's
	// kept report is reused (the verdict, the table and reports are the
	// same); another policy runs Trivy again.
	r = run(im.musl)
	if r.code != 7 || !strings.Contains(r.stderr, "are reused: the same image, Trivy, database and policy") || !strings.Contains(r.stdout, "CVE-2099-1001") {
		t.Errorf("rescan:\n%s", r)
	}
	if rec := record(t, records, im.digests[im.musl]); rec["reusedAt"] == nil || rec["passed"] != false {
		t.Errorf("record of the rescan: %v", rec)
	}
	r = run(im.musl, "PLUGIN_SCAN_SEVERITY", "HIGH")
	if r.code != 7 || strings.Contains(r.stderr, "are reused") {
		t.Errorf("rescan with another policy:\n%s", r)
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

// catalog lists a registry's repositories, straight from its API.
func catalog(t *testing.T, reg *harness.Registry) string {
	t.Helper()
	resp, err := reg.Client().Get(reg.URL() + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Repositories []string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return strings.Join(body.Repositories, ",")
}

// PLUGIN_SCAN on push-only and build-and-push steps: a dirty image
// reaches no registry (not a blob: no repository exists), a clean one is
// pushed, pulled back and run; the summary shows the scan's digest, which
// every registry holds.
func TestScanGateOnPush(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	im := makeScanImages(t, f, k)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	b := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	records := filepath.Join(t.TempDir(), "records")
	push := func(tar, repo string) result {
		return hoist(t, scanEnv(t, k, "PLUGIN_PUSH_ONLY", "true", "PLUGIN_SCAN", "true", "PLUGIN_SOURCE_TAR_PATH", tar,
			"PLUGIN_REPO", a.Host+"/"+repo, "PLUGIN_TAGS", "1", "PLUGIN_DESTINATIONS", b.Host+"/"+repo+":1",
			"PLUGIN_REGISTRY", b.Host, "PLUGIN_USERNAME", b.User, "PLUGIN_PASSWORD", b.Password, "PLUGIN_SCAN_RECORDS", records))
	}
	for name, tar := range map[string]string{"musl": im.musl, "gobin": im.gobin, "secret": im.secret} {
		r := push(tar, "dirty/"+name)
		if r.code != 7 {
			t.Errorf("%s: exit %d, want 7\n%s", name, r.code, r)
		}
		assertContains(t, r, "scan gate failed for "+im.digests[tar])
		assertNotContains(t, r, "pushing to")
	}
	if ca, cb := catalog(t, a), catalog(t, b); ca != "" || cb != "" {
		t.Errorf("dirty images reached the registries: %q, %q", ca, cb)
	}

	r := push(im.clean, "clean/app")
	if r.code != 0 {
		t.Fatalf("clean image:\n%s", r)
	}
	assertPushed(t, r, a, a.Host+"/clean/app:1")
	assertPushed(t, r, b, b.Host+"/clean/app:1")
	digest := digestOf(t, b, b.Host+"/clean/app:1")
	if digest != im.digests[im.clean] || record(t, records, digest)["passed"] != true {
		t.Errorf("built %s, registry holds %s", im.digests[im.clean], digest)
	}
	assertContains(t, r, "  scan", digest+"  passed (no findings)")
	if got := f.Docker.RunImage(t, a.Host+"/clean/app:1", "cat", "/etc/alpine-release"); got != "3.19.1" {
		t.Errorf("pushed image prints %q", got)
	}

	// Build and push: the build is scanned before its push.
	ctxDir := buildContext(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r2"))
	r = hoist(t, merged(buildEnv(t, ctxDir, "PLUGIN_REPO", a.Host+"/built/dirty", "PLUGIN_SCAN", "true", "PLUGIN_SCAN_RECORDS", records), scanEnv(t, k)))
	if r.code != 7 || !strings.Contains(r.stderr, "CVE-2099-1001") {
		t.Errorf("build and push of a dirty image: exit %d\n%s", r.code, r)
	}
	if tags := tagsOf(t, a, "built/dirty"); len(tags) != 0 {
		t.Errorf("dirty build pushed: %v", tags)
	}
	ctxDir = buildContext(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r3"))
	r = hoist(t, merged(buildEnv(t, ctxDir, "PLUGIN_REPO", a.Host+"/built/clean", "PLUGIN_SCAN", "true", "PLUGIN_SCAN_RECORDS", records), scanEnv(t, k)))
	if r.code != 0 {
		t.Fatalf("build and push of a clean image:\n%s", r)
	}
	assertPushed(t, r, a, a.Host+"/built/clean:latest")
	if rec := record(t, records, digestOf(t, a, a.Host+"/built/clean:latest")); rec["passed"] != true {
		t.Errorf("record of the built image: %v", rec)
	}
}

// The mission's pipeline: build-only to image.tar, scan image.tar (another
// process), push-only from image.tar to two registries with
// PLUGIN_REQUIRE_SCAN. The build's digest, the record's and both
// registries' (read back by crane) are one value. A digest without a
// passing record is refused and reaches no registry. The same holds for a
// docker save tarball.
func TestRequireScanPipeline(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	work := t.TempDir()
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	b := harness.StartRegistry(t, harness.RegistryOptions{TLS: true})
	tar := filepath.Join(work, "image.tar")
	ctxDir := buildContext(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r3"))
	r := mustPush(t, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_TAR_PATH", tar, "PLUGIN_REPO", "mission/app",
		"PLUGIN_IMAGE_STORE", filepath.Join(work, ".hoist/images")))
	built := strings.TrimSpace(r.stdout)

	pushEnv := func(src, repo string) map[string]string {
		return map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REQUIRE_SCAN": "true", "PLUGIN_SOURCE_TAR_PATH": src,
			"PLUGIN_REPO": a.Host + "/" + repo, "PLUGIN_TAGS": "1", "PLUGIN_DESTINATIONS": b.Host + "/" + repo + ":1",
			"PLUGIN_REGISTRY_CERTIFICATE": b.CAFile}
	}
	// Not scanned yet: refused, naming the digest and where it looked.
	r = hoistIn(t, work, pushEnv(tar, "mission/app"))
	if r.code != 7 {
		t.Fatalf("unscanned push: exit %d\n%s", r.code, r)
	}
	assertContains(t, r, built+" (docker-archive "+tar, "has no scan record in "+filepath.Join(work, ".hoist/scans"), "nothing was pushed")
	if ca, cb := catalog(t, a), catalog(t, b); ca != "" || cb != "" {
		t.Errorf("an unscanned image reached the registries: %q, %q", ca, cb)
	}

	r = hoistIn(t, work, scanEnv(t, k), "scan", "image.tar")
	if r.code != 0 {
		t.Fatalf("scan:\n%s", r)
	}
	r = hoistIn(t, work, pushEnv(tar, "mission/app"))
	if r.code != 0 {
		t.Fatalf("push-only:\n%s", r)
	}
	assertPushed(t, r, a, a.Host+"/mission/app:1")
	assertPushed(t, r, b, b.Host+"/mission/app:1")
	inA, inB := digestOf(t, a, a.Host+"/mission/app:1"), digestOf(t, b, b.Host+"/mission/app:1")
	rec := record(t, filepath.Join(work, ".hoist/scans"), built)
	if inA != built || inB != built || rec["digest"] != built || rec["passed"] != true {
		t.Errorf("built %s, record %v, registries %s and %s", built, rec["digest"], inA, inB)
	}
	assertContains(t, r, "scan record: "+built+" passed", "  scan", built+"  passed (no findings)")

	// A failed record is refused too.
	dirtyCtx := buildContext(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r2"))
	dirty := filepath.Join(work, "dirty.tar")
	mustPush(t, buildEnv(t, dirtyCtx, "PLUGIN_NO_PUSH", "true", "PLUGIN_TAR_PATH", dirty, "PLUGIN_REPO", "mission/dirty", "PLUGIN_IMAGE_STORE", filepath.Join(work, ".hoist/images")))
	if r := hoistIn(t, work, scanEnv(t, k), "scan", dirty); r.code != 7 {
		t.Fatalf("scan of the dirty image: %s", r)
	}
	r = hoistIn(t, work, pushEnv(dirty, "mission/dirty"))
	if r.code != 7 || !strings.Contains(r.stderr, "FAILED (1 HIGH)") {
		t.Errorf("push of a failed digest: exit %d\n%s", r.code, r)
	}
	if tags := tagsOf(t, a, "mission/dirty"); len(tags) != 0 {
		t.Errorf("failed digest pushed: %v", tags)
	}

	// docker save (not hoist's writer): scanned and pushed as one digest.
	saved := filepath.Join(work, "saved.tar")
	f.Docker.Run(t, "save", "-o", saved, f.App)
	r = hoistIn(t, work, scanEnv(t, k), "scan", saved)
	if r.code != 0 {
		t.Fatalf("scan of docker save:\n%s", r)
	}
	r = hoistIn(t, work, pushEnv(saved, "mission/saved"))
	if r.code != 0 {
		t.Fatalf("push of docker save:\n%s", r)
	}
	if got := digestOf(t, a, a.Host+"/mission/saved:1"); record(t, filepath.Join(work, ".hoist/scans"), got)["passed"] != true {
		t.Errorf("no passing record for the pushed digest %s", got)
	}
}

// Each bad input is a clear error before anything is pushed: the image,
// the settings, the database, Trivy itself.
func TestScanBadInput(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	tar, _ := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r3"))
	notImage := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notImage, []byte("not an image\n"), 0o644)
	now := time.Now()
	cacheWith := func(schema int, updated, next time.Time, corrupt bool) string {
		cache := t.TempDir()
		d := harness.WriteTrivyDB(t, filepath.Join(cache, "db"), []harness.Advisory{harness.AdvMusl}, updated, next, schema)
		if corrupt {
			os.WriteFile(filepath.Join(d.Dir, "trivy.db"), []byte("this is not a bolt database, but it is the size of nothing"), 0o644)
		}
		return cache
	}
	otherTrivy := filepath.Join(t.TempDir(), "trivy")
	os.WriteFile(otherTrivy, []byte("#!/bin/sh\necho '{\"Version\":\"0.50.0\"}'\n"), 0o755)
	missingDir := filepath.Join(t.TempDir(), "missing")
	noDB := map[string]string{"PLUGIN_SCAN_DB_REPOSITORY": "", "PLUGIN_SCAN_CACHE_DIR": ""}
	cases := []struct {
		name  string
		image string
		env   map[string]string
		code  int
		want  string
	}{
		{"not an image", notImage, nil, 3, "is not a tar archive"},
		{"report in a missing directory", tar, map[string]string{"PLUGIN_SCAN_FORMAT": "json", "PLUGIN_SCAN_OUTPUT": missingDir + "/r.json"}, 2, "PLUGIN_SCAN_OUTPUT: report " + missingDir + "/r.json: its directory " + missingDir + " does not exist"},
		{"unknown severity", tar, map[string]string{"PLUGIN_SCAN_SEVERITY": "HIGH,URGENT"}, 2, `PLUGIN_SCAN_SEVERITY: unknown severity "URGENT"`},
		{"unknown format", tar, map[string]string{"PLUGIN_SCAN_FORMAT": "html"}, 2, `PLUGIN_SCAN_FORMAT: unknown format "html"`},
		{"unsupported scanner", tar, map[string]string{"PLUGIN_SCAN_SCANNERS": "vuln,misconfig"}, 2, "misconfig is a Trivy scanner hoist's gate does not run"},
		{"database missing", tar, noDB, 8, "no vulnerability database at "},
		{"database corrupt", tar, map[string]string{"PLUGIN_SCAN_DB_REPOSITORY": "", "PLUGIN_SCAN_CACHE_DIR": cacheWith(2, now, now.Add(time.Hour), true)}, 8, "trivy (scan of "},
		{"database of another schema", tar, map[string]string{"PLUGIN_SCAN_DB_REPOSITORY": "", "PLUGIN_SCAN_CACHE_DIR": cacheWith(1, now, now.Add(time.Hour), false)}, 8, "has schema 1; Trivy 0.74.0 reads schema 2"},
		{"database stale", tar, map[string]string{"PLUGIN_SCAN_DB_REPOSITORY": "", "PLUGIN_SCAN_CACHE_DIR": cacheWith(2, now.Add(-48*time.Hour), now.Add(-24*time.Hour), false)}, 8, "is stale"},
		{"database repository without one", tar, map[string]string{"PLUGIN_SCAN_DB_REPOSITORY": reg.Host + "/nothing/here:2", "PLUGIN_SCAN_CACHE_DIR": ""}, 8, "database repositories " + reg.Host + "/nothing/here:2"},
		{"Trivy missing", tar, map[string]string{"PLUGIN_SCAN_TRIVY": "/nonexistent/trivy"}, 8, "/nonexistent/trivy does not exist"},
		{"Trivy of another version", tar, map[string]string{"PLUGIN_SCAN_TRIVY": otherTrivy}, 8, "is Trivy 0.50.0; hoist runs Trivy 0.74.0"},
	}
	for _, c := range cases {
		env := scanEnv(t, k)
		for key, v := range c.env {
			if v == "" && key == "PLUGIN_SCAN_CACHE_DIR" {
				v = t.TempDir()
			}
			env[key] = v
		}
		if env["PLUGIN_SCAN_DB_REPOSITORY"] == "" {
			delete(env, "PLUGIN_SCAN_DB_REPOSITORY")
		}
		r := hoist(t, env, "scan", c.image)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, want %d and %q\n%s", c.name, r.code, c.code, c.want, r)
		}
		// The same on a push: nothing reaches the registry.
		env = merged(env, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SCAN": "true", "PLUGIN_SOURCE_TAR_PATH": c.image, "PLUGIN_DESTINATIONS": reg.Host + "/bad/app:1"})
		if r := hoist(t, env); r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s, on a push: exit %d, want %d and %q\n%s", c.name, r.code, c.code, c.want, r)
		}
	}
	if c := catalog(t, reg); c != "" {
		t.Errorf("bad input reached the registry: %s", c)
	}
	// A stale database scans, with a warning, when the setting says so.
	r := hoist(t, scanEnv(t, k, "PLUGIN_SCAN_CACHE_DIR", cacheWith(2, now.Add(-48*time.Hour), now.Add(-24*time.Hour), false), "PLUGIN_SCAN_DB_REPOSITORY", "", "PLUGIN_SCAN_STALE_DB", "warn"), "scan", tar)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: the vulnerability database at") {
		t.Errorf("stale database with warn:\n%s", r)
	}
	// Settings that gate nothing are refused, not ignored.
	r = hoist(t, map[string]string{"PLUGIN_NO_PUSH": "true", "PLUGIN_SCAN": "true", "PLUGIN_REPO": "app"})
	if r.code != 2 || !strings.Contains(r.stderr, "PLUGIN_SCAN gates a push, and this step pushes nothing") {
		t.Errorf("scan on build-only:\n%s", r)
	}
	r = hoist(t, map[string]string{"PLUGIN_REQUIRE_SCAN": "true", "PLUGIN_REPO": reg.Host + "/app"})
	if r.code != 2 || !strings.Contains(r.stderr, "PLUGIN_REQUIRE_SCAN checks the record of a pre-built image") {
		t.Errorf("require-scan on a build:\n%s", r)
	}
}

// The scan variant of the Kaniko plugin image runs the gate as a CI runner
// runs a push-only step: a clean tarball from the workspace is scanned and
// pushed, a dirty one is refused and reaches no registry. The variant is
// the plugin image plus one layer; the plugin image alone has no Trivy and
// says where to find one.
func TestScanPluginImage(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	base, scanImg := pluginImage(t, "kaniko"), pluginImage(t, "kaniko-scan")
	layers := func(ref string) []string {
		return strings.Fields(f.Docker.Run(t, "image", "inspect", "--format", "{{range .RootFS.Layers}}{{.}} {{end}}", ref))
	}
	lb, ls := layers(base), layers(scanImg)
	if len(ls) != len(lb)+1 || strings.Join(ls[:len(lb)], " ") != strings.Join(lb, " ") {
		t.Errorf("the scan variant is not the plugin image plus one layer:\n%v\n%v", lb, ls)
	}
	ws := t.TempDir()
	clean, built := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r3"))
	dirty, _ := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r2"))
	for src, dst := range map[string]string{clean: "clean.tar", dirty: "dirty.tar"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(ws, dst), b, 0o644)
	}
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	step := func(image, tar, repo string) (string, error) {
		return plugin(t, f.Docker, image, ws, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SCAN": "true",
			"PLUGIN_SOURCE_TAR_PATH": "/harness/" + tar, "PLUGIN_REPO": reg.Host + "/" + repo, "PLUGIN_TAGS": "1",
			"PLUGIN_SCAN_DB_REPOSITORY": k.DBRef, "PLUGIN_SCAN_SEVERITY": "HIGH,CRITICAL"})
	}
	out, err := step(scanImg, "clean.tar", "plug/clean")
	if err != nil {
		t.Fatalf("clean image in the scan image: %v\n%s", err, out)
	}
	if got := digestOf(t, reg, reg.Host+"/plug/clean:1"); got != built || !strings.Contains(out, built+"  passed (no findings)") {
		t.Errorf("built %s, pushed %s\n%s", built, got, out)
	}
	if _, err := os.Stat(filepath.Join(ws, ".hoist", "scans", "sha256", strings.TrimPrefix(built, "sha256:")+".json")); err != nil {
		t.Errorf("no scan record in the workspace: %v", err)
	}
	out, err = step(scanImg, "dirty.tar", "plug/dirty")
	if err == nil || !strings.Contains(out, "scan gate failed") || !strings.Contains(out, "CVE-2099-1001") {
		t.Errorf("dirty image in the scan image: %v\n%s", err, out)
	}
	if tags := tagsOf(t, reg, "plug/dirty"); len(tags) != 0 {
		t.Errorf("dirty image pushed: %v", tags)
	}
	out, err = step(base, "clean.tar", "plug/base")
	if err == nil || !strings.Contains(out, "is neither on PATH nor beside hoist") || !strings.Contains(out, "hoist/kaniko-scan") {
		t.Errorf("PLUGIN_SCAN in the plugin image without Trivy: %v\n%s", err, out)
	}

	// Images Kaniko builds: a build-and-push step does not scan in the
	// container its RUN steps ran in: it is refused before anything is
	// built (exit 2); a build-only tarball is scanned by a step of its
	// own (here hoist scan), and a clean one passes.
	dirtyCtx := buildContext(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r2"))
	out, err = plugin(t, f.Docker, scanImg, dirtyCtx, map[string]string{"PLUGIN_REPO": reg.Host + "/kaniko/dirty", "PLUGIN_TAGS": "1",
		"PLUGIN_SCAN": "true", "PLUGIN_SCAN_DB_REPOSITORY": k.DBRef, "PLUGIN_PROGRESS": "plain"})
	if err == nil || !strings.Contains(err.Error(), "exit status 2") || !strings.Contains(out, "PLUGIN_SCAN: this step builds with Kaniko") || strings.Contains(out, "build tool: kaniko") {
		t.Errorf("Kaniko build and push with the scan gate: %v\n%s", err, out)
	}
	if tags := tagsOf(t, reg, "kaniko/dirty"); len(tags) != 0 {
		t.Errorf("Kaniko's dirty build pushed: %v", tags)
	}
	cleanCtx := buildContext(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r3", "busybox", "1.36.1-r15"))
	out, err = plugin(t, f.Docker, base, cleanCtx, map[string]string{"PLUGIN_NO_PUSH": "true", "PLUGIN_TAR_PATH": "/harness/out/image.tar",
		"PLUGIN_REPO": "kaniko/clean", "PLUGIN_PROGRESS": "plain"})
	if err != nil {
		t.Fatalf("Kaniko build-only: %v\n%s", err, out)
	}
	kaniko := filepath.Join(cleanCtx, "out", "image.tar")
	if r := hoist(t, scanEnv(t, k), "scan", kaniko); r.code != 7 || !strings.Contains(r.stdout, "CVE-2099-1002") {
		t.Errorf("scan of Kaniko's tarball (unfixed busybox):\n%s", r)
	}
	if r := hoist(t, scanEnv(t, k, "PLUGIN_SCAN_IGNORE_UNFIXED", "true"), "scan", kaniko); r.code != 0 {
		t.Errorf("scan of Kaniko's tarball with --ignore-unfixed:\n%s", r)
	}
}

// Every kind of source push-only takes is scanned as it would be pushed:
// skopeo's OCI archive and layout, a two-platform index (one Trivy run per
// platform, one record, reports per platform), an image in a registry, the
// workspace image store and the Docker daemon. Each record is keyed by the
// digest a push of that source pushes, read back by crane.
func TestScanSources(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	work := t.TempDir()
	records := filepath.Join(work, "records")
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	out := t.TempDir()
	scanOf := func(image string, kv ...string) result {
		r := hoistIn(t, work, scanEnv(t, k, append([]string{"PLUGIN_SCAN_RECORDS", records, "DOCKER_HOST", f.Docker.Host}, kv...)...), "scan", image)
		if r.code != 0 {
			t.Fatalf("scan %s:\n%s", image, r)
		}
		return r
	}
	pushedDigest := func(src, repo string) string {
		mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": src, "PLUGIN_DESTINATIONS": reg.Host + "/" + repo + ":1"})
		return digestOf(t, reg, reg.Host+"/"+repo+":1")
	}
	for name, src := range map[string]string{"oci-archive": f.SkopeoOCIArch, "layout": f.SkopeoLayout} {
		scanOf(src)
		d := pushedDigest(src, "src/"+name)
		if rec := record(t, records, d); rec["passed"] != true || !strings.Contains(rec["source"].(string), src) {
			t.Errorf("%s: record %v", name, rec)
		}
	}

	// A two-platform index: one record at the index digest, an image per
	// platform, a report per platform.
	scanOf(f.MultiLayout, "PLUGIN_SCAN_FORMAT", "json", "PLUGIN_SCAN_OUTPUT", filepath.Join(out, "multi.json"))
	d := pushedDigest(f.MultiLayout, "src/multi")
	rec := record(t, records, d)
	imgs, _ := json.Marshal(rec["images"])
	if !strings.Contains(string(imgs), `"platform":"linux/amd64"`) || !strings.Contains(string(imgs), `"platform":"linux/arm64"`) {
		t.Errorf("index record images: %s", imgs)
	}
	for _, p := range []string{"linux-amd64", "linux-arm64"} {
		if _, err := os.Stat(filepath.Join(out, "multi."+p+".json")); err != nil {
			t.Errorf("no report for %s: %v", p, err)
		}
	}

	// From a registry: the pushed index, by reference.
	scanOf(reg.Host + "/src/multi:1")
	if rec := record(t, records, d); !strings.Contains(rec["source"].(string), "registry image "+reg.Host+"/src/multi:1") {
		t.Errorf("registry source: %v", rec["source"])
	}

	// From the workspace image store and from the daemon, by reference.
	ctxDir := buildContext(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r3"))
	r := mustPush(t, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_REPO", "store/app", "PLUGIN_IMAGE_STORE", filepath.Join(work, ".hoist/images")))
	built := strings.TrimSpace(r.stdout)
	r = scanOf("store/app")
	assertContains(t, r, "scan: "+built+" (workspace image store")
	scanOf(f.App)
	if d := pushedDigest(f.DockerSave, "src/daemon"); record(t, records, d)["passed"] != true {
		t.Errorf("no record for the daemon image's pushed digest %s", d)
	}
}
