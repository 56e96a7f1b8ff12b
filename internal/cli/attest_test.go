package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/hoist-build/hoist/internal/harness"
)

// statements runs cosign verify-attestation --type kind on ref and
// returns the in-toto statements of the attestations that verified, and
// cosign's output with each statement decoded after it.
func statements(t *testing.T, reg *harness.Registry, pub, kind, ref string) ([]map[string]any, string, error) {
	t.Helper()
	out, err := reg.Cosign(t, "verify-attestation", "--key", pub, "--insecure-ignore-tlog=true", "--type", kind, "--output", "json", ref)
	if err != nil {
		return nil, out, err
	}
	var sts []map[string]any
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var env struct {
			Payload string `json:"payload"`
		}
		if json.Unmarshal([]byte(line), &env) != nil || env.Payload == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			t.Fatalf("attestation payload: %v", err)
		}
		var st map[string]any
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("attestation statement: %v", err)
		}
		sts = append(sts, st)
		out += "\n" + string(b)
	}
	if len(sts) == 0 {
		t.Fatalf("cosign verify-attestation printed no statement:\n%s", out)
	}
	return sts, out, nil
}

// at walks a decoded JSON value along keys (object keys, or array
// indexes as numbers).
func at(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// A build that scans, signs and attests: the real cosign CLI verifies
// the signature, the CycloneDX SBOM (Trivy's, of the image pushed) and
// the SLSA provenance (the CI's source, the Dockerfile's digest, the
// build arguments that are not secrets, the base image's digest as
// BuildKit resolved it, the scan record) in a plain and a TLS registry
// with a login; hoist verify --require passes there; no secret is in
// any attestation or output.
func TestAttestOnBuild(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	b := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, TLS: true})
	const password, token = "attest-pw-8812", "tok-5521-never-printed"
	key, pub := keyPair(t, password)
	ca, _ := os.ReadFile(b.CAFile)
	records := t.TempDir()
	dockerfile := "FROM " + f.Base + "\nARG VERSION\nARG API_TOKEN\nARG UPSTREAM\nRUN echo \"v$VERSION\" > /version\nCMD [\"cat\", \"/version\"]\n"
	ctxDir := buildContext(t, dockerfile, nil)
	const commit = "4f1c2a9be07d5e6f8a9b0c1d2e3f4a5b6c7d8e9f"
	r := mustPush(t, merged(buildEnv(t, ctxDir,
		"PLUGIN_REPO", a.Host+"/attested/app", "PLUGIN_TAGS", "1.2.3",
		"PLUGIN_DESTINATIONS", b.Host+"/team/app:1.2.3",
		"PLUGIN_REGISTRY", b.Host, "PLUGIN_USERNAME", b.User, "PLUGIN_PASSWORD", b.Password, "PLUGIN_REGISTRY_CERTIFICATE", string(ca),
		"PLUGIN_BUILD_ARGS", "VERSION=1.2.3,API_TOKEN="+token+",UPSTREAM=https://mirror.example/%zz",
		"PLUGIN_SCAN", "true", "PLUGIN_SCAN_RECORDS", records,
		"PLUGIN_SIGN", "true", "PLUGIN_SIGN_KEY", key, "PLUGIN_SIGN_PASSWORD", password,
		"PLUGIN_SBOM", "true", "PLUGIN_PROVENANCE", "true",
		"DRONE_GIT_HTTP_URL", "https://git.example.com/team/app.git", "DRONE_COMMIT_SHA", commit,
		"DRONE_COMMIT_REF", "refs/heads/main", "DRONE_BUILD_LINK", "https://ci.example.com/team/app/42",
	), scanEnv(t, k)))
	digest := digestOf(t, a, a.Host+"/attested/app:1.2.3")
	if got := digestOf(t, b, b.Host+"/team/app:1.2.3"); got != digest {
		t.Fatalf("the registries hold %s and %s", digest, got)
	}
	if got := f.Docker.RunImage(t, a.Host+"/attested/app:1.2.3"); got != "v1.2.3" {
		t.Errorf("the image prints %q", got)
	}
	assertContains(t, r, "sbom: 1 CycloneDX SBOM(s) by Trivy 0.74.0 from the scan's report", "signed "+a.Host+"/attested/app@"+digest+" with cyclonedx, slsaprovenance1 attestations (cosign's tags)",
		"signed, attested: cyclonedx, slsaprovenance1")
	var manifest struct {
		Config struct{ Digest string }
	}
	json.Unmarshal([]byte(a.Crane(t, "manifest", a.Host+"/attested/app@"+digest)), &manifest)
	baseDigest := digestOf(t, f.Registry, f.Base)
	rec, err := os.ReadFile(filepath.Join(records, "sha256", strings.TrimPrefix(digest, "sha256:")+".json"))
	if err != nil {
		t.Fatal(err)
	}
	recDigest := fmt.Sprintf("%x", sha256.Sum256(rec))
	dfDigest := fmt.Sprintf("%x", sha256.Sum256([]byte(dockerfile)))

	var everything strings.Builder
	everything.WriteString(r.stdout + r.stderr)
	for _, c := range []struct {
		reg *harness.Registry
		ref string
	}{{a, a.Host + "/attested/app@" + digest}, {b, b.Host + "/team/app@" + digest}} {
		if out, err := verify(t, c.reg, pub, c.ref); err != nil {
			t.Errorf("cosign verify %s: %v\n%s", c.ref, err, out)
		}
		sboms, out, err := statements(t, c.reg, pub, "cyclonedx", c.ref)
		if err != nil {
			t.Fatalf("cosign verify-attestation --type cyclonedx %s: %v\n%s", c.ref, err, out)
		}
		everything.WriteString(out)
		if len(sboms) != 1 || at(sboms[0], "subject", 0, "digest", "sha256") != strings.TrimPrefix(digest, "sha256:") || at(sboms[0], "predicate", "bomFormat") != "CycloneDX" {
			t.Errorf("SBOM statements %v", sboms)
		}
		// Trivy's SBOM is of the image pushed: its config digest.
		if id := imageID(sboms[0]["predicate"]); id != manifest.Config.Digest {
			t.Errorf("the SBOM names the config %q, want %s", id, manifest.Config.Digest)
		}
		provs, out, err := statements(t, c.reg, pub, "slsaprovenance1", c.ref)
		if err != nil {
			t.Fatalf("cosign verify-attestation --type slsaprovenance1 %s: %v\n%s", c.ref, err, out)
		}
		everything.WriteString(out)
		p := at(provs[0], "predicate")
		for _, want := range []struct {
			got, want any
			what      string
		}{
			{at(provs[0], "predicateType"), "https://slsa.dev/provenance/v1", "predicate type"},
			{at(p, "buildDefinition", "externalParameters", "source", "commit"), commit, "commit"},
			{at(p, "buildDefinition", "externalParameters", "source", "repository"), "https://git.example.com/team/app.git", "repository"},
			{at(p, "buildDefinition", "externalParameters", "buildArgs", "VERSION"), "1.2.3", "build arg"},
			{fmt.Sprint(at(p, "buildDefinition", "externalParameters", "buildArgsWithheld")), "[API_TOKEN UPSTREAM]", "withheld args"},
			{at(p, "runDetails", "metadata", "invocationId"), "https://ci.example.com/team/app/42", "invocation"},
			{at(p, "runDetails", "byproducts", 0, "digest", "sha256"), recDigest, "scan record digest"},
			{at(p, "runDetails", "byproducts", 0, "annotations", "passed"), true, "scan verdict"},
			{at(p, "runDetails", "builder", "version", "buildkit") != nil, true, "BuildKit version"},
		} {
			if want.got != want.want {
				t.Errorf("provenance %s: %v, want %v", want.what, want.got, want.want)
			}
		}
		deps := fmt.Sprint(at(p, "buildDefinition", "resolvedDependencies"))
		for _, want := range []string{"gitCommit:" + commit, "sha256:" + dfDigest, "sha256:" + strings.TrimPrefix(baseDigest, "sha256:"), "pkg:docker/"} {
			if !strings.Contains(deps, want) {
				t.Errorf("resolved dependencies lack %s: %s", want, deps)
			}
		}
	}
	// hoist verify, as a deploy gate, with the registry's login.
	v := hoist(t, map[string]string{"PLUGIN_REGISTRY": b.Host, "PLUGIN_USERNAME": b.User, "PLUGIN_PASSWORD": b.Password, "PLUGIN_REGISTRY_CERTIFICATE": string(ca)},
		"verify", "--key", pub, "--require", "sbom,provenance,scan", b.Host+"/team/app:1.2.3")
	if v.code != 0 || !strings.Contains(v.stdout, "verified "+b.Host+"/team/app@"+digest) || !strings.Contains(v.stdout, "cyclonedx 1, slsaprovenance1 1") || !strings.Contains(v.stdout, "scan: passed") {
		t.Errorf("hoist verify: %s", v)
	}
	everything.WriteString(v.stdout + v.stderr)
	// The build's secret argument and the registry password are in no
	// attestation and no output; the searched text holds the rest.
	all := everything.String()
	if !strings.Contains(all, "1.2.3") || !strings.Contains(all, "UPSTREAM") {
		t.Fatalf("the searched output lacks what it should hold")
	}
	for _, secret := range []string{token, b.Password, password} {
		if strings.Contains(all, secret) {
			t.Errorf("a secret (%d bytes) is in an attestation or the output", len(secret))
		}
	}
}

