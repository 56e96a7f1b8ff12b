package sign_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/sign"
)

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// basicKeychain answers with the registry's login for its host,
// anonymous for every other.
type basicKeychain struct{ reg *harness.Registry }

func (k basicKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if k.reg.User == "" || r.RegistryStr() != k.reg.Host {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: k.reg.User, Password: k.reg.Password}, nil
}

// keyPair makes a cosign key pair with the real cosign CLI.
func keyPair(t *testing.T, password string) (key, pub string) {
	t.Helper()
	dir := t.TempDir()
	cosign := harness.Tool(t, "cosign")
	if out, err := harness.RunErr([]string{"COSIGN_PASSWORD=" + password, "HOME=" + dir}, "sh", "-c", "cd "+dir+" && "+cosign+" generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	return filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
}

// pushImage pushes a random image to reg as repo:1 and returns the
// repository and the digest crane reads back.
func pushImage(t *testing.T, reg *harness.Registry, repo string) (name.Repository, string) {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(reg.Host + "/" + repo + ":1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithTransport(reg.Client().Transport), remote.WithAuthFromKeychain(basicKeychain{reg})); err != nil {
		t.Fatal(err)
	}
	return tag.Context(), reg.Digest(t, tag.String())
}

// cosignVerify runs the real cosign verify --key, offline.
func cosignVerify(t *testing.T, reg *harness.Registry, pub, ref string) (string, error) {
	t.Helper()
	return reg.Cosign(t, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--output", "json", ref)
}

// cosignStatements runs the real cosign verify-attestation --type kind
// and returns the predicates of the statements that verified, each
// checked to be about digest.
func cosignStatements(t *testing.T, reg *harness.Registry, pub, kind, ref, digest string) ([]json.RawMessage, error) {
	t.Helper()
	out, err := reg.Cosign(t, "verify-attestation", "--key", pub, "--insecure-ignore-tlog=true", "--type", kind, "--output", "json", ref)
	if err != nil {
		return nil, err
	}
	var preds []json.RawMessage
	for _, line := range strings.Split(out, "\n") {
		var env struct{ Payload string }
		if json.Unmarshal([]byte(line), &env) != nil || env.Payload == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			PredicateType string `json:"predicateType"`
			Subject       []struct {
				Digest map[string]string `json:"digest"`
			} `json:"subject"`
			Predicate json.RawMessage `json:"predicate"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Subject) != 1 || "sha256:"+st.Subject[0].Digest["sha256"] != digest {
			t.Errorf("the %s statement is about %+v, not %s", kind, st.Subject, digest)
		}
		if st.PredicateType != sign.PredicateType(kind) {
			t.Errorf("predicate type %s, want %s", st.PredicateType, sign.PredicateType(kind))
		}
		preds = append(preds, st.Predicate)
	}
	return preds, nil
}

func sbom(serial string) []byte {
	return []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","serialNumber":"urn:uuid:` + serial + `","components":[]}`)
}

func provenance(id string) []byte {
	return []byte(`{"buildDefinition":{"buildType":"https://hoist.example/build/v1","externalParameters":{}},"runDetails":{"builder":{"id":"` + id + `"}}}`)
}

// tagsOf lists a repository's tags with crane.
func tagsOf(t *testing.T, reg *harness.Registry, repo string) []string {
	t.Helper()
	return strings.Fields(reg.Crane(t, "ls", reg.Host+"/"+repo))
}

// Publish signs a digest and attaches signed SBOM and provenance
// attestations as cosign does, in a registry with TLS and a login: the
// real cosign CLI verifies the signature and each attestation with the
// public key (about that digest, with the predicates given), and does
// not with another key; they lie under cosign's tags; the registry
// (distribution 2.8) has no referrers API, and Publish says so.
func TestPublishVerifiesWithCosign(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Auth: true})
	repo, digest := pushImage(t, reg, "team/app")
	password := "pw-" + randomHex(6)
	key, pub := keyPair(t, password)
	_, otherPub := keyPair(t, "other")
	s, err := sign.Load(key, password)
	if err != nil {
		t.Fatal(err)
	}
	serial, builder := randomHex(8), "https://builder.example/"+randomHex(4)
	pubd, err := s.Publish(context.Background(), repo, digest, []sign.Attestation{
		{Kind: sign.KindSBOM, Predicate: sbom(serial)},
		{Kind: sign.KindProvenance, Predicate: provenance(builder)},
	}, registry.Access{Transport: reg.Client().Transport, Keychain: basicKeychain{reg}})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if pubd.Referrers {
		t.Errorf("Publish says distribution 2.8 has the referrers API")
	}
	ref := repo.String() + "@" + digest
	out, err := cosignVerify(t, reg, pub, ref)
	if err != nil {
		t.Fatalf("cosign verify: %v\n%s", err, out)
	}
	if !strings.Contains(out, digest) {
		t.Errorf("cosign verified a signature not about %s:\n%s", digest, out)
	}
	if out, err := cosignVerify(t, reg, otherPub, ref); err == nil {
		t.Errorf("cosign verify with another key passed:\n%s", out)
	}
	preds, err := cosignStatements(t, reg, pub, "cyclonedx", ref, digest)
	if err != nil || len(preds) != 1 || !strings.Contains(string(preds[0]), serial) {
		t.Errorf("cosign verify-attestation cyclonedx: %v, %s", err, preds)
	}
	preds, err = cosignStatements(t, reg, pub, "slsaprovenance1", ref, digest)
	if err != nil || len(preds) != 1 || !strings.Contains(string(preds[0]), builder) {
		t.Errorf("cosign verify-attestation slsaprovenance1: %v, %s", err, preds)
	}
	if _, err := cosignStatements(t, reg, otherPub, "cyclonedx", ref, digest); err == nil {
		t.Errorf("cosign verify-attestation with another key passed")
	}
	hex := strings.TrimPrefix(digest, "sha256:")
	tags := tagsOf(t, reg, "team/app")
	slices.Sort(tags)
	if want := []string{"1", "sha256-" + hex + ".att", "sha256-" + hex + ".sig"}; !slices.Equal(tags, want) {
		t.Errorf("tags %q, want %q", tags, want)
	}
	if has, err := sign.HasReferrers(context.Background(), repo.Digest(digest), registry.Access{Transport: reg.Client().Transport, Keychain: basicKeychain{reg}}); err != nil || has {
		t.Errorf("HasReferrers on distribution 2.8 = %v, %v", has, err)
	}
}

