package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/harness"
)

// A keyless policy: a digest signed keyless (the Fulcio stand-in's
// certificate for the CI's identity, each signature and the provenance
// recorded in the Rekor stand-in) is promoted only for that identity and
// issuer, under that CA, with that log's timestamps; any other is exit 9
// and the destination holds nothing. Promoted with the CA roots and the
// log's key, and as a plugin step with a trusted root, the real cosign
// CLI verifies the destination by the same identity, offline; hoist
// verify does too. Bad policy settings exit 2 before anything is read.
func TestPromoteKeyless(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	stage := harness.StartRegistry(t, harness.RegistryOptions{})
	dest := harness.StartRegistry(t, harness.RegistryOptions{})
	fulcio, rekor := harness.StartFulcio(t), harness.StartRekor(t)
	otherFulcio, otherRekor := harness.StartFulcio(t), harness.StartRekor(t)
	const identity = "release@hoist.test"
	token := fulcio.Token(t, identity, time.Hour)
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
		"PLUGIN_REPO": stage.Host + "/stage/app", "PLUGIN_TAGS": "rc-1",
		"PLUGIN_SIGN": "true", "PLUGIN_SIGN_IDENTITY_TOKEN": token, "PLUGIN_PROVENANCE": "true",
		"PLUGIN_SIGN_FULCIO_URL": fulcio.URL, "PLUGIN_SIGN_REKOR_URL": rekor.URL, "PLUGIN_SIGN_TLOG_UPLOAD": "true"})
	digest := digestOf(t, stage, stage.Host+"/stage/app:rc-1")
	src := stage.Host + "/stage/app:rc-1"
	// The same identity, its signature recorded in no log.
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout,
		"PLUGIN_REPO": stage.Host + "/stage/unlogged", "PLUGIN_TAGS": "rc-1",
		"PLUGIN_SIGN": "true", "PLUGIN_SIGN_IDENTITY_TOKEN": fulcio.Token(t, identity, time.Hour),
		"PLUGIN_SIGN_FULCIO_URL": fulcio.URL, "PLUGIN_SIGN_TLOG_UPLOAD": "false"})
	unlogged := stage.Host + "/stage/unlogged:rc-1"
	id := []string{"--certificate-identity", identity, "--certificate-oidc-issuer", fulcio.Issuer}
	withLog := append(append([]string{}, id...), "--ca-roots", fulcio.RootFile, "--rekor-key", rekor.PublicKeyFile)

	for _, c := range []struct {
		name string
		args []string
	}{
		{"no log entry, the log's key given", append(append([]string{}, withLog...), unlogged)},
		{"another identity", []string{"--certificate-identity", "someone@else.test", "--certificate-oidc-issuer", fulcio.Issuer, "--ca-roots", fulcio.RootFile}},
		{"another issuer", []string{"--certificate-identity", identity, "--certificate-oidc-issuer", otherFulcio.Issuer, "--ca-roots", fulcio.RootFile}},
		{"another CA", append(append([]string{}, id...), "--ca-roots", otherFulcio.RootFile)},
		{"another log's key", append(append([]string{}, id...), "--ca-roots", fulcio.RootFile, "--rekor-key", otherRekor.PublicKeyFile)},
		{"a trusted root of another log", append(append([]string{}, id...), "--trusted-root", harness.TrustedRoot(t, fulcio, otherRekor))},
		{"a trusted root of another CA", append(append([]string{}, id...), "--trusted-root", harness.TrustedRoot(t, otherFulcio, rekor))},
	} {
		from := src
		if c.args[len(c.args)-1] == unlogged {
			from, c.args = unlogged, c.args[:len(c.args)-1]
		}
		args := append(append([]string{"promote"}, c.args...), "--require", "signature", from, dest.Host+"/prod/app:1")
		r := hoist(t, map[string]string{}, args...)
		if r.code != 9 || !strings.Contains(r.stderr, "no signature verifies with identity") || !strings.Contains(r.stderr, "nothing was promoted") {
			t.Errorf("%s: want exit 9, no signature verifying with the identity, nothing promoted:\n%s", c.name, r)
		}
	}
	if got := catalog(t, dest); got != "" {
		t.Fatalf("the destination holds %q after refused promotions", got)
	}

	rootPEM, err := os.ReadFile(fulcio.RootFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no issuer", map[string]string{"PLUGIN_PROMOTE_CERTIFICATE_IDENTITY": identity, "PLUGIN_PROMOTE_CA_ROOTS": fulcio.RootFile},
			"a keyless identity needs both PLUGIN_PROMOTE_CERTIFICATE_IDENTITY and PLUGIN_PROMOTE_CERTIFICATE_OIDC_ISSUER"},
		{"no CA", map[string]string{"PLUGIN_PROMOTE_CERTIFICATE_IDENTITY": identity, "PLUGIN_PROMOTE_CERTIFICATE_OIDC_ISSUER": fulcio.Issuer},
			"neither PLUGIN_PROMOTE_CA_ROOTS nor PLUGIN_PROMOTE_TRUSTED_ROOT is set"},
		{"key and identity", map[string]string{"PLUGIN_PROMOTE_KEY": rekor.PublicKeyFile, "PLUGIN_PROMOTE_CERTIFICATE_IDENTITY": identity},
			"PLUGIN_PROMOTE_KEY and the keyless identity (PLUGIN_PROMOTE_CERTIFICATE_IDENTITY, ...) are both set"},
		{"CA roots and a trusted root", map[string]string{"PLUGIN_PROMOTE_CERTIFICATE_IDENTITY": identity, "PLUGIN_PROMOTE_CERTIFICATE_OIDC_ISSUER": fulcio.Issuer,
			"PLUGIN_PROMOTE_CA_ROOTS": string(rootPEM), "PLUGIN_PROMOTE_TRUSTED_ROOT": harness.TrustedRoot(t, fulcio, rekor)}, "a trusted root holds the CA roots"},
		{"CA roots not a certificate", map[string]string{"PLUGIN_PROMOTE_CERTIFICATE_IDENTITY": identity, "PLUGIN_PROMOTE_CERTIFICATE_OIDC_ISSUER": fulcio.Issuer,
			"PLUGIN_PROMOTE_CA_ROOTS": rekor.PublicKeyFile}, "PLUGIN_PROMOTE_CA_ROOTS file " + rekor.PublicKeyFile + " holds no PEM certificate"},
		{"a trusted root that is not one", map[string]string{"PLUGIN_PROMOTE_CERTIFICATE_IDENTITY": identity, "PLUGIN_PROMOTE_CERTIFICATE_OIDC_ISSUER": fulcio.Issuer,
			"PLUGIN_PROMOTE_TRUSTED_ROOT": fulcio.RootFile}, "is not a Sigstore trusted root"},
		{"identity without promote", map[string]string{"PLUGIN_PROMOTE": "false", "PLUGIN_PROMOTE_CERTIFICATE_IDENTITY": identity}, "PLUGIN_PROMOTE is not set"},
	} {
		env := merged(map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_PROMOTE": "true", "PLUGIN_SOURCE_IMAGE": src,
			"PLUGIN_REPO": dest.Host + "/prod/app", "PLUGIN_TAGS": "1"}, c.env)
		r := hoist(t, env)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: want exit 2 saying %q:\n%s", c.name, c.want, r)
		}
	}
	// A file in the workspace does not choose whom the release trusts.
	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "ci.env"), []byte("PLUGIN_TAGS=1\nPLUGIN_PROMOTE_CERTIFICATE_IDENTITY=attacker@evil.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := hoistIn(t, ws, map[string]string{"PLUGIN_ENV_FILE": "ci.env", "PLUGIN_PUSH_ONLY": "true", "PLUGIN_PROMOTE": "true", "PLUGIN_SOURCE_IMAGE": src,
		"PLUGIN_REPO": dest.Host + "/prod/app"})
	if want := "line 2 sets PLUGIN_PROMOTE_CERTIFICATE_IDENTITY, which an env file may not set"; r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("an env file's identity: want exit 2 saying %q:\n%s", want, r)
	}
	if got := catalog(t, dest); got != "" {
		t.Fatalf("the destination holds %q after bad settings", got)
	}

	// The CA roots and the log's key, on the command line.
	r = hoist(t, map[string]string{}, append(append([]string{"promote"}, withLog...), "--require", "signature,provenance", src, dest.Host+"/prod/app:1")...)
	if r.code != 0 {
		t.Fatalf("keyless promote:\n%s", r)
	}
	assertContains(t, r, "promote: policy: signed by "+identity+" (issuer "+fulcio.Issuer+"); certificate chain to the given CA; transparency log timestamps required",
		"promote: policy met on the source: signatures 1 valid; attestations: slsaprovenance1 1")
	// As a plugin step, with a trusted root naming the CA and the log.
	r = hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_PROMOTE": "true", "PLUGIN_SOURCE_IMAGE": src,
		"PLUGIN_REPO": dest.Host + "/prod/other", "PLUGIN_TAGS": "1",
		"PLUGIN_PROMOTE_CERTIFICATE_IDENTITY": identity, "PLUGIN_PROMOTE_CERTIFICATE_OIDC_ISSUER": fulcio.Issuer,
		"PLUGIN_PROMOTE_TRUSTED_ROOT": harness.TrustedRoot(t, fulcio, rekor), "PLUGIN_PROMOTE_REQUIRE": "provenance"})
	if r.code != 0 {
		t.Fatalf("keyless promote as a plugin step:\n%s", r)
	}
	assertContains(t, r, "promote: policy met on the source")
	for _, repo := range []string{"prod/app", "prod/other"} {
		ref := dest.Host + "/" + repo + "@" + digest
		if got := digestOf(t, dest, dest.Host+"/"+repo+":1"); got != digest {
			t.Errorf("%s:1 is %s, the source is %s", repo, got, digest)
		}
		for _, cmd := range [][]string{{"verify"}, {"verify-attestation", "--type", "slsaprovenance1"}} {
			args := append(append(cmd, id...), "--ca-roots", fulcio.RootFile, "--insecure-ignore-sct=true", "--rekor-url", rekor.URL, ref)
			if out, err := dest.CosignEnv(t, []string{"SIGSTORE_REKOR_PUBLIC_KEY=" + rekor.PublicKeyFile}, args...); err != nil {
				t.Errorf("cosign %s %s by the identity: %v\n%s", cmd[0], ref, err, out)
			}
		}
	}
	// hoist verify takes the same flags; the CA roots alone (no log) pass
	// while the certificate is valid.
	v := hoist(t, map[string]string{}, append(append([]string{"verify"}, withLog...), "--require", "provenance", dest.Host+"/prod/app:1")...)
	if v.code != 0 || !strings.Contains(v.stdout, "verified "+dest.Host+"/prod/app@"+digest) {
		t.Errorf("hoist verify keyless:\n%s", v)
	}
	v = hoist(t, map[string]string{}, append(append([]string{"verify"}, id...), "--ca-roots", fulcio.RootFile, dest.Host+"/prod/other:1")...)
	if v.code != 0 {
		t.Errorf("hoist verify keyless, CA roots only:\n%s", v)
	}
	v = hoist(t, map[string]string{}, "verify", "--certificate-identity", "someone@else.test", "--certificate-oidc-issuer", fulcio.Issuer, "--ca-roots", fulcio.RootFile, dest.Host+"/prod/app:1")
	if v.code != ExitUnverified {
		t.Errorf("hoist verify for another identity: exit %d, want %d:\n%s", v.code, ExitUnverified, v)
	}
	if others := rekor.Others(); len(others) != 0 {
		t.Errorf("Rekor got lookups %v: the verification was not offline", others)
	}
}