// Push-only with PLUGIN_REQUIRE_SCAN signs only the scanned digest, and
// its provenance names the record; a multi-platform index gets one SBOM
// per platform at the index digest; what is missing, tampered or signed
// with another key does not verify (cosign and hoist verify alike).
func TestAttestVerifyFailures(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	key, pub := keyPair(t, "pw")
	_, otherPub := keyPair(t, "other")
	records := t.TempDir()
	scanned := hoist(t, scanEnv(t, k, "PLUGIN_SCAN_SCANNERS", "secret", "PLUGIN_SCAN_RECORDS", records), "scan", f.DockerSave)
	if scanned.code != 0 {
		t.Fatalf("hoist scan: %s", scanned)
	}
	mustPush(t, scanEnv(t, k, "PLUGIN_PUSH_ONLY", "true", "PLUGIN_SOURCE_TAR_PATH", f.DockerSave, "PLUGIN_REPO", a.Host+"/gate/app", "PLUGIN_TAGS", "1",
		"PLUGIN_REQUIRE_SCAN", "true", "PLUGIN_SCAN_RECORDS", records,
		"PLUGIN_SIGN", "true", "PLUGIN_SIGN_KEY", key, "PLUGIN_SIGN_PASSWORD", "pw", "PLUGIN_PROVENANCE", "true"))
	digest := digestOf(t, a, a.Host+"/gate/app:1")
	ref := a.Host + "/gate/app@" + digest
	provs, out, err := statements(t, a, pub, "slsaprovenance1", ref)
	if err != nil {
		t.Fatalf("cosign verify-attestation: %v\n%s", err, out)
	}
	if got := at(provs[0], "predicate", "runDetails", "byproducts", 0, "annotations", "passed"); got != true {
		t.Errorf("the provenance names no passing scan: %v", provs[0])
	}
	if got := fmt.Sprint(at(provs[0], "predicate", "buildDefinition", "externalParameters", "source")); !strings.Contains(got, f.DockerSave) {
		t.Errorf("the provenance's source %v, want %s", got, f.DockerSave)
	}
	verifyGate := func(pub string, require string, ref string) result {
		args := []string{"verify", "--key", pub}
		if require != "" {
			args = append(args, "--require", require)
		}
		return hoist(t, map[string]string{}, append(args, ref)...)
	}
	if v := verifyGate(pub, "provenance,scan", ref); v.code != 0 {
		t.Errorf("hoist verify --require provenance,scan: %s", v)
	}
	// No SBOM was asked: cosign and hoist verify both say it is missing.
	if out, err := a.Cosign(t, "verify-attestation", "--key", pub, "--insecure-ignore-tlog=true", "--type", "cyclonedx", ref); err == nil {
		t.Errorf("a missing SBOM verifies:\n%s", out)
	}
	if v := verifyGate(pub, "sbom", ref); v.code != ExitUnverified || !strings.Contains(v.stderr, "no signed CycloneDX SBOM attestation") {
		t.Errorf("hoist verify --require sbom without one: %s", v)
	}
	// Another key.
	if v := verifyGate(otherPub, "", ref); v.code != ExitUnverified || !strings.Contains(v.stderr, "no signature verifies with the key") {
		t.Errorf("hoist verify with another key: %s", v)
	}

	// Signed but not attested: --require provenance fails.
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": a.Host + "/plain/app", "PLUGIN_TAGS": "1",
		"PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": key, "PLUGIN_SIGN_PASSWORD": "pw"})
	plain := a.Host + "/plain/app@" + digest
	if v := verifyGate(pub, "", plain); v.code != 0 || !strings.Contains(v.stdout, "attestations: none") {
		t.Errorf("hoist verify of a signed image: %s", v)
	}
	if v := verifyGate(pub, "provenance", plain); v.code != ExitUnverified {
		t.Errorf("hoist verify --require provenance without one: %s", v)
	}

	// A tampered signature: one byte of the signature in the .sig
	// manifest changed, written back with plain HTTP.
	sigTag := "sha256-" + strings.TrimPrefix(digest, "sha256:") + ".sig"
	tamper(t, a, "plain/app", sigTag)
	if out, err := verify(t, a, pub, plain); err == nil {
		t.Errorf("cosign verifies a tampered signature:\n%s", out)
	}
	if v := verifyGate(pub, "", plain); v.code != ExitUnverified {
		t.Errorf("hoist verify of a tampered signature: %s", v)
	}

	// Unsigned, missing, bad usage.
	if v := verifyGate(pub, "", a.Host+"/fixture/none:1"); v.code != ExitSource {
		t.Errorf("hoist verify of a missing image: %s", v)
	}
	if v := verifyGate(pub, "everything", ref); v.code != ExitSettings || !strings.Contains(v.stderr, `unknown requirement "everything"`) {
		t.Errorf("hoist verify --require everything: %s", v)
	}
	if v := hoist(t, map[string]string{}, "verify", ref); v.code != ExitSettings || !strings.Contains(v.stderr, "--key (the cosign public key, cosign.pub) or a keyless identity") {
		t.Errorf("hoist verify without --key: %s", v)
	}
	if v := verifyGate(key, "", ref); v.code != ExitSettings || !strings.Contains(v.stderr, "not a public key") {
		t.Errorf("hoist verify with the private key: %s", v)
	}

	// A second signed provenance of the same digest whose scan record
	// failed (a later scan found something): --require scan fails, the
	// earlier pass does not outweigh it.
	failed := provs[0]["predicate"].(map[string]any)
	bp := at(failed, "runDetails", "byproducts", 0, "annotations").(map[string]any)
	bp["passed"], bp["verdict"] = false, "failed: 1 secret (a later scan)"
	pred := filepath.Join(t.TempDir(), "provenance.json")
	if b, err := json.Marshal(failed); err != nil || os.WriteFile(pred, b, 0o600) != nil {
		t.Fatal(err)
	}
	if out, err := a.CosignEnv(t, []string{"COSIGN_PASSWORD=pw"}, "attest", "--key", key, "--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false", "-y",
		"--type", "slsaprovenance1", "--predicate", pred, ref); err != nil {
		t.Fatalf("cosign attest: %v\n%s", err, out)
	}
	if provs, out, err := statements(t, a, pub, "slsaprovenance1", ref); err != nil || len(provs) != 2 {
		t.Fatalf("cosign verify-attestation after the second provenance: %d, %v\n%s", len(provs), err, out)
	}
	if v := verifyGate(pub, "provenance", ref); v.code != 0 {
		t.Errorf("hoist verify --require provenance with two provenances: %s", v)
	}
	if v := verifyGate(pub, "scan", ref); v.code != ExitUnverified || !strings.Contains(v.stderr, "did not pass: failed: 1 secret (a later scan)") {
		t.Errorf("hoist verify --require scan with a failing record beside a passing one: %s", v)
	}

	// A multi-platform index: one SBOM per platform, at the index digest.
	r := mustPush(t, scanEnv(t, k, "PLUGIN_PUSH_ONLY", "true", "PLUGIN_SOURCE_TAR_PATH", f.MultiLayout, "PLUGIN_REPO", a.Host+"/multi/app", "PLUGIN_TAGS", "1",
		"PLUGIN_SIGN", "true", "PLUGIN_SIGN_KEY", key, "PLUGIN_SIGN_PASSWORD", "pw", "PLUGIN_SBOM", "true"))
	index := digestOf(t, a, a.Host+"/multi/app:1")
	sboms, out, err := statements(t, a, pub, "cyclonedx", a.Host+"/multi/app@"+index)
	if err != nil || len(sboms) != 2 {
		t.Errorf("the index's SBOMs: %d, %v\n%s", len(sboms), err, out)
	}
	assertContains(t, r, "sbom: 2 CycloneDX SBOM(s) by Trivy 0.74.0 from the image")

	// PLUGIN_SBOM without PLUGIN_SIGN: refused, nothing pushed.
	r = hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": a.Host + "/unsigned/app", "PLUGIN_TAGS": "1", "PLUGIN_SBOM": "true"})
	if r.code != ExitSettings || !strings.Contains(r.stderr, "PLUGIN_SBOM is a signed attestation of the pushed digest: set PLUGIN_SIGN=true") {
		t.Errorf("PLUGIN_SBOM without PLUGIN_SIGN: %s", r)
	}
	if tags := tagsOf(t, a, "unsigned/app"); len(tags) != 0 {
		t.Errorf("pushed anyway: %v", tags)
	}
}

