package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// keyPair makes a cosign key pair with the pinned cosign CLI.
func keyPair(t *testing.T, password string) (key, pub string) {
	t.Helper()
	dir := t.TempDir()
	cosign := harness.Tool(t, "cosign")
	if out, err := harness.RunErr([]string{"COSIGN_PASSWORD=" + password, "HOME=" + dir}, "sh", "-c", "cd "+dir+" && "+cosign+" generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	return filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
}

// verify runs cosign verify --key on ref, offline (no transparency log).
func verify(t *testing.T, reg *harness.Registry, pub, ref string) (string, error) {
	t.Helper()
	return reg.Cosign(t, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--output", "text", ref)
}

// PLUGIN_SIGN on a push-only step: after the push, the digest is signed
// once per repository, in a plain and an auth registry, and the real
// cosign CLI verifies each signature with the public key; another key
// does not verify; the key and its password are never printed.
func TestSignOnPush(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	b := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, TLS: true})
	const password = "sign-pw-4471"
	key, pub := keyPair(t, password)
	_, otherPub := keyPair(t, "other-pw")
	keyPEM, _ := os.ReadFile(key)
	ca, _ := os.ReadFile(b.CAFile)

	r := mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
		"PLUGIN_REPO": a.Host + "/signed/app", "PLUGIN_TAGS": "1,latest", "PLUGIN_DESTINATIONS": b.Host + "/team/app:1",
		"PLUGIN_PASSWORD": b.Password, "PLUGIN_USERNAME": b.User, "PLUGIN_REGISTRY": b.Host, "PLUGIN_REGISTRY_CERTIFICATE": string(ca),
		"PLUGIN_SIGN": "true", "PLUGIN_COSIGN_PRIVATE_KEY": string(keyPEM), "PLUGIN_COSIGN_PASSWORD": password})
	digest := digestOf(t, a, a.Host+"/signed/app:1")
	if got := digestOf(t, b, b.Host+"/team/app:1"); got != digest {
		t.Fatalf("the registries hold %s and %s", digest, got)
	}
	for _, c := range []struct {
		reg *harness.Registry
		ref string
	}{{a, a.Host + "/signed/app@" + digest}, {b, b.Host + "/team/app@" + digest}} {
		out, err := verify(t, c.reg, pub, c.ref)
		if err != nil || !strings.Contains(out, digest) {
			t.Errorf("cosign verify %s: %v\n%s", c.ref, err, out)
		}
		if out, err := verify(t, c.reg, otherPub, c.ref); err == nil {
			t.Errorf("another key verifies %s:\n%s", c.ref, out)
		}
	}
	// One signature per repository, whatever the number of tags.
	if tags := tagsOf(t, a, "signed/app"); len(tags) != 3 {
		t.Errorf("signed/app tags %v, want 1, latest and the signature's", tags)
	}
	assertContains(t, r, "signed "+a.Host+"/signed/app@"+digest, "signed "+b.Host+"/team/app@"+digest)
	assertNotContains(t, r, password, strings.Split(string(keyPEM), "\n")[1])

	// A multi-platform index is signed at the index digest.
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.MultiLayout, "PLUGIN_REPO": a.Host + "/signed/multi",
		"PLUGIN_TAGS": "1", "PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": key, "PLUGIN_SIGN_PASSWORD": password})
	index := digestOf(t, a, a.Host+"/signed/multi:1")
	if out, err := verify(t, a, pub, a.Host+"/signed/multi@"+index); err != nil || !strings.Contains(out, index) {
		t.Errorf("cosign verify of the index %s: %v\n%s", index, err, out)
	}

	// A signature of another digest does not verify: the index's
	// signature copied (with crane) over the image's.
	sigTag := func(d string) string { return "sha256-" + strings.TrimPrefix(d, "sha256:") + ".sig" }
	a.Crane(t, "copy", a.Host+"/signed/multi:"+sigTag(index), a.Host+"/signed/app:"+sigTag(digest))
	if out, err := verify(t, a, pub, a.Host+"/signed/app@"+digest); err == nil {
		t.Errorf("another digest's signature verifies %s:\n%s", digest, out)
	}
}

