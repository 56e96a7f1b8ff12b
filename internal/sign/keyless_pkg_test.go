package sign_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/sign"
)

// Keyless signing at the package's level: the step's key is certified
// once by Fulcio (the harness's stand-in, which checks the token and the
// proof of possession) for the token's identity, whatever the number of
// repositories signed; the real cosign CLI verifies the signature and
// the attestation by that identity and issuer against Fulcio's root, and
// not for another identity. No transparency log: cosign ignores it.
func TestKeylessPublishVerifiesWithCosign(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	fulcio := harness.StartFulcio(t)
	identity := "ci-" + randomHex(3) + "@hoist.test"
	token := fulcio.Token(t, identity, time.Hour)
	s, err := sign.NewKeyless(sign.Keyless{IDToken: token, FulcioURL: fulcio.URL})
	if err != nil {
		t.Fatal(err)
	}
	if id, iss := s.Identity(); id != "" || iss != "" {
		t.Errorf("an identity before Unlock: %q, %q", id, iss)
	}
	if n := fulcio.Issued.Load(); n != 0 {
		t.Errorf("NewKeyless asked Fulcio for %d certificates, want none before Unlock", n)
	}
	builder := "https://builder.example/" + randomHex(4)
	var refs []string
	for _, r := range []string{"keyless/a", "keyless/b"} {
		repo, digest := pushImage(t, reg, r)
		if _, err := s.Publish(context.Background(), repo, digest, []sign.Attestation{{Kind: sign.KindProvenance, Predicate: provenance(builder)}}, registry.Access{Transport: http.DefaultTransport, Keychain: authn.DefaultKeychain}); err != nil {
			t.Fatalf("keyless publish to %s: %v", r, err)
		}
		refs = append(refs, repo.String()+"@"+digest)
	}
	if n := fulcio.Issued.Load(); n != 1 {
		t.Errorf("Fulcio issued %d certificates for two repositories, want 1", n)
	}
	if id, iss := s.Identity(); id != identity || iss != fulcio.Issuer {
		t.Errorf("Identity() = %q, %q; want %q, %q", id, iss, identity, fulcio.Issuer)
	}
	verify := func(cmd, who, ref string, extra ...string) (string, error) {
		args := append([]string{cmd, "--certificate-identity", who, "--certificate-oidc-issuer", fulcio.Issuer,
			"--ca-roots", fulcio.RootFile, "--insecure-ignore-tlog=true", "--insecure-ignore-sct=true"}, extra...)
		return reg.Cosign(t, append(args, ref)...)
	}
	for _, ref := range refs {
		if out, err := verify("verify", identity, ref); err != nil || !strings.Contains(out, ref[strings.Index(ref, "@")+1:]) {
			t.Errorf("cosign verify keyless %s: %v\n%s", ref, err, out)
		}
		if out, err := verify("verify-attestation", identity, ref, "--type", "slsaprovenance1"); err != nil || !strings.Contains(out, "payload") {
			t.Errorf("cosign verify-attestation keyless %s: %v\n%s", ref, err, out)
		}
		if out, err := verify("verify", "someone@else.test", ref); err == nil {
			t.Errorf("cosign verified %s for another identity:\n%s", ref, out)
		}
	}
}

// A token that cannot be used is ErrKey at NewKeyless, before Fulcio is
// asked, without the token: not a JWT, expired. A token from another
// issuer is refused by Fulcio at Unlock, and nothing is signed.
func TestKeylessTokenErrors(t *testing.T) {
	t.Parallel()
	fulcio := harness.StartFulcio(t)
	expired := fulcio.Token(t, "ci@hoist.test", -time.Minute)
	for what, tok := range map[string]string{"not a JWT": "not-a-jwt-" + randomHex(4), "expired": expired} {
		_, err := sign.NewKeyless(sign.Keyless{IDToken: tok, FulcioURL: fulcio.URL})
		if !errors.Is(err, sign.ErrKey) || strings.Contains(err.Error(), tok) {
			t.Errorf("%s: %v, want ErrKey without the token", what, err)
		}
	}
	if n := fulcio.Requests.Load(); n != 0 {
		t.Errorf("Fulcio was asked %d times for unusable tokens", n)
	}
	foreign := fulcio.ForeignToken(t, "ci@hoist.test")
	s, err := sign.NewKeyless(sign.Keyless{IDToken: foreign, FulcioURL: fulcio.URL})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Unlock()
	if err == nil || strings.Contains(err.Error(), foreign) {
		t.Errorf("a token Fulcio does not trust: %v, want an error without the token", err)
	}
	if n := fulcio.Issued.Load(); n != 0 {
		t.Errorf("Fulcio issued %d certificates for a foreign token", n)
	}
}