// imageID is the config digest a Trivy SBOM names.
func imageID(bom any) string {
	props, _ := at(bom, "metadata", "component", "properties").([]any)
	for _, p := range props {
		if at(p, "name") == "aquasecurity:trivy:ImageID" {
			s, _ := at(p, "value").(string)
			return s
		}
	}
	return ""
}

// tamper changes one byte of the signature in a cosign signature
// manifest, and writes the manifest back under its tag.
func tamper(t *testing.T, reg *harness.Registry, repo, tag string) {
	t.Helper()
	u := reg.URL() + "/v2/" + repo + "/manifests/" + tag
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("signature manifest: %v: %s", err, body)
	}
	ann, _ := at(m, "layers", 0, "annotations").(map[string]any)
	sig, _ := base64.StdEncoding.DecodeString(fmt.Sprint(ann["dev.cosignproject.cosign/signature"]))
	if len(sig) < 10 {
		t.Fatalf("no signature in %s", body)
	}
	sig[len(sig)/2] ^= 0x01
	ann["dev.cosignproject.cosign/signature"] = base64.StdEncoding.EncodeToString(sig)
	nb, _ := json.Marshal(m)
	req, _ = http.NewRequest(http.MethodPut, u, bytes.NewReader(nb))
	req.Header.Set("Content-Type", fmt.Sprint(m["mediaType"]))
	resp, err = reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT the tampered manifest: %s", resp.Status)
	}
}

