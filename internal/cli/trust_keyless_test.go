package cli

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/harness"
)

// Keyless signing sends the identity token to Fulcio and the signatures
// to Rekor over TLS, or over plain HTTP only to this machine: a plain
// http:// URL of another host is refused when the step is planned, before
// any request (the Fulcio stand-in, on loopback, gets none either), and
// nothing is pushed.
func TestKeylessPlainHTTPRefused(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	fulcio := harness.StartFulcio(t)
	token := fulcio.Token(t, "ci@hoist.test", time.Hour)
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		// Addresses no packet can go to (0.0.0.0/8), so that a failing
		// test sends nothing off this machine either.
		{"Fulcio", map[string]string{"PLUGIN_SIGN_FULCIO_URL": "http://0.0.0.1:5555", "PLUGIN_SIGN_TLOG_UPLOAD": "false"},
			`PLUGIN_SIGN_FULCIO_URL "http://0.0.0.1:5555" is plain HTTP to 0.0.0.1, which would send the identity token and the signatures in clear: use https://`},
		{"Rekor", map[string]string{"PLUGIN_SIGN_FULCIO_URL": fulcio.URL, "PLUGIN_SIGN_REKOR_URL": "http://0.0.0.2:3000"},
			`PLUGIN_SIGN_REKOR_URL "http://0.0.0.2:3000" is plain HTTP to 0.0.0.2`},
	} {
		r := hoist(t, merged(c.env, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
			"PLUGIN_REPO": a.Host + "/plain/app", "PLUGIN_SIGN": "true", "PLUGIN_SIGN_IDENTITY_TOKEN": token}))
		if r.code != ExitSettings || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s over plain HTTP: exit %d, want %d and %q:\n%s", c.name, r.code, ExitSettings, c.want, r)
		}
		assertNotContains(t, r, token)
	}
	if n := fulcio.Requests.Load(); n != 0 {
		t.Errorf("Fulcio got %d requests, want none", n)
	}
	if tags := tagsOf(t, a, "plain/app"); len(tags) != 0 {
		t.Errorf("pushed: %v", tags)
	}
}

