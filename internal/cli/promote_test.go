package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hoist-build/hoist/internal/harness"
)

// hoist promote from a staging registry to two others (one with TLS and
// a login), registry to registry: the digest, its cosign signature, its
// SBOM and provenance attestations are there on both, and the real cosign
// CLI verifies them there without anything signed again; the image runs;
// a second promotion finds everything there; within one registry the
// blobs are mounted.
func TestPromote(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	stage := harness.StartRegistry(t, harness.RegistryOptions{})
	b := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, TLS: true})
	c := harness.StartRegistry(t, harness.RegistryOptions{})
	const password = "promote-pw-3391"
	key, pub := keyPair(t, password)
	ca, _ := os.ReadFile(b.CAFile)
	records := t.TempDir()
	mustPush(t, merged(map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
		"PLUGIN_REPO": stage.Host + "/stage/app", "PLUGIN_TAGS": "rc-1",
		"PLUGIN_SCAN": "true", "PLUGIN_SCAN_RECORDS": records,
		"PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": key, "PLUGIN_SIGN_PASSWORD": password,
		"PLUGIN_SBOM": "true", "PLUGIN_PROVENANCE": "true"}, scanEnv(t, k)))
	digest := digestOf(t, stage, stage.Host+"/stage/app:rc-1")
	sigTag := "sha256-" + strings.TrimPrefix(digest, "sha256:") + ".sig"
	attTag := "sha256-" + strings.TrimPrefix(digest, "sha256:") + ".att"

	env := map[string]string{"PLUGIN_REGISTRY": b.Host, "PLUGIN_USERNAME": b.User, "PLUGIN_PASSWORD": b.Password, "PLUGIN_REGISTRY_CERTIFICATE": string(ca)}
	r := hoist(t, env, "promote", "--key", pub, "--require", "signature,sbom,provenance,scan",
		stage.Host+"/stage/app:rc-1", b.Host+"/prod/app:1.0", c.Host+"/prod/app:1.0", c.Host+"/prod/app:latest")
	if r.code != 0 {
		t.Fatalf("hoist promote:\n%s", r)
	}
	assertContains(t, r, "promote: "+stage.Host+"/stage/app:rc-1 is "+stage.Host+"/stage/app@"+digest,
		"promote: policy met on the source: signatures 1 valid; attestations: cyclonedx 1, slsaprovenance1 1; scan passed",
		"carries 1 .att, 1 .sig")
	for _, d := range []struct {
		reg *harness.Registry
		ref string
	}{{b, b.Host + "/prod/app:1.0"}, {c, c.Host + "/prod/app:1.0"}, {c, c.Host + "/prod/app:latest"}} {
		if got := digestOf(t, d.reg, d.ref); got != digest {
			t.Errorf("%s is %s, the source is %s", d.ref, got, digest)
		}
		at := strings.Split(d.ref, ":")
		byDigest := strings.Join(at[:len(at)-1], ":") + "@" + digest
		if out, err := verify(t, d.reg, pub, byDigest); err != nil || !strings.Contains(out, digest) {
			t.Errorf("cosign verify %s: %v\n%s", byDigest, err, out)
		}
		for _, kind := range []string{"slsaprovenance1", "cyclonedx"} {
			if out, err := d.reg.Cosign(t, "verify-attestation", "--key", pub, "--insecure-ignore-tlog=true", "--type", kind, "--output", "json", byDigest); err != nil {
				t.Errorf("cosign verify-attestation --type %s %s: %v\n%s", kind, byDigest, err, out)
			}
		}
	}
	if got := f.Docker.RunImage(t, c.Host+"/prod/app:1.0", "cat", "/built.txt"); got != f.Built {
		t.Errorf("the promoted image prints %q, want %q", got, f.Built)
	}
	if tags := tagsOf(t, c, "prod/app"); !sameSet(tags, []string{"1.0", "latest", sigTag, attTag}) {
		t.Errorf("prod/app holds the tags %v, want 1.0, latest and cosign's two", tags)
	}

	// Again: everything is there, nothing is written.
	r = hoist(t, env, "promote", "--key", pub, stage.Host+"/stage/app@"+digest, b.Host+"/prod/app:1.0")
	if r.code != 0 {
		t.Fatalf("hoist promote again:\n%s", r)
	}
	assertContains(t, r, "0 copied, 0 merged with what was there, 2 already there", "up to date")

	// Within the staging registry: the blobs are mounted, as a plugin
	// step (push-only, PLUGIN_PROMOTE) with the peers' names.
	r = hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_PROMOTE": "true", "PLUGIN_SOURCE_IMAGE": stage.Host + "/stage/app:rc-1",
		"PLUGIN_REPO": stage.Host + "/release/app", "PLUGIN_TAGS": "1.0", "PLUGIN_PROMOTE_KEY": pub, "PLUGIN_PROMOTE_REQUIRE": "provenance"})
	if r.code != 0 {
		t.Fatalf("promote within the registry:\n%s", r)
	}
	if out, err := verify(t, stage, pub, stage.Host+"/release/app@"+digest); err != nil {
		t.Errorf("cosign verify of the promotion within the registry: %v\n%s", err, out)
	}
	assertContains(t, r, "mounted")
}