// A registry with the OCI referrers API gets the signature and the
// attestations as referrers of the digest too (detected, no setting);
// distribution 2.8 (no API) gets cosign's tags only. go-containerregistry's
// registry stands in: no real registry here has the referrers API.
func TestAttestReferrers(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	key, _ := keyPair(t, "pw")
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true)))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	plain := harness.StartRegistry(t, harness.RegistryOptions{})
	env := func(repo string) map[string]string {
		return map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": repo, "PLUGIN_TAGS": "1",
			"PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": key, "PLUGIN_SIGN_PASSWORD": "pw", "PLUGIN_PROVENANCE": "true"}
	}
	r := mustPush(t, env(host+"/ref/app"))
	digest := strings.TrimSpace(harness.Run(t, nil, harness.Tool(t, "crane"), "digest", "--insecure", host+"/ref/app:1"))
	assertContains(t, r, "signed "+host+"/ref/app@"+digest+" with slsaprovenance1 attestations (cosign's tags and OCI referrers)")
	resp, err := http.Get(srv.URL + "/v2/ref/app/referrers/" + digest)
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct{ Digest string }
	}
	json.NewDecoder(resp.Body).Decode(&idx)
	resp.Body.Close()
	// Each referrer's own manifest says what it is.
	var types []string
	for _, m := range idx.Manifests {
		var rm struct {
			ArtifactType string
			Subject      struct{ Digest string }
		}
		mr, err := http.Get(srv.URL + "/v2/ref/app/manifests/" + m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(mr.Body).Decode(&rm)
		mr.Body.Close()
		if rm.Subject.Digest != digest {
			t.Errorf("referrer %s has subject %s", m.Digest, rm.Subject.Digest)
		}
		types = append(types, rm.ArtifactType)
	}
	if got := strings.Join(types, " "); !strings.Contains(got, "application/vnd.dev.cosign.artifact.sig.v1+json") || !strings.Contains(got, "application/vnd.in-toto+json") || len(types) != 2 {
		t.Errorf("the referrers of %s are %q, want cosign's signature and an in-toto attestation", digest, got)
	}
	r = mustPush(t, env(plain.Host+"/ref/app"))
	assertContains(t, r, "signed "+plain.Host+"/ref/app@"+digest+" with slsaprovenance1 attestations (cosign's tags)")
	resp, err = plain.Client().Get(plain.URL() + "/v2/ref/app/referrers/" + digest)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("distribution answers the referrers API: %s", resp.Status)
	}
}