// An env file in the workspace (the repository's, an earlier step's)
// cannot send the identity token elsewhere: a PLUGIN_SIGN_FULCIO_URL in
// it is refused, naming the file and the line, and the other Fulcio
// gets nothing.
func TestEnvFileCannotRedirectTheIdentityToken(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	fulcio, attacker := harness.StartFulcio(t), harness.StartFulcio(t)
	token := fulcio.Token(t, "ci@hoist.test", time.Hour)
	ws := t.TempDir()
	envFile := filepath.Join(ws, "ci.env")
	if err := os.WriteFile(envFile, []byte("# from the repository\nPLUGIN_CUSTOM_LABELS=team=a\nPLUGIN_SIGN_FULCIO_URL="+attacker.URL+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := hoistIn(t, ws, map[string]string{"PLUGIN_ENV_FILE": "ci.env", "PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
		"PLUGIN_REPO": a.Host + "/envfile/app", "PLUGIN_SIGN": "true", "PLUGIN_SIGN_IDENTITY_TOKEN": token, "PLUGIN_SIGN_TLOG_UPLOAD": "false"})
	want := "PLUGIN_ENV_FILE: env file " + envFile + " line 3 sets PLUGIN_SIGN_FULCIO_URL, which an env file may not set"
	if r.code != ExitSettings || !strings.Contains(r.stderr, want) {
		t.Errorf("exit %d, want %d and %q:\n%s", r.code, ExitSettings, want, r)
	}
	assertNotContains(t, r, token)
	if n := attacker.Requests.Load() + fulcio.Requests.Load(); n != 0 {
		t.Errorf("the Fulcios got %d requests, want none", n)
	}
	if tags := tagsOf(t, a, "envfile/app"); len(tags) != 0 {
		t.Errorf("pushed: %v", tags)
	}
}

// Keyless signing with the transparency log: every signature and
// attestation is recorded in Rekor (a stand-in that checks each entry as
// Rekor does and answers with a signed entry timestamp), and the real
// cosign CLI verifies them with the log's key and no --insecure-ignore-tlog,
// offline (the stand-in serves no lookups, and got none). One entry per
// signature and attestation, each naming what was signed; under another
// log's key, nothing verifies.
func TestSignKeylessWithRekor(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	fulcio, rekor := harness.StartFulcio(t), harness.StartRekor(t)
	const identity = "ci@hoist.test"
	token := fulcio.Token(t, identity, time.Hour)
	r := mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
		"PLUGIN_REPO": a.Host + "/rekor/one", "PLUGIN_DESTINATIONS": a.Host + "/rekor/two:1", "PLUGIN_TAGS": "1",
		"PLUGIN_SIGN": "true", "PLUGIN_SIGN_IDENTITY_TOKEN": token, "PLUGIN_PROVENANCE": "true",
		"PLUGIN_SIGN_FULCIO_URL": fulcio.URL, "PLUGIN_SIGN_REKOR_URL": rekor.URL, "PLUGIN_SIGN_TLOG_UPLOAD": "true"})
	assertNotContains(t, r, token)
	digest := digestOf(t, a, a.Host+"/rekor/one:1")
	if got := digestOf(t, a, a.Host+"/rekor/two:1"); got != digest {
		t.Fatalf("two holds %s, one %s", got, digest)
	}
	if refused := rekor.Refused(); len(refused) != 0 {
		t.Errorf("Rekor refused entries: %v", refused)
	}

	// The log holds one entry per signature and attestation: each
	// repository's signature (hashedrekord, over its payload) and its
	// provenance (dsse, over the statement).
	entries := rekor.Entries()
	byHash := map[string]harness.RekorEntry{}
	kinds := map[string]int{}
	for _, e := range entries {
		byHash[e.Hash] = e
		kinds[e.Kind]++
	}
	if len(entries) != 4 || kinds["hashedrekord"] != 2 || kinds["dsse"] != 2 {
		t.Errorf("Rekor logged %d entries %v, want a hashedrekord and a dsse entry per repository", len(entries), kinds)
	}
	for _, repo := range []string{"rekor/one", "rekor/two"} {
		ref := a.Host + "/" + repo + "@" + digest
		out, err := a.Cosign(t, "download", "signature", ref)
		if err != nil {
			t.Fatalf("cosign download signature %s: %v\n%s", ref, err, out)
		}
		var sig struct {
			Payload []byte
			Bundle  struct {
				Payload struct {
					LogIndex int64  `json:"logIndex"`
					LogID    string `json:"logID"`
				}
			}
		}
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &sig); err != nil {
			t.Fatalf("cosign download signature: %v\n%s", err, out)
		}
		e, ok := byHash["sha256:"+sum(sig.Payload)]
		if !ok || e.Kind != "hashedrekord" || e.Index != sig.Bundle.Payload.LogIndex || sig.Bundle.Payload.LogID != rekor.LogID {
			t.Errorf("%s: the signature's log entry (index %d, log %s) is not the one Rekor logged for its payload: %+v",
				repo, sig.Bundle.Payload.LogIndex, sig.Bundle.Payload.LogID, e)
		}
		out, err = a.Cosign(t, "download", "attestation", ref)
		if err != nil {
			t.Fatalf("cosign download attestation %s: %v\n%s", ref, err, out)
		}
		var env struct{ Payload string }
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &env); err != nil {
			t.Fatalf("cosign download attestation: %v\n%s", err, out)
		}
		statement, _ := base64.StdEncoding.DecodeString(env.Payload)
		if e, ok := byHash["sha256:"+sum(statement)]; !ok || e.Kind != "dsse" || !strings.Contains(string(statement), "slsa.dev/provenance/v1") {
			t.Errorf("%s: Rekor logged no dsse entry for the provenance statement: %+v", repo, e)
		}
	}

	// cosign verifies the signature and the attestation, the log's
	// promise included, offline and without --insecure-ignore-tlog: with
	// the log's key in SIGSTORE_REKOR_PUBLIC_KEY (and the stand-in
	// Fulcio's root), and with a trusted root naming both (cosign v3's
	// way). Under another log's key, or a trusted root that gives the
	// log's ID another key, nothing verifies.
	ref := a.Host + "/rekor/one@" + digest
	identityArgs := []string{"--certificate-identity", identity, "--certificate-oidc-issuer", fulcio.Issuer, "--insecure-ignore-sct=true"}
	withKey := func(log *harness.Rekor, cmd ...string) (string, error) {
		args := append(append(cmd, identityArgs...), "--ca-roots", fulcio.RootFile, "--rekor-url", log.URL, ref)
		return a.CosignEnv(t, []string{"SIGSTORE_REKOR_PUBLIC_KEY=" + log.PublicKeyFile}, args...)
	}
	withRoot := func(root string, cmd ...string) (string, error) {
		return a.Cosign(t, append(append(cmd, identityArgs...), "--trusted-root", root, ref)...)
	}
	verifyCmds := [][]string{{"verify"}, {"verify-attestation", "--type", "slsaprovenance1"}}
	root := harness.TrustedRoot(t, fulcio, rekor)
	for _, cmd := range verifyCmds {
		// What verified: the signature's claims name the digest; the
		// attestation is printed as its envelope.
		want := digest
		if cmd[0] != "verify" {
			want = `"payloadType":"application/vnd.in-toto+json"`
		}
		out, err := withKey(rekor, cmd...)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("cosign %s with the log's key: %v\n%s", cmd[0], err, out)
		}
		if out, err := withRoot(root, cmd...); err != nil || !strings.Contains(out, want) {
			t.Errorf("cosign %s with the trusted root: %v\n%s", cmd[0], err, out)
		}
	}
	if others := rekor.Others(); len(others) != 0 {
		t.Errorf("Rekor got lookups %v: the verification was not offline", others)
	}
	other := harness.StartRekor(t)
	forged := harness.TrustedRoot(t, fulcio, &harness.Rekor{URL: rekor.URL, LogID: rekor.LogID, PublicKeyFile: other.PublicKeyFile})
	for _, cmd := range verifyCmds {
		out, err := withKey(other, cmd...)
		if err == nil || !strings.Contains(err.Error(), "rekor log public key not found") {
			t.Errorf("cosign %s under another log's key: %v, want a failure for the log\n%s", cmd[0], err, out)
		}
		out, err = withRoot(forged, cmd...)
		if err == nil || !strings.Contains(err.Error(), "verifying bundle with trusted root: unable to verify SET") {
			t.Errorf("cosign %s with another key for the log's ID: %v, want a failure of the log's signature\n%s", cmd[0], err, out)
		}
		t.Logf("cosign %s with another key for the log's ID: %v", cmd[0], err)
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