// What a policy refuses is refused on the source, before any byte moves:
// another key, an attestation the source lacks, an unscanned digest; the
// destination registry holds nothing afterwards. Bad settings exit 2.
func TestPromoteRefused(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	stage := harness.StartRegistry(t, harness.RegistryOptions{})
	dest := harness.StartRegistry(t, harness.RegistryOptions{})
	const password = "refuse-pw-1187"
	key, pub := keyPair(t, password)
	_, otherPub := keyPair(t, "other-pw")
	// Signed, with a provenance, not scanned, no SBOM.
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
		"PLUGIN_REPO": stage.Host + "/stage/app", "PLUGIN_TAGS": "rc-1",
		"PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": key, "PLUGIN_SIGN_PASSWORD": password, "PLUGIN_PROVENANCE": "true"})
	// Not signed at all.
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout,
		"PLUGIN_REPO": stage.Host + "/stage/unsigned", "PLUGIN_TAGS": "rc-1"})
	src := stage.Host + "/stage/app:rc-1"
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"another key", []string{"--key", otherPub, src}, "no signature verifies with the key"},
		{"no sbom", []string{"--key", pub, "--require", "sbom", src}, "no signed CycloneDX SBOM attestation"},
		{"not scanned", []string{"--key", pub, "--require", "provenance,scan", src}, "no signed provenance names a scan record"},
		{"not signed", []string{"--key", pub, stage.Host + "/stage/unsigned:rc-1"}, "no signature verifies with the key"},
	} {
		r := hoist(t, map[string]string{}, append([]string{"promote"}, append(c.args, dest.Host+"/prod/app:1")...)...)
		if r.code != 9 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "nothing was promoted") {
			t.Errorf("%s: want exit 9 saying %q and that nothing was promoted:\n%s", c.name, c.want, r)
		}
	}
	empty := func() {
		t.Helper()
		resp, err := http.Get(dest.URL() + "/v2/_catalog")
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, 4096)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if got := string(body[:n]); !strings.Contains(got, `"repositories":[]`) {
			t.Errorf("the destination holds %s after refused promotions", got)
		}
	}
	empty()

	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"not push-only", map[string]string{"PLUGIN_PROMOTE": "true", "PLUGIN_SOURCE_IMAGE": src}, "a promotion is a push-only step"},
		{"a tarball", map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_PROMOTE": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave}, "names a file"},
		{"require without key", map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_PROMOTE": "true", "PLUGIN_SOURCE_IMAGE": src, "PLUGIN_PROMOTE_REQUIRE": "sbom"}, "neither PLUGIN_PROMOTE_KEY nor a keyless identity"},
		{"unknown requirement", map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_PROMOTE": "true", "PLUGIN_SOURCE_IMAGE": src, "PLUGIN_PROMOTE_KEY": pub, "PLUGIN_PROMOTE_REQUIRE": "vex"}, `"vex" is none of signature, sbom, provenance, scan`},
		{"key without promote", map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": src, "PLUGIN_PROMOTE_KEY": pub}, "PLUGIN_PROMOTE is not set"},
		{"signing again", map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_PROMOTE": "true", "PLUGIN_SOURCE_IMAGE": src, "PLUGIN_SIGN_KEY": key, "PLUGIN_SIGN_PASSWORD": password}, "signs nothing"},
		{"a scan here", map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_PROMOTE": "true", "PLUGIN_SOURCE_IMAGE": src, "PLUGIN_SCAN": "true", "PLUGIN_SCAN_TRIVY": harness.Tool(t, "trivy")}, "PLUGIN_PROMOTE_REQUIRE=scan"},
		// A misspelt policy would promote the unsigned image unverified.
		{"a misspelt key", map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_PROMOTE": "true", "PLUGIN_SOURCE_IMAGE": stage.Host + "/stage/unsigned:rc-1", "PLUGIN_PROMOTE_KEYY": pub}, "PLUGIN_PROMOTE_KEYY: not a setting of the promotion's policy (did you mean PLUGIN_PROMOTE_KEY?)"},
		{"a misspelt requirement", map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_PROMOTE": "true", "PLUGIN_SOURCE_IMAGE": src, "PLUGIN_PROMOTE_KEY": pub, "PLUGIN_PROMOTE_REQUIRES": "sbom"}, "PLUGIN_PROMOTE_REQUIRES: not a setting of the promotion's policy (did you mean PLUGIN_PROMOTE_REQUIRE?)"},
	} {
		c.env["PLUGIN_REPO"], c.env["PLUGIN_TAGS"] = dest.Host+"/prod/app", "1"
		r := hoist(t, c.env)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: want exit 2 saying %q:\n%s", c.name, c.want, r)
		}
	}
	empty()
}

// A destination that refuses the signature's manifest gets the image
// untagged and no tag; the other destination is promoted, and the step
// fails naming the one that failed.
func TestPromoteDestinationFails(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	stage := harness.StartRegistry(t, harness.RegistryOptions{})
	good := harness.StartRegistry(t, harness.RegistryOptions{})
	bad := harness.StartRegistry(t, harness.RegistryOptions{})
	const password = "fail-pw-6620"
	key, pub := keyPair(t, password)
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
		"PLUGIN_REPO": stage.Host + "/stage/app", "PLUGIN_TAGS": "rc-1",
		"PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": key, "PLUGIN_SIGN_PASSWORD": password})
	digest := digestOf(t, stage, stage.Host+"/stage/app:rc-1")
	// A proxy in front of a real registry that refuses cosign's tags.
	target, _ := url.Parse(bad.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/sha256-") {
			http.Error(w, `{"errors":[{"code":"DENIED","message":"signatures are not accepted here"}]}`, http.StatusForbidden)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	badHost := strings.TrimPrefix(srv.URL, "http://")
	r := hoist(t, map[string]string{}, "promote", "--key", pub, stage.Host+"/stage/app:rc-1", good.Host+"/prod/app:1", badHost+"/prod/app:1")
	if r.code != 4 || !strings.Contains(r.stderr, badHost+"/prod/app") || !strings.Contains(r.stderr, "nothing was tagged") {
		t.Fatalf("want exit 4 naming %s and saying nothing was tagged:\n%s", badHost, r)
	}
	if got := digestOf(t, good, good.Host+"/prod/app:1"); got != digest {
		t.Errorf("the good destination holds %s, want %s", got, digest)
	}
	if tags := tagsOf(t, bad, "prod/app"); len(tags) != 0 {
		t.Errorf("the failed destination holds the tags %v, want none", tags)
	}
	// The image is there by digest (untagged), ready for a retry.
	if got := digestOf(t, bad, bad.Host+"/prod/app@"+digest); got != digest {
		t.Errorf("the failed destination does not hold the image by digest: %s", got)
	}
}

// sameSet says whether a and b hold the same strings.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// Promoted to three registries, each layer is read once from the source:
// a proxy in front of the staging registry counts the blob reads. Every
// destination holds the image, which runs.
func TestPromoteReadsEachBlobOnce(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	stage := harness.StartRegistry(t, harness.RegistryOptions{})
	var dests []*harness.Registry
	for range 3 {
		dests = append(dests, harness.StartRegistry(t, harness.RegistryOptions{}))
	}
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
		"PLUGIN_REPO": stage.Host + "/stage/app", "PLUGIN_TAGS": "rc-1"})
	digest := digestOf(t, stage, stage.Host+"/stage/app:rc-1")
	target, _ := url.Parse(stage.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	reads := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			mu.Lock()
			reads[req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]]++
			mu.Unlock()
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	src := strings.TrimPrefix(srv.URL, "http://") + "/stage/app:rc-1"
	args := []string{"promote", src}
	for _, d := range dests {
		args = append(args, d.Host+"/prod/app:1")
	}
	r := hoist(t, map[string]string{}, args...)
	if r.code != 0 {
		t.Fatalf("hoist promote:\n%s", r)
	}
	assertContains(t, r, "read once from "+strings.TrimPrefix(srv.URL, "http://")+"/stage/app and sent to 3 registries at once")
	var m struct{ Layers []struct{ Digest string } }
	if err := json.Unmarshal([]byte(stage.Crane(t, "manifest", stage.Host+"/stage/app@"+digest)), &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("the source's manifest: %v", err)
	}
	mu.Lock()
	for _, l := range m.Layers {
		if reads[l.Digest] != 1 {
			t.Errorf("layer %s was read %d times from the source, want once", l.Digest, reads[l.Digest])
		}
	}
	mu.Unlock()
	for _, d := range dests {
		if got := digestOf(t, d, d.Host+"/prod/app:1"); got != digest {
			t.Errorf("%s holds %s, want %s", d.Host, got, digest)
		}
	}
	if got := f.Docker.RunImage(t, dests[2].Host+"/prod/app:1", "cat", "/built.txt"); got != f.Built {
		t.Errorf("the promoted image prints %q, want %q", got, f.Built)
	}
}

// Signatures the cosign CLI wrote (cosign 3's Sigstore bundles, stored as
// OCI referrers: under the referrers tag schema's sha256-<hex> index on
// distribution, which has no referrers API) are promoted to a registry
// with the referrers API (go-containerregistry's registry stands in: no
// real registry here has it) and to one without; cosign verifies there.
// From the registry with the API they are promoted on again. A
// multi-platform index signed with cosign sign --recursive takes each
// platform's signature along.
func TestPromoteReferrers(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	stage := harness.StartRegistry(t, harness.RegistryOptions{})
	plain := harness.StartRegistry(t, harness.RegistryOptions{})
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true)))
	t.Cleanup(srv.Close)
	api := strings.TrimPrefix(srv.URL, "http://")
	const password = "bundle-pw-5150"
	key, pub := keyPair(t, password)
	cosignAt := func(args ...string) (string, error) {
		return harness.RunErr([]string{"HOME=" + t.TempDir(), "COSIGN_PASSWORD=" + password, "COSIGN_YES=true"}, harness.Tool(t, "cosign"),
			append(args[:1:1], append([]string{"--allow-insecure-registry", "--allow-http-registry"}, args[1:]...)...)...)
	}
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": stage.Host + "/stage/app", "PLUGIN_TAGS": "1"})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.MultiLayout, "PLUGIN_REPO": stage.Host + "/stage/multi", "PLUGIN_TAGS": "1"})
	digest := digestOf(t, stage, stage.Host+"/stage/app:1")
	index := digestOf(t, stage, stage.Host+"/stage/multi:1")
	for _, ref := range []string{stage.Host + "/stage/app@" + digest, stage.Host + "/stage/multi@" + index} {
		if out, err := cosignAt("sign", "--key", key, "--tlog-upload=false", "--use-signing-config=false", "--recursive", ref); err != nil {
			t.Fatalf("cosign sign %s: %v\n%s", ref, err, out)
		}
	}
	fallback := "sha256-" + strings.TrimPrefix(digest, "sha256:")
	if tags := tagsOf(t, stage, "stage/app"); !slices.Contains(tags, fallback) {
		t.Fatalf("cosign wrote no referrers tag index on distribution: tags %v", tags)
	}
	verifyAt := func(ref string) {
		t.Helper()
		if out, err := cosignAt("verify", "--key", pub, "--insecure-ignore-tlog=true", "--output", "text", ref); err != nil || !strings.Contains(out, ref[strings.Index(ref, "@")+1:]) {
			t.Errorf("cosign verify %s: %v\n%s", ref, err, out)
		}
	}
	verifyAt(stage.Host + "/stage/app@" + digest)

	r := hoist(t, map[string]string{}, "promote", "--key", pub, "--require", "signature", stage.Host+"/stage/app:1", api+"/prod/app:1", plain.Host+"/prod/app:1")
	if r.code != 0 {
		t.Fatalf("hoist promote:\n%s", r)
	}
	assertContains(t, r, "promote: policy met on the source: signatures 1 valid", "referrer(s)")
	verifyAt(api + "/prod/app@" + digest)
	verifyAt(plain.Host + "/prod/app@" + digest)
	resp, err := http.Get(srv.URL + "/v2/prod/app/referrers/" + digest)
	if err != nil {
		t.Fatal(err)
	}
	var idx struct{ Manifests []struct{ Digest string } }
	json.NewDecoder(resp.Body).Decode(&idx)
	resp.Body.Close()
	if len(idx.Manifests) == 0 {
		t.Errorf("the registry with the referrers API lists no referrer of %s", digest)
	}
	if tags := tagsOf(t, plain, "prod/app"); !sameSet(tags, []string{"1", fallback}) {
		t.Errorf("distribution holds the tags %v, want 1 and the referrers tag index %s", tags, fallback)
	}

	// On from the registry with the API.
	next := harness.StartRegistry(t, harness.RegistryOptions{})
	r = hoist(t, map[string]string{}, "promote", "--key", pub, api+"/prod/app:1", next.Host+"/prod/app:1")
	if r.code != 0 {
		t.Fatalf("hoist promote from the registry with the referrers API:\n%s", r)
	}
	verifyAt(next.Host + "/prod/app@" + digest)

	// The same registry, saying its referrers list goes on on a next
	// page (as the spec allows, and go-containerregistry does not
	// follow): refused, nothing promoted, rather than copied without
	// what the next page would list.
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	// Without a policy, every referrer on the first page; with one,
	// the first page empty (the signature on the next): refused as paged,
	// not as unsigned.
	var emptyFirst atomic.Bool
	paging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "/referrers/") {
			w.Header().Set("Link", `<`+req.URL.Path+`?n=1&last=x>; rel="next"`)
			if emptyFirst.Load() {
				w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
				w.Write([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
				return
			}
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(paging.Close)
	paged := harness.StartRegistry(t, harness.RegistryOptions{})
	for _, policy := range [][]string{nil, {"--key", pub}} {
		emptyFirst.Store(policy != nil)
		args := append(append([]string{"promote"}, policy...), strings.TrimPrefix(paging.URL, "http://")+"/prod/app:1", paged.Host+"/prod/app:1")
		r = hoist(t, map[string]string{}, args...)
		if r.code != ExitSource || !strings.Contains(r.stderr, "lists the referrers in pages") || !strings.Contains(r.stderr, "nothing was promoted") {
			t.Errorf("a paged referrers list (policy %v): want exit %d, refused, nothing promoted:\n%s", policy, ExitSource, r)
		}
	}
	if got := catalog(t, paged); got != "" {
		t.Errorf("the destination holds %q after a refused promotion", got)
	}

	// The index: each platform's signature comes along.
	r = hoist(t, map[string]string{}, "promote", "--key", pub, stage.Host+"/stage/multi:1", plain.Host+"/prod/multi:1")
	if r.code != 0 {
		t.Fatalf("hoist promote of an index:\n%s", r)
	}
	var m struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal([]byte(stage.Crane(t, "manifest", stage.Host+"/stage/multi@"+index)), &m); err != nil || len(m.Manifests) != 2 {
		t.Fatalf("the index: %v %+v", err, m)
	}
	verifyAt(plain.Host + "/prod/multi@" + index)
	for _, c := range m.Manifests {
		verifyAt(plain.Host + "/prod/multi@" + c.Digest)
	}
}

// A source registry that lists, under the digest's referrers tag index,
// a manifest whose subject is another image (planted: it would attach
// itself to that image in every destination) is refused before any byte
// moves; the destination holds nothing.
func TestPromoteRefusesAPlantedReferrer(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	stage := harness.StartRegistry(t, harness.RegistryOptions{})
	dest := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": stage.Host + "/stage/app", "PLUGIN_TAGS": "1"})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REPO": stage.Host + "/stage/app", "PLUGIN_TAGS": "other"})
	digest := digestOf(t, stage, stage.Host+"/stage/app:1")
	other := digestOf(t, stage, stage.Host+"/stage/app:other")
	repo, err := name.NewRepository(stage.Host+"/stage/app", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	otherDesc, err := remote.Head(repo.Digest(other))
	if err != nil {
		t.Fatal(err)
	}
	planted := mutate.Subject(mutate.MediaType(empty.Image, types.OCIManifestSchema1), *otherDesc).(v1.Image)
	planted = mutate.ConfigMediaType(planted, "application/vnd.example.planted+json")
	pd, err := planted.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Digest(pd.String()), planted); err != nil {
		t.Fatal(err)
	}
	pm, _ := planted.Manifest()
	raw, _ := planted.RawManifest()
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{
		Add: planted, Descriptor: v1.Descriptor{MediaType: pm.MediaType, Digest: pd, Size: int64(len(raw)), ArtifactType: "application/vnd.example.planted+json"}})
	if err := remote.WriteIndex(repo.Tag("sha256-"+strings.TrimPrefix(digest, "sha256:")), idx); err != nil {
		t.Fatal(err)
	}
	r := hoist(t, map[string]string{}, "promote", stage.Host+"/stage/app@"+digest, dest.Host+"/prod/app:1")
	if r.code != ExitSource || !strings.Contains(r.stderr, "does not name it as its subject") || !strings.Contains(r.stderr, "nothing was promoted") {
		t.Fatalf("want exit %d refusing the planted referrer:\n%s", ExitSource, r)
	}
	if tags := tagsOf(t, dest, "prod/app"); len(tags) != 0 {
		t.Errorf("the destination holds %v", tags)
	}
}