// A registry that takes the image and refuses its signature: the step
// fails, and says the image is pushed but not signed.
func TestSignRefused(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	key, _ := keyPair(t, "pw")
	// The registry refuses to store cosign's tags (the signature is
	// refused after the push), or to read them (the preparation alongside
	// the push fails, and signing is tried again after it, and fails).
	for _, method := range []string{http.MethodPut, http.MethodGet} {
		target, _ := url.Parse(reg.URL())
		proxy := httputil.NewSingleHostReverseProxy(target)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == method && strings.Contains(r.URL.Path, "/manifests/sha256-") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, `{"errors":[{"code":"DENIED","message":"signatures are not accepted here"}]}`)
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		host := strings.TrimPrefix(srv.URL, "http://")
		repo := "refused/" + strings.ToLower(method)
		r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": host + "/" + repo,
			"PLUGIN_TAGS": "1", "PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": key, "PLUGIN_SIGN_PASSWORD": "pw"})
		if r.code != ExitPush || !strings.Contains(r.stderr, "the image is pushed but not signed everywhere") || !strings.Contains(r.stderr, "signatures are not accepted here") {
			t.Errorf("%s refused: exit %d, want %d:\n%s", method, r.code, ExitPush, r)
		}
		if d := digestOf(t, reg, reg.Host+"/"+repo+":1"); !strings.HasPrefix(d, "sha256:") {
			t.Errorf("%s refused: the image is not there: %q", method, d)
		}
		if tags := tagsOf(t, reg, repo); len(tags) != 1 {
			t.Errorf("%s refused: tags %v, want the image's only", method, tags)
		}
	}
}

// Bad signing input is refused before anything is pushed.
func TestSignBadInput(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	key, _ := keyPair(t, "right-pw")
	notKey := filepath.Join(t.TempDir(), "x.pem")
	os.WriteFile(notKey, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o600)
	push := func(kv ...string) result {
		env := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": a.Host + "/bad/app", "PLUGIN_TAGS": "1", "PLUGIN_SIGN": "true"}
		for i := 0; i+1 < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return hoist(t, env)
	}
	for _, c := range []struct {
		name string
		kv   []string
		want string
	}{
		{"wrong password", []string{"PLUGIN_SIGN_KEY", key, "PLUGIN_SIGN_PASSWORD", "wrong-pw"}, "cannot be decrypted with PLUGIN_SIGN_PASSWORD"},
		{"missing file", []string{"PLUGIN_SIGN_KEY", "/nonexistent/cosign.key"}, "PLUGIN_SIGN_KEY is neither a PEM key nor a readable file"},
		{"not a cosign key", []string{"PLUGIN_SIGN_KEY", notKey}, "it is not a cosign private key (CERTIFICATE)"},
		{"no key", nil, "needs PLUGIN_SIGN_KEY"},
	} {
		r := push(c.kv...)
		if r.code != ExitSettings || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, want %d and %q:\n%s", c.name, r.code, ExitSettings, c.want, r)
		}
		assertNotContains(t, r, "right-pw", "wrong-pw")
	}
	// PLUGIN_REQUIRE_SCAN with PLUGIN_SIGN: an unscanned digest is
	// neither pushed nor signed.
	r := push("PLUGIN_SIGN_KEY", key, "PLUGIN_SIGN_PASSWORD", "right-pw", "PLUGIN_REQUIRE_SCAN", "true", "PLUGIN_SCAN_RECORDS", t.TempDir())
	if r.code != ExitScan || !strings.Contains(r.stderr, "has no scan record") {
		t.Errorf("require-scan and sign: exit %d, want %d:\n%s", r.code, ExitScan, r)
	}
	if tags := tagsOf(t, a, "bad/app"); len(tags) != 0 {
		t.Errorf("pushed despite a bad key: %v", tags)
	}
	// A build-only step has nothing to sign.
	r = hoist(t, buildEnv(t, buildContext(t, "FROM "+f.Base+"\n", nil), "PLUGIN_NO_PUSH", "true", "PLUGIN_REPO", "x/y", "PLUGIN_SIGN", "true", "PLUGIN_SIGN_KEY", key))
	if r.code != ExitSettings || !strings.Contains(r.stderr, "signs what a step pushes, and this step pushes nothing") {
		t.Errorf("build-only with PLUGIN_SIGN: %s", r)
	}
}

