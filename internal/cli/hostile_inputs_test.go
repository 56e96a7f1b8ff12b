//go:debug netdns=go

// The Go resolver, whatever the machine's nsswitch.conf says: a host
// name whose label is longer than DNS allows fails its lookup as "no such
// host" without a query (only loopback traffic in tests).

package cli

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// Issue 24, item 5: an OCI layout whose index.json, or a manifest it
// names, holds an invalid digest (the hostile layouts of
// internal/source/testdata/hostile) is refused as what it is: the
// descriptor, its digest and what a digest looks like, exit 3, and
// nothing is pushed; it is not "not valid JSON".
func TestInvalidDigestInLayoutFailsClearly(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	for layout, want := range map[string]string{
		"index-bad-digest":    `manifests[0] (app:1) has digest "sha256:not-a-digest", which is not a digest`,
		"manifest-bad-digest": `layers[0] has digest "sha256:4783C9C16CC9B7E0AD0E2F1A1B3D64F6C2E3F1B8E5E1F0B0A4C3D2E1F0A9B8C7", which is not a digest`,
	} {
		dir := filepath.Join(harness.ModuleRoot(), "internal", "source", "testdata", "hostile", layout)
		r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": dir, "PLUGIN_REPO": reg.Host + "/bad/app", "PLUGIN_TAGS": "1"})
		if r.code != ExitSource {
			t.Errorf("%s: exit %d, want %d:\n%s", layout, r.code, ExitSource, r)
		}
		assertContains(t, r, "OCI layout "+dir, want, "a digest is an algorithm, a colon and the content's hash in lowercase hexadecimal: sha256: and 64 digits")
		assertNotContains(t, r, "not valid JSON")
	}
	if tags := tagsOf(t, reg, "bad/app"); len(tags) > 0 {
		t.Errorf("tags were written: %v", tags)
	}
}

// Issue 24, item 5: hoist verify against a registry that gives no answer
// (the connection refused, its name not resolved, 503 after the retries,
// for the image or for its signatures) says the registry is unavailable
// and that nothing was verified, exit 3, as a push-only step from such a
// source registry does; not "image not found", and not "no signature
// verifies" (exit 9). An image the registry says it does not have is
// still "image not found".
func TestVerifyUnavailableRegistryIsNotNotFound(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	key, pub := keyPair(t, "pw")
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": reg.Host + "/signed/app", "PLUGIN_TAGS": "1",
		"PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": key, "PLUGIN_SIGN_PASSWORD": "pw"})
	digest := digestOf(t, reg, reg.Host+"/signed/app:1")
	// The signed image verifies: what fails below is the registry.
	if v := hoist(t, map[string]string{}, "verify", "--key", pub, reg.Host+"/signed/app@"+digest); v.code != 0 || !strings.Contains(v.stdout, "verified") {
		t.Fatalf("hoist verify of the signed image:\n%s", v)
	}

	refused := harness.RefusedAddr(t)
	unresolved := strings.Repeat("a", 64) + ".example"
	manifests := &faultProxy{match: func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") }, status: http.StatusServiceUnavailable, times: 1000}
	busy := startFaultProxy(t, reg, manifests)
	sigs := &faultProxy{match: func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/sha256-") }, status: http.StatusServiceUnavailable, times: 1000}
	sigsBusy := startFaultProxy(t, reg, sigs)

	for _, c := range []struct {
		name, ref string
		want      []string
	}{
		{"connection refused", refused + "/signed/app:1", []string{"registry " + refused + " is unavailable (it cannot be reached)", "connection refused"}},
		{"name not resolved", unresolved + "/signed/app:1", []string{"registry " + unresolved + " is unavailable (it cannot be reached)", "no such host"}},
		{"503", busy + "/signed/app:1", []string{"registry " + busy + " is unavailable (after retries)", "UNAVAILABLE: injected fault"}},
		{"503 for the signatures", sigsBusy + "/signed/app@" + digest, []string{"registry " + sigsBusy + " is unavailable (after retries)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := hoist(t, map[string]string{"PLUGIN_REGISTRY_TIMEOUT": "5s"}, "verify", "--key", pub, c.ref)
			if v.code != ExitSource {
				t.Errorf("exit %d, want %d:\n%s", v.code, ExitSource, v)
			}
			assertContains(t, v, append(c.want, "hoist: registry unavailable: ", "nothing was verified")...)
			assertNotContains(t, v, "image not found", "no signature verifies", "verified sha256")
		})
	}
	// A push-only step from the same registries says the same.
	for _, src := range []string{refused, unresolved} {
		r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": src + "/signed/app:1", "PLUGIN_REPO": reg.Host + "/copy/app", "PLUGIN_TAGS": "1"})
		if r.code != ExitSource {
			t.Errorf("push-only from %s: exit %d, want %d:\n%s", src, r.code, ExitSource, r)
		}
		assertContains(t, r, "hoist: source registry unavailable: ", "registry "+src+" is unavailable (it cannot be reached)")
		assertNotContains(t, r, "image not found")
	}
	// The registry answers that it has no such image: not found.
	v := hoist(t, map[string]string{}, "verify", "--key", pub, reg.Host+"/signed/none:1")
	if v.code != ExitSource {
		t.Errorf("a missing image: exit %d, want %d:\n%s", v.code, ExitSource, v)
	}
	assertContains(t, v, "hoist: image not found: "+reg.Host+"/signed/none:1")
	assertNotContains(t, v, "unavailable")
}

// A registry whose referrers API fails (500) still verifies a signature
// in cosign's tags: the Sigstore bundles hoist verify also reads are
// looked for there first, and their failure alone is not "unavailable".
// A requirement nothing satisfies is then "unavailable" (the bundles
// might hold it), not "not verified".
func TestVerifyWithAFailingReferrersAPI(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	key, pub := keyPair(t, "pw")
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": reg.Host + "/signed/app", "PLUGIN_TAGS": "1",
		"PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": key, "PLUGIN_SIGN_PASSWORD": "pw"})
	digest := digestOf(t, reg, reg.Host+"/signed/app:1")
	referrers := &faultProxy{match: func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/referrers/") }, status: http.StatusInternalServerError, times: 1000}
	host := startFaultProxy(t, reg, referrers)
	v := hoist(t, map[string]string{"PLUGIN_REGISTRY_TIMEOUT": "5s"}, "verify", "--key", pub, host+"/signed/app@"+digest)
	if v.code != 0 || !strings.Contains(v.stdout, "verified") {
		t.Errorf("verify with the referrers API failing: exit %d:\n%s", v.code, v)
	}
	if referrers.faults.Load() == 0 {
		t.Errorf("the referrers API was never asked: the test proves nothing")
	}
	v = hoist(t, map[string]string{"PLUGIN_REGISTRY_TIMEOUT": "5s"}, "verify", "--key", pub, "--require", "sbom", host+"/signed/app@"+digest)
	if v.code != ExitSource {
		t.Errorf("a missing SBOM with the referrers API failing: exit %d, want %d:\n%s", v.code, ExitSource, v)
	}
	assertContains(t, v, "hoist: registry unavailable: ")
}