// The SBOM of a docker-archive is Trivy's analysis of the image the first
// time; once Trivy's layer cache holds its layers (a scan step's, or an
// earlier push's), Trivy reads only the manifest and config, and the SBOM
// lists the same packages and names the same archive.
func TestSBOMFromLayerCache(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	tar, _ := buildTar(t, "FROM "+f.Base+"\nCOPY rootfs/ /\n", apkImage("musl", "1.2.4-r3", "busybox", "1.36.1-r15"))
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	key, pub := keyPair(t, "pw")
	cache := t.TempDir()
	var boms []map[string]any
	for i, from := range []string{"the image", "Trivy's layer cache"} {
		repo := fmt.Sprintf("%s/sbom%d/app", a.Host, i)
		r := mustPush(t, scanEnv(t, k, "PLUGIN_PUSH_ONLY", "true", "PLUGIN_SOURCE_TAR_PATH", tar, "PLUGIN_REPO", repo, "PLUGIN_TAGS", "1",
			"PLUGIN_SCAN_CACHE_DIR", cache, "PLUGIN_SIGN", "true", "PLUGIN_SIGN_KEY", key, "PLUGIN_SIGN_PASSWORD", "pw", "PLUGIN_SBOM", "true"))
		assertContains(t, r, "sbom: 1 CycloneDX SBOM(s) by Trivy 0.74.0 from "+from+" in ")
		digest := digestOf(t, a, repo+":1")
		sts, out, err := statements(t, a, pub, "cyclonedx", repo+"@"+digest)
		if err != nil || len(sts) != 1 {
			t.Fatalf("the SBOM from %s: %v\n%s", from, err, out)
		}
		bom, _ := at(sts[0], "predicate").(map[string]any)
		if name := at(bom, "metadata", "component", "name"); name != tar {
			t.Errorf("the SBOM from %s names %v, want the archive %s", from, name, tar)
		}
		var manifest struct {
			Config struct{ Digest string }
		}
		json.Unmarshal([]byte(a.Crane(t, "manifest", repo+"@"+digest)), &manifest)
		if id := imageID(bom); id == "" || id != manifest.Config.Digest {
			t.Errorf("the SBOM from %s names the config %q, want %s", from, id, manifest.Config.Digest)
		}
		boms = append(boms, bom)
	}
	packages := func(bom map[string]any) []string {
		var out []string
		cs, _ := bom["components"].([]any)
		for _, c := range cs {
			out = append(out, fmt.Sprint(at(c, "type"), " ", at(c, "name"), " ", at(c, "version"), " ", at(c, "purl")))
		}
		slices.Sort(out)
		return out
	}
	first, second := packages(boms[0]), packages(boms[1])
	t.Logf("components: %q", first)
	if len(first) < 2 || !strings.Contains(strings.Join(first, "\n"), "library busybox 1.36.1-r15 pkg:apk/alpine/busybox@1.36.1-r15") || !slices.Equal(first, second) {
		t.Errorf("the SBOMs list different components:\nfrom the image %q\nfrom the cache %q", first, second)
	}
}
