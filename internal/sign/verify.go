package sign

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v3/pkg/cosign"
	"github.com/sigstore/cosign/v3/pkg/oci"
	ociremote "github.com/sigstore/cosign/v3/pkg/oci/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/hoist-build/hoist/internal/registry"
)

// ErrUnverified marks an image whose signature or a required attestation
// does not verify.
var ErrUnverified = errors.New("not verified")

// Requirements are what hoist verify --require takes.
var Requirements = []string{"sbom", "provenance", "scan"}

// LoadPublic reads a cosign public key (cosign.pub), given as PEM content
// or as a file's path.
func LoadPublic(key string) (signature.Verifier, error) {
	return LoadPublicAs(key, "--key")
}

// LoadPublicAs is LoadPublic of the key the setting named gives.
func LoadPublicAs(key, setting string) (signature.Verifier, error) {
	pem, from, err := readKey(key, setting)
	if err != nil {
		return nil, err
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pem)
	var v signature.Verifier
	if err == nil {
		v, err = signature.LoadVerifier(pub, crypto.SHA256)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a public key cosign verifies with (give cosign.pub from cosign generate-key-pair): %w", ErrKey, from, err)
	}
	return v, nil
}

// Verification is what VerifySignatures found valid for an image.
type Verification struct {
	Digest     name.Digest
	Signatures int
	// Attestations counts the valid attestations by kind (cyclonedx,
	// slsaprovenance1, or the predicate type of another).
	Attestations map[string]int
	// Scan is the scan record the provenance names, when it names one.
	Scan *ScanClaim
}

// ScanClaim is the scan record a signed provenance names.
type ScanClaim struct {
	Passed  bool   `json:"passed"`
	Verdict string `json:"verdict"`
	Scanner string `json:"scanner"`
	Record  string `json:"-"`
}

// VerifySignatures checks the signatures of the image ref names, and its
// attestations, with the public key v: at least one valid signature over
// its digest, and for each of require (sbom, provenance, scan) a valid
// attestation (scan: a provenance naming a passing scan record, none naming a failing one). The
// transparency log is not consulted (key-based, offline).
func VerifySignatures(ctx context.Context, ref name.Reference, v signature.Verifier, require []string, access registry.Access) (*Verification, error) {
	return Verify(ctx, ref, Policy{Key: v}, require, access)
}

// Verify checks the signatures of the image ref names, and its
// attestations, as VerifySignatures does, whoever p trusts: a key, or a
// keyless identity (offline: the transparency log's signed entry
// timestamps, when its key is given, are checked without asking it).
func Verify(ctx context.Context, ref name.Reference, p Policy, require []string, access registry.Access) (*Verification, error) {
	opt := ociremote.WithRemoteOptions(access.Options(ctx)...)
	d, err := ociremote.ResolveDigest(ref, opt)
	if err != nil {
		if registry.Unavailable(err) {
			return nil, unavailable(ref, err)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrImage, ref, err)
	}
	out := &Verification{Digest: d, Attestations: map[string]int{}}
	co := p.checkOpts()
	co.ClaimVerifier, co.RegistryClientOpts = cosign.SimpleClaimVerifier, []ociremote.Option{opt}
	// cosign 3 signs and attests in the Sigstore bundle format by
	// default, stored as OCI referrers (or under the sha256-<hex> tag):
	// those count as hoist's own (cosign's legacy tags) do. A bundle that
	// does not verify with the key counts for nothing.
	// A registry that gives no answer for the bundles (its referrers API
	// fails) counts only if the legacy tags hold no signature either.
	bundled, signed, bundleErr := bundles(ctx, d, co)
	sv, _, err := cosign.VerifyImageSignatures(ctx, d, co)
	if err != nil && registry.Unavailable(err) {
		return out, unavailable(d, err)
	}
	if err != nil && signed == 0 {
		if bundleErr != nil {
			return out, unavailable(d, bundleErr)
		}
		return out, fmt.Errorf("%w: %s: no signature verifies with %s: %w", ErrUnverified, d, p, err)
	}
	out.Signatures = len(sv) + signed
	co.ClaimVerifier = cosign.IntotoSubjectClaimVerifier
	atts, _, err := cosign.VerifyImageAttestations(ctx, d, co)
	if err != nil && len(require) > 0 && registry.Unavailable(err) {
		return out, unavailable(d, err)
	}
	if err != nil && len(require) > 0 && len(bundled) == 0 {
		if bundleErr != nil {
			return out, unavailable(d, bundleErr)
		}
		return out, fmt.Errorf("%w: %s: no attestation verifies with %s (required: %s): %w", ErrUnverified, d, p, strings.Join(require, ", "), err)
	}
	for _, a := range append(atts, bundled...) {
		st, err := statementOf(a.Payload)
		if err != nil {
			return out, fmt.Errorf("%w: %s: an attestation: %w", ErrUnverified, d, err)
		}
		kind := st.PredicateType
		for _, k := range []string{KindSBOM, KindProvenance} {
			if PredicateType(k) == kind {
				kind = k
			}
		}
		out.Attestations[kind]++
		if kind == KindProvenance {
			// A failing record wins: a later scan of the same digest
			// that failed is not outweighed by an earlier pass.
			if c := scanClaim(st.Predicate); c != nil && (out.Scan == nil || !c.Passed) {
				out.Scan = c
			}
		}
	}
	var missing []string
	for _, r := range require {
		switch r {
		case "sbom":
			if out.Attestations[KindSBOM] == 0 {
				missing = append(missing, "no signed CycloneDX SBOM attestation (PLUGIN_SBOM)")
			}
		case "provenance":
			if out.Attestations[KindProvenance] == 0 {
				missing = append(missing, "no signed SLSA provenance v1 attestation (PLUGIN_PROVENANCE)")
			}
		case "scan":
			switch {
			case out.Scan == nil:
				missing = append(missing, "no signed provenance names a scan record (PLUGIN_PROVENANCE with PLUGIN_SCAN or PLUGIN_REQUIRE_SCAN)")
			case !out.Scan.Passed:
				missing = append(missing, "the scan record the provenance names did not pass: "+out.Scan.Verdict)
			}
		}
	}
	if len(missing) > 0 && bundleErr != nil {
		// What is missing may be in the bundles the registry did not show.
		return out, unavailable(d, bundleErr)
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("%w: %s: %s", ErrUnverified, d, strings.Join(missing, "; "))
	}
	return out, nil
}