// cosign 3's own keyless signature (a Sigstore bundle, stored as an OCI
// referrer or under the referrers tag on distribution), made by the real
// cosign CLI with the stand-ins' Fulcio certificate and Rekor entry: a
// trusted root naming them lets the promotion through, and the real
// cosign verifies the bundle on the destination by the identity; another
// identity, or a trusted root of another log, is exit 9 with nothing
// written.
func TestPromoteCosignKeylessBundle(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	stage := harness.StartRegistry(t, harness.RegistryOptions{})
	dest := harness.StartRegistry(t, harness.RegistryOptions{})
	fulcio, rekor, otherRekor := harness.StartFulcio(t), harness.StartRekor(t), harness.StartRekor(t)
	const identity = "bundle@hoist.test"
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": stage.Host + "/stage/app", "PLUGIN_TAGS": "1"})
	digest := digestOf(t, stage, stage.Host+"/stage/app:1")
	ref := stage.Host + "/stage/app@" + digest
	root := harness.TrustedRoot(t, fulcio, rekor)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(fulcio.Token(t, identity, time.Hour)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := stage.CosignEnv(t, []string{"HOME=" + t.TempDir()}, "sign", "--yes", "--allow-insecure-registry", "--allow-http-registry",
		"--identity-token", token, "--fulcio-url", fulcio.URL, "--rekor-url", rekor.URL, "--use-signing-config=false", "--trusted-root", root, ref); err != nil {
		t.Fatalf("cosign sign, keyless: %v\n%s", err, out)
	}
	if n := len(rekor.Entries()); n != 1 {
		t.Fatalf("Rekor logged %d entries for cosign's keyless signature, want 1", n)
	}
	id := []string{"--certificate-identity", identity, "--certificate-oidc-issuer", fulcio.Issuer}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"another identity", []string{"--certificate-identity", "someone@else.test", "--certificate-oidc-issuer", fulcio.Issuer, "--trusted-root", root}},
		{"a trusted root of another log", append(append([]string{}, id...), "--trusted-root", harness.TrustedRoot(t, fulcio, otherRekor))},
	} {
		r := hoist(t, map[string]string{}, append(append([]string{"promote"}, c.args...), ref, dest.Host+"/prod/app:1")...)
		if r.code != ExitUnverified || !strings.Contains(r.stderr, "nothing was promoted") {
			t.Errorf("%s: want exit %d, nothing promoted:\n%s", c.name, ExitUnverified, r)
		}
	}
	if got := catalog(t, dest); got != "" {
		t.Fatalf("the destination holds %q after refused promotions", got)
	}
	r := hoist(t, map[string]string{}, append(append([]string{"promote"}, id...), "--trusted-root", root, "--require", "signature", ref, dest.Host+"/prod/app:1")...)
	if r.code != 0 {
		t.Fatalf("promote of cosign's keyless bundle:\n%s", r)
	}
	assertContains(t, r, "promote: policy met on the source: signatures 1 valid", "1 referrer(s)")
	promoted := dest.Host + "/prod/app@" + digest
	if out, err := dest.CosignEnv(t, []string{"HOME=" + t.TempDir()}, append(append([]string{"verify", "--allow-insecure-registry", "--allow-http-registry"}, id...), "--trusted-root", root, "--insecure-ignore-sct=true", promoted)...); err != nil {
		t.Errorf("cosign verify of the promoted bundle %s: %v\n%s", promoted, err, out)
	}
}