// layerCount is the number of layers of a manifest crane reads.
func layerCount(t *testing.T, reg *harness.Registry, ref string) int {
	t.Helper()
	var m struct{ Layers []json.RawMessage }
	if err := json.Unmarshal([]byte(reg.Crane(t, "manifest", ref)), &m); err != nil {
		t.Fatal(err)
	}
	return len(m.Layers)
}

// A second Publish keeps the signatures already there (another key's:
// cosign verifies both keys) and does not repeat one (the same key over
// the same digest), and replaces the attestation of the same predicate
// type with its own, while one of another type stays.
func TestPublishKeepsSignaturesAndReplacesAttestations(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	repo, digest := pushImage(t, reg, "team/app")
	keyA, pubA := keyPair(t, "a")
	keyB, pubB := keyPair(t, "b")
	a, err := sign.Load(keyA, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := sign.Load(keyB, "b")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tr, kc := http.DefaultTransport, authn.DefaultKeychain
	first, second, builder := randomHex(8), randomHex(8), "https://builder.example/"+randomHex(4)
	if _, err := a.Publish(ctx, repo, digest, []sign.Attestation{{Kind: sign.KindSBOM, Predicate: sbom(first)}, {Kind: sign.KindProvenance, Predicate: provenance(builder)}}, registry.Access{Transport: tr, Keychain: kc}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, repo, digest, []sign.Attestation{{Kind: sign.KindSBOM, Predicate: sbom(second)}}, registry.Access{Transport: tr, Keychain: kc}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Publish(ctx, repo, digest, nil, registry.Access{Transport: tr, Keychain: kc}); err != nil {
		t.Fatal(err)
	}
	ref := repo.String() + "@" + digest
	for _, pub := range []string{pubA, pubB} {
		if out, err := cosignVerify(t, reg, pub, ref); err != nil {
			t.Errorf("cosign verify with %s after three publishes: %v\n%s", pub, err, out)
		}
	}
	hex := strings.TrimPrefix(digest, "sha256:")
	if n := layerCount(t, reg, repo.String()+":sha256-"+hex+".sig"); n != 2 {
		t.Errorf("%d signatures, want 2 (one a key, no repeat)", n)
	}
	if n := layerCount(t, reg, repo.String()+":sha256-"+hex+".att"); n != 2 {
		t.Errorf("%d attestations, want 2 (B's SBOM, A's provenance)", n)
	}
	if preds, err := cosignStatements(t, reg, pubB, "cyclonedx", ref, digest); err != nil || len(preds) != 1 || !strings.Contains(string(preds[0]), second) {
		t.Errorf("B's SBOM: %v, %s", err, preds)
	}
	if _, err := cosignStatements(t, reg, pubA, "cyclonedx", ref, digest); err == nil {
		t.Errorf("A's SBOM, replaced, still verifies")
	}
	if preds, err := cosignStatements(t, reg, pubA, "slsaprovenance1", ref, digest); err != nil || len(preds) != 1 || !strings.Contains(string(preds[0]), builder) {
		t.Errorf("A's provenance, of another type, is gone: %v, %s", err, preds)
	}
}

// Prepare stores nothing under cosign's tags: Commit does, once the
// image is there (a signature never names a digest the registry lacks).
func TestPrepareThenCommit(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	key, pub := keyPair(t, "pw")
	s, err := sign.Load(key, "pw")
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(256, 1)
	d, _ := img.Digest()
	repo, _ := name.NewRepository(reg.Host + "/later/app")
	p, err := s.Prepare(context.Background(), repo, d.String(), []sign.Attestation{{Kind: sign.KindSBOM, Predicate: sbom("x")}}, registry.Access{Transport: http.DefaultTransport, Keychain: authn.DefaultKeychain})
	if err != nil {
		t.Fatalf("prepare before the image is there: %v", err)
	}
	if out, err := harness.RunErr(nil, harness.Tool(t, "crane"), "ls", "--insecure", repo.String()); err == nil && strings.TrimSpace(out) != "" {
		t.Errorf("Prepare tagged something: %q", out)
	}
	if err := remote.Write(repo.Tag("1"), img); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(context.Background()); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if out, err := cosignVerify(t, reg, pub, repo.String()+"@"+d.String()); err != nil {
		t.Errorf("cosign verify after Commit: %v\n%s", err, out)
	}
}

// The other way: what the real cosign CLI signs and attests (in the
// form hoist writes: cosign's tags, --new-bundle-format=false), hoist's
// verification accepts with the public key, and counts; another key, a
// requirement the image lacks, and an image that is not there are each
// their own error. (sign.Verify is being renamed by issue 25's item 8:
// it is used in this test only.)
func TestVerifyAcceptsWhatCosignSigned(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	repo, digest := pushImage(t, reg, "signed/app")
	key, pub := keyPair(t, "pw")
	_, otherPub := keyPair(t, "other")
	ref := repo.String() + "@" + digest
	env := []string{"COSIGN_PASSWORD=pw"}
	if out, err := reg.CosignEnv(t, env, "sign", "--key", key, "--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false", "-y", ref); err != nil {
		t.Fatalf("cosign sign: %v\n%s", err, out)
	}
	pred := filepath.Join(t.TempDir(), "sbom.json")
	os.WriteFile(pred, sbom("from-cosign"), 0o644)
	if out, err := reg.CosignEnv(t, env, "attest", "--key", key, "--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false", "-y", "--type", "cyclonedx", "--predicate", pred, ref); err != nil {
		t.Fatalf("cosign attest: %v\n%s", err, out)
	}
	v, err := sign.LoadPublic(pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, kc := context.Background(), basicKeychain{reg}
	tagRef, _ := name.ParseReference(repo.String() + ":1")
	got, err := sign.VerifySignatures(ctx, tagRef, v, []string{"sbom"}, registry.Access{Transport: http.DefaultTransport, Keychain: kc})
	if err != nil {
		t.Fatalf("verify what cosign signed: %v (tags: %q)", err, tagsOf(t, reg, "signed/app"))
	}
	if got.Digest.DigestStr() != digest || got.Signatures != 1 || got.Attestations[sign.KindSBOM] != 1 {
		t.Errorf("verification %+v, want %s, one signature and one SBOM", got, digest)
	}
	if _, err := sign.VerifySignatures(ctx, tagRef, v, []string{"provenance"}, registry.Access{Transport: http.DefaultTransport, Keychain: kc}); !errors.Is(err, sign.ErrUnverified) || !strings.Contains(err.Error(), "SLSA provenance") {
		t.Errorf("require provenance of an image without: %v, want ErrUnverified naming it", err)
	}
	other, err := sign.LoadPublic(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign.VerifySignatures(ctx, tagRef, other, nil, registry.Access{Transport: http.DefaultTransport, Keychain: kc}); !errors.Is(err, sign.ErrUnverified) {
		t.Errorf("another key: %v, want ErrUnverified", err)
	}
	absent, _ := name.ParseReference(repo.String() + ":absent")
	if _, err := sign.VerifySignatures(ctx, absent, v, nil, registry.Access{Transport: http.DefaultTransport, Keychain: kc}); !errors.Is(err, sign.ErrImage) {
		t.Errorf("an image that is not there: %v, want ErrImage", err)
	}
	closed, _ := name.ParseReference(fmt.Sprintf("127.0.0.1:%d/x/y:1", harness.FreePort(t)))
	if _, err := sign.VerifySignatures(ctx, closed, v, nil, registry.Access{Transport: http.DefaultTransport, Keychain: kc}); !errors.Is(err, sign.ErrUnavailable) {
		t.Errorf("a registry that does not answer: %v, want ErrUnavailable", err)
	}
}

// The real cosign CLI (v3.1.3, the pinned one) signs and attests by
// default in the Sigstore bundle format, stored as OCI referrers (on
// distribution 2.8, an index under the tag sha256-<hex>). hoist's
// verification reads those bundles as it reads cosign's legacy tags
// (before, it said "no signatures found" for an image cosign verify
// --key accepts): the signature counts, with the key only; the CycloneDX
// attestation counts for --require sbom.
func TestVerifyAcceptsCosignsDefaultSignature(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	repo, digest := pushImage(t, reg, "bundle/app")
	key, pub := keyPair(t, "pw")
	ref := repo.String() + "@" + digest
	if out, err := reg.CosignEnv(t, []string{"COSIGN_PASSWORD=pw"}, "sign", "--key", key, "--use-signing-config=false", "--tlog-upload=false", "-y", ref); err != nil {
		t.Fatalf("cosign sign: %v\n%s", err, out)
	}
	if out, err := cosignVerify(t, reg, pub, ref); err != nil {
		t.Fatalf("cosign verify does not accept its own signature: the test proves nothing: %v\n%s", err, out)
	}
	v, err := sign.LoadPublic(pub)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := name.NewDigest(ref)
	got, err := sign.VerifySignatures(context.Background(), d, v, nil, registry.Access{Transport: http.DefaultTransport, Keychain: authn.DefaultKeychain})
	if err != nil || got.Signatures != 1 {
		t.Errorf("hoist's verification of a signature cosign verify accepts: %+v, %v (tags: %q)", got, err, tagsOf(t, reg, "bundle/app"))
	}
	// Another key's verification finds none.
	_, otherPub := keyPair(t, "pw2")
	other, err := sign.LoadPublic(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := sign.VerifySignatures(context.Background(), d, other, nil, registry.Access{Transport: http.DefaultTransport, Keychain: authn.DefaultKeychain}); !errors.Is(err, sign.ErrUnverified) {
		t.Errorf("another key verifies cosign's bundle: %+v, %v", got, err)
	}
	// cosign attest, in the bundle format too, satisfies --require sbom.
	pred := filepath.Join(t.TempDir(), "sbom.json")
	if err := os.WriteFile(pred, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := reg.CosignEnv(t, []string{"COSIGN_PASSWORD=pw"}, "attest", "--key", key, "--type", "cyclonedx", "--predicate", pred, "--use-signing-config=false", "--tlog-upload=false", "-y", ref); err != nil {
		t.Fatalf("cosign attest: %v\n%s", err, out)
	}
	got, err = sign.VerifySignatures(context.Background(), d, v, []string{"sbom"}, registry.Access{Transport: http.DefaultTransport, Keychain: authn.DefaultKeychain})
	if err != nil || got.Signatures != 1 || got.Attestations[sign.KindSBOM] != 1 {
		t.Errorf("hoist's verification of cosign's bundle attestation: %+v, %v", got, err)
	}
}

// A key that cannot be used is ErrKey saying why, without the key or the
// password: not PEM, not a cosign private key, a wrong password (found
// by Unlock, before anything is written: the repository holds no
// signature after), a file that does not exist. PEM content works as
// well as a path.
func TestKeyErrors(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	repo, digest := pushImage(t, reg, "keys/app")
	password := "pw-" + randomHex(6)
	key, pub := keyPair(t, password)
	pemKey, _ := os.ReadFile(key)
	pubPEM, _ := os.ReadFile(pub)

	if _, err := sign.Load("not a key "+password, password); !errors.Is(err, sign.ErrKey) || strings.Contains(err.Error(), password) {
		t.Errorf("not a key: %v", err)
	}
	if _, err := sign.Load(string(pubPEM), password); !errors.Is(err, sign.ErrKey) || !strings.Contains(err.Error(), "not a cosign private key") {
		t.Errorf("a public key: %v", err)
	}
	if _, err := sign.Load(filepath.Join(t.TempDir(), "absent.key"), password); !errors.Is(err, sign.ErrKey) {
		t.Errorf("a file that does not exist: %v", err)
	}
	wrong := "wrong-" + randomHex(6)
	s, err := sign.Load(string(pemKey), wrong)
	if err != nil {
		t.Fatalf("PEM content: %v", err)
	}
	err = s.Unlock()
	if !errors.Is(err, sign.ErrKey) || !strings.Contains(err.Error(), "cannot be decrypted") {
		t.Errorf("a wrong password: %v", err)
	}
	if err != nil && (strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), "BEGIN")) {
		t.Errorf("the error holds the password or the key: %v", err)
	}
	if _, err := s.Publish(context.Background(), repo, digest, nil, registry.Access{Transport: http.DefaultTransport, Keychain: authn.DefaultKeychain}); !errors.Is(err, sign.ErrKey) {
		t.Errorf("publish with a wrong password: %v, want ErrKey", err)
	}
	if tags := tagsOf(t, reg, "keys/app"); !slices.Equal(tags, []string{"1"}) {
		t.Errorf("after a failed signing the repository has tags %q", tags)
	}
	good, err := sign.Load(string(pemKey), password)
	if err != nil || good.Unlock() != nil {
		t.Fatalf("the right password: %v", err)
	}
	if _, err := good.Publish(context.Background(), repo, digest, nil, registry.Access{Transport: http.DefaultTransport, Keychain: authn.DefaultKeychain}); err != nil {
		t.Fatal(err)
	}
	if out, err := cosignVerify(t, reg, pub, repo.String()+"@"+digest); err != nil {
		t.Errorf("signed with a key given as PEM content, cosign verify: %v\n%s", err, out)
	}
}

// A registry that does not answer is ErrSign naming the image.
func TestPublishToAnUnreachableRegistry(t *testing.T) {
	t.Parallel()
	key, _ := keyPair(t, "pw")
	s, err := sign.Load(key, "pw")
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := name.NewRepository(fmt.Sprintf("127.0.0.1:%d/gone/app", harness.FreePort(t)))
	digest := "sha256:" + strings.Repeat("ab", 32)
	_, err = s.Publish(context.Background(), repo, digest, nil, registry.Access{Transport: http.DefaultTransport, Keychain: authn.DefaultKeychain})
	if !errors.Is(err, sign.ErrSign) || !strings.Contains(err.Error(), repo.String()+"@"+digest) {
		t.Errorf("publish to a closed port: %v, want ErrSign naming the image", err)
	}
}

// Signer.Annotations are signed in the payload, as cosign sign -a signs
// them: cosign verify -a key=value passes with them, fails with another
// value.
func TestPublishSignsAnnotations(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	repo, digest := pushImage(t, reg, "annotated/app")
	key, pub := keyPair(t, "ann-pw")
	s, err := sign.Load(key, "ann-pw")
	if err != nil {
		t.Fatal(err)
	}
	s.Annotations = map[string]string{"build_id": "123", "branch": "main"}
	if _, err := s.Publish(context.Background(), repo, digest, nil, registry.Access{Transport: reg.Client().Transport, Keychain: basicKeychain{reg}}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	ref := repo.String() + "@" + digest
	if out, err := reg.Cosign(t, "verify", "--key", pub, "--insecure-ignore-tlog=true", "-a", "build_id=123", "-a", "branch=main", ref); err != nil {
		t.Errorf("cosign verify -a: %v\n%s", err, out)
	}
	if out, err := reg.Cosign(t, "verify", "--key", pub, "--insecure-ignore-tlog=true", "-a", "build_id=124", ref); err == nil {
		t.Errorf("cosign verify -a build_id=124 passes:\n%s", out)
	}
}