// cosignSign is the predicate type of the statement cosign 3 signs (in a
// Sigstore bundle) when it signs an image.
const cosignSign = "https://sigstore.dev/cosign/sign/v1"

// bundles reads the Sigstore bundles attached to d that verify with the
// key: the attestations among them, and how many are signatures. An
// error is a registry that gave no answer; any other failure (no
// bundle, no referrers, a bundle of another key) is none found.
func bundles(ctx context.Context, d name.Digest, co *cosign.CheckOpts) ([]oci.Signature, int, error) {
	bco := *co
	bco.NewBundleFormat = true
	bco.ClaimVerifier = cosign.IntotoSubjectClaimVerifier
	verified, _, err := cosign.VerifyImageAttestations(ctx, d, &bco)
	if err != nil {
		if registry.Unavailable(err) {
			return nil, 0, err
		}
		return nil, 0, nil
	}
	var atts []oci.Signature
	signed := 0
	for _, a := range verified {
		if st, err := statementOf(a.Payload); err == nil && st.PredicateType == cosignSign {
			signed++
			continue
		}
		atts = append(atts, a)
	}
	return atts, signed, nil
}

// ErrImage marks an image that cannot be read from its registry.
var ErrImage = errors.New("image not found")

// ErrUnavailable marks a registry that gave no answer (registry.Unavailable):
// it cannot be reached, or it failed after the retries. Nothing was
// verified, and nothing was found wanting either.
var ErrUnavailable = errors.New("registry unavailable")

func unavailable(ref name.Reference, err error) error {
	return fmt.Errorf("%w: %s: registry %s %s: %w (nothing was verified: run hoist verify again when the registry answers)",
		ErrUnavailable, ref, ref.Context().RegistryStr(), registry.HowUnavailable(err), err)
}

// CheckRequire checks --require's values.
func CheckRequire(require []string) error {
	for _, r := range require {
		if !slices.Contains(Requirements, r) {
			return fmt.Errorf("unknown requirement %q: want %s", r, strings.Join(Requirements, ", "))
		}
	}
	return nil
}

type statement struct {
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// statementOf is the in-toto statement in an attestation's DSSE envelope.
func statementOf(payload func() ([]byte, error)) (*statement, error) {
	p, err := payload()
	if err != nil {
		return nil, err
	}
	var env struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(p, &env); err != nil {
		return nil, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	b, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	var st statement
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("not an in-toto statement: %w", err)
	}
	return &st, nil
}

// scanClaim is the scan record byproduct of a hoist provenance.
func scanClaim(pred json.RawMessage) *ScanClaim {
	var p struct {
		RunDetails struct {
			Byproducts []struct {
				Name        string    `json:"name"`
				URI         string    `json:"uri"`
				Annotations ScanClaim `json:"annotations"`
			} `json:"byproducts"`
		} `json:"runDetails"`
	}
	if json.Unmarshal(pred, &p) != nil {
		return nil
	}
	for _, b := range p.RunDetails.Byproducts {
		if b.Name == "hoist-scan-record" {
			c := b.Annotations
			c.Record = strings.TrimPrefix(b.URI, "file:")
			return &c
		}
	}
	return nil
}