// A source that cannot be reached fails the promotion (exit 3) before
// anything is written; one that stops sending in the middle of a layer
// is bounded by PLUGIN_REGISTRY_TIMEOUT, as every transfer is: the step
// fails naming the stall, within the bound, and the destination got no
// tag; one that cuts a layer short is named as the one that did.
func TestPromoteSourceUnreachableOrStalled(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	stage := harness.StartRegistry(t, harness.RegistryOptions{})
	dest := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
		"PLUGIN_REPO": stage.Host + "/stage/app", "PLUGIN_TAGS": "rc-1"})

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	r := hoist(t, map[string]string{"PLUGIN_REGISTRY_TIMEOUT": "2s"}, "promote", closed+"/stage/app:rc-1", dest.Host+"/prod/app:1")
	if r.code != ExitSource || !strings.Contains(r.stderr, closed) {
		t.Errorf("an unreachable source: want exit %d naming %s:\n%s", ExitSource, closed, r)
	}

	// In front of the staging registry: every blob's body stops after
	// its first 64 KiB, and the connection stays open.
	target, _ := url.Parse(stage.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var stalled sync.Once
	stalls := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			proxy.ServeHTTP(&stallingWriter{ResponseWriter: w, left: 64 << 10, ctx: req.Context()}, req)
			stalled.Do(func() { close(stalls) })
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	slowHost := strings.TrimPrefix(srv.URL, "http://")
	start := time.Now()
	r = hoist(t, map[string]string{"PLUGIN_REGISTRY_TIMEOUT": "2s"}, "promote", slowHost+"/stage/app:rc-1", dest.Host+"/prod/app:1")
	took := time.Since(start)
	select {
	case <-stalls:
	default:
		t.Fatalf("no blob was read through the stalling proxy:\n%s", r)
	}
	if r.code == 0 || !strings.Contains(r.stderr, "transfer stalled") {
		t.Errorf("a stalled source: want a failure naming the stall:\n%s", r)
	}
	if took > 60*time.Second {
		t.Errorf("the stalled promotion took %s, bounded by PLUGIN_REGISTRY_TIMEOUT=2s per read (and its retries)", took)
	}
	if tags := tagsOf(t, dest, "prod/app"); len(tags) != 0 {
		t.Errorf("the destination got tags %v from a stalled promotion", tags)
	}

	// A source that cuts a blob short (its Content-Length promised, the
	// connection closed after 64 KiB): the error names the blob and the
	// source it was read from, not only the destination's connection it
	// was being copied into.
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			proxy.ServeHTTP(&cuttingWriter{ResponseWriter: w, left: 64 << 10}, req)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(cut.Close)
	cutHost := strings.TrimPrefix(cut.URL, "http://")
	r = hoist(t, map[string]string{"PLUGIN_REGISTRY_TIMEOUT": "2s"}, "promote", cutHost+"/stage/app:rc-1", dest.Host+"/prod/cut:1")
	if r.code == 0 || !strings.Contains(r.stderr, "reading blob sha256:") || !strings.Contains(r.stderr, " from "+cutHost+": unexpected EOF") {
		t.Errorf("a source cutting a blob short: want a failure naming the blob and %s:\n%s", cutHost, r)
	}
	if tags := tagsOf(t, dest, "prod/cut"); len(tags) != 0 {
		t.Errorf("the destination got tags %v from a cut promotion", tags)
	}
}

// cuttingWriter passes a body's writes until left bytes have passed,
// then refuses the rest, which ends the response short of its length.
type cuttingWriter struct {
	http.ResponseWriter
	left int
}

func (w *cuttingWriter) Write(p []byte) (int, error) {
	if w.left <= 0 {
		return 0, errors.New("cut")
	}
	w.left -= len(p)
	return w.ResponseWriter.Write(p)
}

// stallingWriter passes a body's writes until left bytes have passed,
// then holds the response open, writing nothing, until the request ends.
type stallingWriter struct {
	http.ResponseWriter
	left int
	ctx  context.Context
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	if w.left <= 0 {
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case <-w.ctx.Done():
		case <-time.After(90 * time.Second):
		}
		return 0, errors.New("stalled")
	}
	w.left -= len(p)
	return w.ResponseWriter.Write(p)
}
