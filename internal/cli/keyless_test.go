package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/harness"
)

// Keyless signing: a key made for the step, certified by Fulcio (a
// stand-in on loopback, which checks the identity token and the proof of
// possession as Fulcio does) for the CI's identity; the real cosign CLI
// verifies the signature and the provenance attestation by that identity
// and issuer, against the stand-in's root. No transparency log runs here:
// PLUGIN_SIGN_TLOG_UPLOAD=false, and cosign is told to ignore the log.
func TestSignKeyless(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	fulcio := harness.StartFulcio(t)
	const identity = "ci@hoist.test"
	token := fulcio.Token(t, identity, time.Hour)
	push := func(repo string, kv ...string) result {
		env := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": a.Host + "/" + repo, "PLUGIN_TAGS": "1",
			"PLUGIN_SIGN": "true", "PLUGIN_SIGN_FULCIO_URL": fulcio.URL, "PLUGIN_SIGN_TLOG_UPLOAD": "false"}
		for i := 0; i+1 < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return hoist(t, env)
	}
	// As a Drone runner sends it: its own variables, and a setting hoist
	// does not know (warned about, not fatal).
	r := push("keyless/app", "PLUGIN_SIGN_IDENTITY_TOKEN", token, "PLUGIN_PROVENANCE", "true",
		"CI", "true", "DRONE", "true", "DRONE_REPO", "team/app", "DRONE_BUILD_NUMBER", "42", "DRONE_STEP_NAME", "publish",
		"DRONE_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567", "DRONE_GIT_HTTP_URL", "https://git.example.com/team/app.git",
		"PLUGIN_COSIGN_EXPERIMENTAL", "1")
	if r.code != 0 {
		t.Fatalf("keyless push: %s", r)
	}
	assertContains(t, r, "warning: setting PLUGIN_COSIGN_EXPERIMENTAL is not a hoist setting and is ignored")
	digest := digestOf(t, a, a.Host+"/keyless/app:1")
	assertContains(t, r, "keyless: Fulcio certified this step's key for "+identity+" (issuer "+fulcio.Issuer+")",
		"signed "+a.Host+"/keyless/app@"+digest+" with slsaprovenance1 attestations (cosign's tags)")
	if n := fulcio.Issued.Load(); n != 1 {
		t.Errorf("Fulcio issued %d certificates for the step, want 1", n)
	}
	ref := a.Host + "/keyless/app@" + digest
	keyless := func(cmd, who, issuer string, extra ...string) (string, error) {
		args := append([]string{cmd, "--certificate-identity", who, "--certificate-oidc-issuer", issuer,
			"--ca-roots", fulcio.RootFile, "--insecure-ignore-tlog=true", "--insecure-ignore-sct=true"}, extra...)
		return a.Cosign(t, append(args, ref)...)
	}
	out, err := keyless("verify", identity, fulcio.Issuer)
	t.Logf("cosign verify keyless: %s", out)
	if err != nil || !strings.Contains(out, digest) {
		t.Errorf("cosign verify keyless: %v\n%s", err, out)
	}
	if out, err := keyless("verify-attestation", identity, fulcio.Issuer, "--type", "slsaprovenance1"); err != nil {
		t.Errorf("cosign verify-attestation keyless: %v\n%s", err, out)
	}
	// Another identity, another issuer: not verified.
	if out, err := keyless("verify", "someone@else.test", fulcio.Issuer); err == nil {
		t.Errorf("verified for another identity:\n%s", out)
	}
	if out, err := keyless("verify", identity, "https://issuer.invalid"); err == nil {
		t.Errorf("verified for another issuer:\n%s", out)
	}
	assertNotContains(t, r, token)

	// Bad input: refused before any tag is written, the token never shown.
	expired := fulcio.Token(t, identity, -time.Minute)
	foreign := fulcio.ForeignToken(t, identity)
	key, _ := keyPair(t, "pw")
	for _, c := range []struct {
		name string
		kv   []string
		want string
	}{
		{"expired token", []string{"PLUGIN_SIGN_IDENTITY_TOKEN", expired}, "PLUGIN_SIGN_IDENTITY_TOKEN (issuer " + fulcio.Issuer + ") expired at"},
		{"token of another signer", []string{"SIGSTORE_ID_TOKEN", foreign}, "Fulcio (" + fulcio.URL + ") gave no certificate for PLUGIN_SIGN_IDENTITY_TOKEN: Fulcio returned 401"},
		{"not a token", []string{"PLUGIN_SIGN_IDENTITY_TOKEN", "not-a-jwt"}, "PLUGIN_SIGN_IDENTITY_TOKEN is not a JWT"},
		{"key and token", []string{"PLUGIN_SIGN_IDENTITY_TOKEN", token, "PLUGIN_SIGN_KEY", key, "PLUGIN_SIGN_PASSWORD", "pw"}, "are both set: sign with the key, or keyless with the identity token, not both"},
		{"Fulcio URL", []string{"PLUGIN_SIGN_IDENTITY_TOKEN", token, "PLUGIN_SIGN_FULCIO_URL", "fulcio.example"}, `PLUGIN_SIGN_FULCIO_URL "fulcio.example" is not an http(s) URL`},
	} {
		r := push("refused/app", c.kv...)
		if r.code != ExitSettings || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, want %d and %q:\n%s", c.name, r.code, ExitSettings, c.want, r)
		}
		assertNotContains(t, r, token, expired, foreign)
	}
	if tags := tagsOf(t, a, "refused/app"); len(tags) != 0 {
		t.Errorf("pushed despite a refused identity: %v", tags)
	}
}
