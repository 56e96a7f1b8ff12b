package step

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/sign"
)

// VerifyRequest is hoist verify: an image in a registry, whom its
// signatures must come from (a public key or a keyless identity), and the
// attestations it must carry.
type VerifyRequest struct {
	Image   string
	Policy  sign.Policy
	Require []string
}

// Trust is what hoist verify's and hoist promote's flags say the
// signatures must verify with: a cosign public key, or a keyless
// identity (cosign verify's flag names).
type Trust struct {
	Key, Identity, Issuer, CARoots, RekorKey, TrustedRoot string
}

// VerifyFromSettings is the step of hoist verify: the settings' registry
// access (logins, certificates, routes), nothing built or pushed.
func VerifyFromSettings(s *settings.Settings, env Environ, image string, t Trust, require []string) (Step, error) {
	if err := sign.CheckRequire(require); err != nil {
		return Step{}, fmt.Errorf("%w: --require: %w", settings.ErrInvalid, err)
	}
	flag := func(v, name string) sign.Setting { return sign.Setting{Value: v, Name: "--" + name} }
	p, err := policyOf(flag(t.Key, "key"), sign.IdentityTrust{Subject: flag(t.Identity, "certificate-identity"), Issuer: flag(t.Issuer, "certificate-oidc-issuer"),
		CARoots: flag(t.CARoots, "ca-roots"), RekorKey: flag(t.RekorKey, "rekor-key"), TrustedRoot: flag(t.TrustedRoot, "trusted-root")}, func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(env.WorkDir, p)
	})
	if err != nil {
		return Step{}, err
	}
	if p == nil {
		return Step{}, fmt.Errorf("%w: --key (the cosign public key, cosign.pub) or a keyless identity (--certificate-identity, --certificate-oidc-issuer, and --ca-roots or --trusted-root) is required: whom the signatures must come from", settings.ErrInvalid)
	}
	c := *s
	c.PushOnly, c.NoPush, c.Scan, c.RequireScan, c.Sign, c.SBOM, c.Provenance = true, false, false, false, false, false, false
	c.Repo, c.Destinations, c.SourceTarPath, c.SourceImage = "", nil, "", image
	c.SignKey = "" // a signing key in the environment signs nothing here
	env.ScanOnly = true
	st, err := FromSettings(&c, env)
	if err != nil {
		return st, err
	}
	st.Mode, st.Verify = ModeVerify, &VerifyRequest{Image: image, Policy: *p, Require: require}
	return st, nil
}

// verify checks the image's signature and attestations, and prints what
// verified.
func (r *runner) verify(ctx context.Context) error {
	vr := r.st.Verify
	opts := []name.Option{name.WeakValidation}
	if r.st.Insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(vr.Image, opts...)
	if err != nil {
		return fmt.Errorf("%w: %q is not an image reference: %w", settings.ErrInvalid, vr.Image, err)
	}
	v, err := sign.Verify(ctx, ref, vr.Policy, vr.Require, registry.Access{Transport: r.tr, Keychain: r.kc})
	r.maskLearned()
	if v != nil {
		r.res.Digest = v.Digest.DigestStr()
		r.res.Verification = v
	}
	if err != nil {
		return err
	}
	w := r.rt.Stdout
	fmt.Fprintf(w, "verified %s\n", v.Digest)
	fmt.Fprintf(w, "  signatures: %d valid\n", v.Signatures)
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(v.Attestations)) {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v.Attestations[k]))
	}
	if len(kinds) == 0 {
		kinds = []string{"none"}
	}
	fmt.Fprintf(w, "  attestations: %s\n", strings.Join(kinds, ", "))
	if v.Scan != nil {
		fmt.Fprintf(w, "  scan: %s by %s (record %s)\n", v.Scan.Verdict, v.Scan.Scanner, v.Scan.Record)
	}
	return nil
}
