package cli

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// Every client hoist makes refuses plain HTTP to a registry that is not
// on loopback: "far" is a real registry in a network namespace the test
// makes, at a private address (10.200.x.x) that go-containerregistry
// alone would reach over plain HTTP. The push, a registry source, the
// signature write, hoist verify and the vulnerability database's download
// each fail with an error that names the setting that would allow it
// (PLUGIN_INSECURE; none for the database), and write nothing; the same
// works over loopback, and with PLUGIN_INSECURE=true far is reached (so
// the refusal is the guard's, not the network's).
func TestPlainHTTPBeyondLoopbackIsRefusedByEveryClient(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	ns := harness.NewNetns(t)
	far := harness.StartRegistry(t, harness.RegistryOptions{Netns: ns})
	near := harness.StartRegistry(t, harness.RegistryOptions{})
	if !strings.HasPrefix(far.Host, "10.200.") {
		t.Fatalf("the far registry is at %s", far.Host)
	}
	key, pub := keyPair(t, "pw")
	refused := func(t *testing.T, what string, r result, code int, setting string) {
		t.Helper()
		if r.code != code {
			t.Errorf("%s: exit %d, want %d:\n%s", what, r.code, code, r)
		}
		for _, w := range []string{far.Host, "plain HTTP", setting} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: the error does not say %q:\n%s", what, w, r)
			}
		}
	}
	pushEnv := func(dest string, kv ...string) map[string]string {
		return with(map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_DESTINATIONS": dest}, kv...)
	}
	signed := []string{"PLUGIN_SIGN", "true", "PLUGIN_SIGN_KEY", key, "PLUGIN_SIGN_PASSWORD", "pw"}

	t.Run("push", func(t *testing.T) {
		refused(t, "push", hoist(t, pushEnv(far.Host+"/push/app:1")), ExitPush, "PLUGIN_INSECURE=true")
		if tags := tagsOf(t, far, "push/app"); len(tags) != 0 {
			t.Errorf("tagged over plain HTTP: %v", tags)
		}
		assertPushed(t, mustPush(t, pushEnv(near.Host+"/push/app:1")), near, near.Host+"/push/app:1")
		r := mustPush(t, pushEnv(far.Host+"/push/app:1", append([]string{"PLUGIN_INSECURE", "true"}, signed...)...))
		assertPushed(t, r, far, far.Host+"/push/app:1")
		assertContains(t, r, "using plain HTTP to "+far.Host+" (PLUGIN_INSECURE)")
	})

	t.Run("registry source", func(t *testing.T) {
		src := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": far.Host + "/push/app:1", "PLUGIN_DESTINATIONS": near.Host + "/from-far/app:1"}
		refused(t, "source", hoist(t, src), ExitSource, "PLUGIN_INSECURE=true")
		if tags := tagsOf(t, near, "from-far/app"); len(tags) != 0 {
			t.Errorf("pushed from a plain HTTP source: %v", tags)
		}
		assertPushed(t, mustPush(t, with(src, "PLUGIN_INSECURE", "true")), near, near.Host+"/from-far/app:1")
		loop := mustPush(t, with(src, "PLUGIN_SOURCE_IMAGE", near.Host+"/push/app:1", "PLUGIN_DESTINATIONS", near.Host+"/from-near/app:1"))
		assertPushed(t, loop, near, near.Host+"/from-near/app:1")
	})

	t.Run("signature write", func(t *testing.T) {
		// The signature goes where the image went, over the same client:
		// without PLUGIN_INSECURE the push to far is refused above and no
		// signature is written there; with it both went (the push above).
		// Here a loopback registry sends cosign's signature requests on
		// (a redirect, as registries send blobs to storage) to plain HTTP
		// beyond loopback: to far's address, which go-containerregistry
		// itself refuses (a redirect to a private address), and to a host
		// name, which hoist's guard refuses before any lookup. The image
		// is pushed to the loopback registry; no signature is written.
		ssrf := "redirect from \"127.0.0.1\" to private/link-local host \"" + ns.IP + "\" denied"
		const name = "far-registry.hoist.invalid:5000"
		for _, to := range []struct {
			host, repo string
			says       map[string]string // PLUGIN_INSECURE → what the error says
		}{
			{far.Host, "steered/far", map[string]string{"false": ssrf, "true": ssrf}},
			{name, "steered/named", map[string]string{
				"false": "plain HTTP refused: " + name + " is not on loopback",
				// Allowed, the request goes on and finds no such host.
				"true": "using plain HTTP to " + name + " (PLUGIN_INSECURE)"}},
		} {
			target, _ := url.Parse(near.URL())
			rp := httputil.NewSingleHostReverseProxy(target)
			var steered atomic.Int32
			steer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if strings.Contains(req.URL.Path, "/manifests/sha256-") {
					steered.Add(1)
					http.Redirect(w, req, "http://"+to.host+req.URL.RequestURI(), http.StatusTemporaryRedirect)
					return
				}
				rp.ServeHTTP(w, req)
			}))
			t.Cleanup(steer.Close)
			host := strings.TrimPrefix(steer.URL, "http://")
			for _, insecure := range []string{"false", "true"} {
				r := hoist(t, pushEnv(host+"/"+to.repo+":1", append([]string{"PLUGIN_INSECURE", insecure}, signed...)...))
				if r.code != ExitPush || !strings.Contains(r.stderr, "the image is pushed but not signed") || !strings.Contains(r.stderr, to.says[insecure]) {
					t.Errorf("signature steered to %s, PLUGIN_INSECURE=%s: exit %d, want %d and %q:\n%s", to.host, insecure, r.code, ExitPush, to.says[insecure], r)
				}
			}
			if steered.Load() == 0 {
				t.Fatalf("no signature request was steered to %s", to.host)
			}
			if tags := tagsOf(t, near, to.repo); !slices.Equal(tags, []string{"1"}) {
				t.Errorf("the loopback registry holds %v, want the image's tag alone", tags)
			}
		}
		if tags := tagsOf(t, far, "steered/far"); len(tags) != 0 {
			t.Errorf("a signature reached far: %v", tags)
		}
		// Over loopback the signature is written.
		mustPush(t, pushEnv(near.Host+"/signed/app:1", signed...))
		if tags := tagsOf(t, near, "signed/app"); len(tags) != 2 {
			t.Errorf("the loopback registry holds %v, want the tag and the signature", tags)
		}
	})

	t.Run("hoist verify", func(t *testing.T) {
		// far holds a signed image (the push above, with PLUGIN_INSECURE).
		ref := far.Host + "/push/app@" + digestOf(t, far, far.Host+"/push/app:1")
		v := hoist(t, map[string]string{}, "verify", "--key", pub, ref)
		if v.code == 0 || strings.Contains(v.stdout, "verified") {
			t.Errorf("verified over plain HTTP:\n%s", v)
		}
		refused(t, "verify", v, v.code, "PLUGIN_INSECURE=true")
		if v := hoist(t, map[string]string{"PLUGIN_INSECURE": "true"}, "verify", "--key", pub, ref); v.code != 0 || !strings.Contains(v.stdout, "verified "+ref) {
			t.Errorf("verify with PLUGIN_INSECURE=true:\n%s", v)
		}
		loop := near.Host + "/signed/app@" + digestOf(t, near, near.Host+"/signed/app:1")
		if v := hoist(t, map[string]string{}, "verify", "--key", pub, loop); v.code != 0 || !strings.Contains(v.stdout, "verified "+loop) {
			t.Errorf("verify over loopback:\n%s", v)
		}
	})

	t.Run("vulnerability database", func(t *testing.T) {
		farDB := harness.PushTrivyDB(t, far, "mirror/trivy-db", k.DB)
		scan := func(repo string, kv ...string) result {
			return hoist(t, with(scanEnv(t, k, "PLUGIN_SCAN_DB_REPOSITORY", repo, "PLUGIN_SCAN_RECORDS", t.TempDir(), "PLUGIN_SCAN_EXIT_CODE", "0"), kv...), "scan", f.DockerSave)
		}
		// No setting allows it: PLUGIN_INSECURE does not apply.
		for _, kv := range [][]string{nil, {"PLUGIN_INSECURE", "true"}} {
			r := scan(farDB, kv...)
			refused(t, "database download "+strings.Join(kv, "="), r, ExitScanner, "no setting allows plain HTTP for it")
			assertNotContains(t, r, "set PLUGIN_INSECURE=true")
		}
		if r := scan(k.DBRef); r.code != 0 || !strings.Contains(r.stderr, "fetching it from "+k.DBRef) {
			t.Errorf("database over loopback: exit %d:\n%s", r.code, r)
		}
	})
}