// PLUGIN_COSIGN_PRIVATE_KEY and PLUGIN_COSIGN_PASSWORD alone, as a
// plugins/docker step sends them (it has no PLUGIN_SIGN): the pushed
// digest is signed, and the real cosign CLI verifies it with the public
// key.
func TestCosignKeyAloneSigns(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	const password = "cosign-alone-pw-5523"
	key, pub := keyPair(t, password)
	keyPEM, _ := os.ReadFile(key)
	r := mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": reg.Host + "/alone/app",
		"PLUGIN_TAGS": "1", "PLUGIN_COSIGN_PRIVATE_KEY": string(keyPEM), "PLUGIN_COSIGN_PASSWORD": password})
	digest := digestOf(t, reg, reg.Host+"/alone/app:1")
	if out, err := verify(t, reg, pub, reg.Host+"/alone/app@"+digest); err != nil || !strings.Contains(out, digest) {
		t.Errorf("cosign verify: %v\n%s", err, out)
	}
	assertContains(t, r, "signed "+reg.Host+"/alone/app@"+digest)
	assertNotContains(t, r, password, strings.Split(string(keyPEM), "\n")[1])
}

// PLUGIN_COSIGN_PARAMS, as plugins/docker's users write it: the
// annotations are signed in the payload, so cosign verify -a key=value
// passes with them and fails with another value; a flag hoist does not
// honour is exit 2 before anything is pushed, naming the flag.
func TestCosignParams(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	key, pub := keyPair(t, "params-pw")
	env := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": reg.Host + "/params/app",
		"PLUGIN_TAGS": "1", "PLUGIN_COSIGN_PRIVATE_KEY": key, "PLUGIN_COSIGN_PASSWORD": "params-pw",
		"PLUGIN_COSIGN_PARAMS": "-a build_id=123 -a commit_sha=abc --annotations branch=main --tlog-upload=false --yes"}
	mustPush(t, env)
	ref := reg.Host + "/params/app@" + digestOf(t, reg, reg.Host+"/params/app:1")
	out, err := reg.Cosign(t, "verify", "--key", pub, "--insecure-ignore-tlog=true", "-a", "build_id=123", "-a", "branch=main", ref)
	if err != nil || !strings.Contains(out, `"build_id":"123"`) || !strings.Contains(out, `"commit_sha":"abc"`) {
		t.Errorf("cosign verify -a build_id=123 -a branch=main: %v\n%s", err, out)
	}
	if out, err := reg.Cosign(t, "verify", "--key", pub, "--insecure-ignore-tlog=true", "-a", "build_id=999", ref); err == nil {
		t.Errorf("cosign verify -a build_id=999 passes:\n%s", out)
	}

	for params, want := range map[string]string{
		"-a build_id=1 --output-signature sig.txt": "PLUGIN_COSIGN_PARAMS: unknown flag: --output-signature",
		"--rekor-url=https://rekor.example":        "PLUGIN_COSIGN_PARAMS: --rekor-url: a signature made with a key is stored in the registry only",
	} {
		r := hoist(t, merged(env, map[string]string{"PLUGIN_REPO": reg.Host + "/params/refused", "PLUGIN_COSIGN_PARAMS": params}))
		if r.code != ExitSettings || !strings.Contains(r.stderr, want) {
			t.Errorf("%q: exit %d, want %d and %q:\n%s", params, r.code, ExitSettings, want, r)
		}
	}
	if tags := tagsOf(t, reg, "params/refused"); len(tags) != 0 {
		t.Errorf("refused params, and pushed: %v", tags)
	}
}
