package step

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hoist-build/hoist/internal/promote"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/sign"
	"github.com/hoist-build/hoist/internal/source"
)

// PromoteRequest is a push-only step that promotes a digest from its
// registry (PLUGIN_PROMOTE; hoist promote): the policy checked on the
// source first, then the image and everything that hangs off its digest
// copied to every destination, registry to registry, tags last.
type PromoteRequest struct {
	// Source is the image in its registry (a tag is resolved once).
	Source string
	// Policy, when set, is whom the source's signature (and the
	// attestations of Require) must come from, checked before any byte
	// moves: a public key, or a keyless identity.
	Policy  *sign.Policy
	Require []string
}

// promoteOf is the promotion of a push-only step that asks for one (nil
// otherwise), and what it refuses beside it.
func promoteOf(s *settings.Settings, st *Step, path func(string) string) (*PromoteRequest, error) {
	keyless := []string{s.PromoteIdentity, s.PromoteIssuer, s.PromoteCARoots, s.PromoteRekorKey, s.PromoteTrustedRoot}
	if !s.Promote {
		if s.PromoteKey != "" || len(s.PromoteRequire) > 0 || slices.ContainsFunc(keyless, func(v string) bool { return v != "" }) {
			return nil, fmt.Errorf("%w: %s, %s and the keyless identity settings are the policy of a promotion, and %s is not set", settings.ErrInvalid, s.Name("promote-key"), s.Name("promote-require"), s.Name("promote"))
		}
		return nil, nil
	}
	bad := func(format string, args ...any) (*PromoteRequest, error) {
		return nil, fmt.Errorf("%w: %s: "+format, append([]any{settings.ErrInvalid, s.Name("promote")}, args...)...)
	}
	switch {
	case st.Mode != ModePushOnly:
		return bad("a promotion is a push-only step: set %s (or run hoist promote)", s.Name("push-only"))
	case s.SourceTarPath != "":
		return bad("a promotion copies an image from its registry, and %s names a file: push it with a push-only step first", s.Name("source-tar-path"))
	case s.SourceImage == "":
		return bad("%s must name the image in its registry (registry/repo:tag or @sha256:...)", s.Name("source-image"))
	case st.Sign != nil:
		return bad("a promotion copies the source's signatures and attestations and signs nothing; %s would sign again: sign the image where it is first pushed", s.Name("sign"))
	case st.Scan != nil:
		return bad("%s needs the image's bytes here, and a promotion copies registry to registry: require a signed provenance naming a passing scan record (%s=scan)", s.Name("scan"), s.Name("promote-require"))
	case st.RequireScan != "":
		return bad("%s reads a record of this workspace, and a promotion checks what the source's signed provenance says: %s=scan", s.Name("require-scan"), s.Name("promote-require"))
	}
	req := &PromoteRequest{Source: s.SourceImage}
	wantSig := false
	for _, r := range s.PromoteRequire {
		r = strings.TrimSpace(strings.ToLower(r))
		switch {
		case r == "":
		case r == "signature":
			wantSig = true
		case slices.Contains(sign.Requirements, r):
			if !slices.Contains(req.Require, r) {
				req.Require = append(req.Require, r)
			}
		default:
			return nil, fmt.Errorf("%w: %s: %q is none of signature, %s", settings.ErrInvalid, s.Name("promote-require"), r, strings.Join(sign.Requirements, ", "))
		}
	}
	set := func(v, flag string) sign.Setting { return sign.Setting{Value: v, Name: s.Name(flag)} }
	p, err := policyOf(set(s.PromoteKey, "promote-key"), sign.IdentityTrust{Subject: set(s.PromoteIdentity, "promote-certificate-identity"),
		Issuer: set(s.PromoteIssuer, "promote-certificate-oidc-issuer"), CARoots: set(s.PromoteCARoots, "promote-ca-roots"),
		RekorKey: set(s.PromoteRekorKey, "promote-rekor-key"), TrustedRoot: set(s.PromoteTrustedRoot, "promote-trusted-root")}, path)
	if err != nil {
		return nil, err
	}
	if p == nil && (wantSig || len(req.Require) > 0) {
		return nil, fmt.Errorf("%w: %s asks for signed things, and neither %s nor a keyless identity (%s, %s) is set: give the cosign public key (cosign.pub) or the signer's identity they must verify with", settings.ErrInvalid, s.Name("promote-require"), s.Name("promote-key"), s.Name("promote-certificate-identity"), s.Name("promote-certificate-oidc-issuer"))
	}
	req.Policy = p
	return req, nil
}

// policyOf is the policy a cosign public key, or a keyless identity,
// gives: nil when neither is set. File paths are resolved by path.
func policyOf(key sign.Setting, id sign.IdentityTrust, path func(string) string) (*sign.Policy, error) {
	files := []*sign.Setting{&key, &id.CARoots, &id.RekorKey, &id.TrustedRoot}
	for _, f := range files {
		if f.Value != "" && !strings.Contains(f.Value, "-----BEGIN") {
			f.Value = path(f.Value)
		}
	}
	keyless := id.Subject.Value != "" || id.Issuer.Value != "" || id.CARoots.Value != "" || id.RekorKey.Value != "" || id.TrustedRoot.Value != ""
	switch {
	case key.Value != "" && keyless:
		return nil, fmt.Errorf("%w: %s and the keyless identity (%s, ...) are both set: verify with the key, or with the identity, not both", settings.ErrInvalid, key.Name, id.Subject.Name)
	case key.Value != "":
		v, err := sign.LoadPublicAs(key.Value, key.Name)
		if err != nil {
			return nil, err
		}
		return &sign.Policy{Key: v}, nil
	case keyless:
		i, err := sign.LoadIdentity(id)
		if err != nil {
			return nil, err
		}
		return &sign.Policy{Identity: i}, nil
	}
	return nil, nil
}

// promote resolves the source to its digest in its registry, checks the
// policy there, finds what hangs off the digest, and pushes the image to
// every destination with what hangs off it copied before the tags.
func (r *runner) promote(ctx context.Context) error {
	pr := r.st.Promote
	start := time.Now()
	pages := &promote.Pages{RoundTripper: r.tr}
	if r.tr == nil {
		pages.RoundTripper = http.DefaultTransport
	}
	access := registry.Access{Transport: pages, Keychain: r.kc}
	// One puller for every read of the source (the image, the policy,
	// what hangs off it): one ping and one token, not one per call.
	pl, err := remote.NewPuller(access.Options(ctx)...)
	if err != nil {
		return err
	}
	access.Puller = pl
	img, err := source.OpenRemote(ctx, r.sourceRequest(source.Request{Image: pr.Source, Access: access}))
	if err != nil {
		return err
	}
	defer img.Close()
	ref, err := source.ParseReference(pr.Source, r.st.Insecure)
	if err != nil {
		return err
	}
	from := ref.Context()
	digest := from.Digest(img.Digest.String())
	r.pr.Printf("promote: %s is %s (resolved once; everything below uses the digest)", ref.Name(), digest.Name())
	if pr.Policy != nil {
		if id := pr.Policy.Identity; id != nil {
			r.pr.Printf("promote: policy: signed by %s (issuer %s); %s", id.Subject, id.Issuer, id.Checks())
		}
		vstart := time.Now()
		v, err := sign.Verify(ctx, digest, *pr.Policy, pr.Require, access)
		r.maskLearned()
		if v != nil {
			r.res.Verification = v
		}
		if err != nil {
			// A signature on a page hoist did not read is not missing.
			if perr := pagedRefused(pages, digest); perr != nil {
				return perr
			}
			return fmt.Errorf("%w (nothing was promoted)", err)
		}
		r.pr.Printf("promote: policy met on the source: %s (checked in %.2fs)", verifiedSummary(v), time.Since(vstart).Seconds())
	} else {
		r.pr.Printf("promote: no policy (neither PLUGIN_PROMOTE_KEY nor a keyless identity is set): the source is copied as it is, unverified")
	}
	children, err := promote.Children(img.Artifact)
	if err != nil {
		return fmt.Errorf("read %s: %w", digest, err)
	}
	srcOpts := access.Options(ctx)
	att, err := promote.Find(ctx, from, img.Digest, children, srcOpts)
	if err != nil {
		why := source.ErrBadInput // refused: over a limit, a referrer of another subject
		if registry.Unavailable(err) {
			why = source.ErrUnavailable
		}
		return fmt.Errorf("%w: %s: what hangs off the digest: %w (nothing was promoted)", why, digest, err)
	}
	if err := pagedRefused(pages, digest); err != nil {
		return err
	}
	r.pr.Printf("promote: %s carries %s (found in %.2fs)", digest.Name(), att.Summary(), time.Since(start).Seconds())
	img.From = "registry image " + digest.Name()
	if err := r.spread(ctx, from, img, srcOpts); err != nil {
		return err
	}
	r.pubs.registries.opts.BeforeTags = func(ctx context.Context, repo name.Repository, opts []remote.Option) error {
		if att.Count() == 0 {
			return nil
		}
		c, err := att.Copy(ctx, repo, opts)
		if err != nil {
			return fmt.Errorf("copy what hangs off %s: %w", img.Digest, err)
		}
		r.pr.Printf("promote: %s: signatures, attestations and referrers: %s", repo, c)
		return nil
	}
	return r.push(ctx, img, nil)
}

// pagedRefused refuses a source whose registry listed referrers with a
// next page, which hoist does not read.
func pagedRefused(pages *promote.Pages, digest name.Digest) error {
	paged := pages.Paged()
	if len(paged) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: the registry lists the referrers in pages (a Link header to a next page, at %s), and hoist reads one page: refusing rather than leave what the other pages list behind (nothing was promoted)", source.ErrBadInput, digest, paged[0])
}

// verifiedSummary says what a verification found valid, on one line.
func verifiedSummary(v *sign.Verification) string {
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(v.Attestations)) {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v.Attestations[k]))
	}
	if len(kinds) == 0 {
		kinds = []string{"none"}
	}
	out := fmt.Sprintf("signatures %d valid; attestations: %s", v.Signatures, strings.Join(kinds, ", "))
	if v.Scan != nil {
		out += fmt.Sprintf("; scan %s by %s", v.Scan.Verdict, v.Scan.Scanner)
	}
	return out
}

// spread sends the blobs of img, in the repository from, each read once
// from there, to every destination registry but from's own (where they
// are mounted) that lacks them, when there are two or more: one registry
// needs no sharing, its push streams from the source as it is (a
// promotion; the image a remote builder pushed to the first destination). A
// destination a blob cannot be sent to is left to the push, which reads
// the blob from the source itself.
func (r *runner) spread(ctx context.Context, from name.Repository, img *source.Image, opts []remote.Option) error {
	var repos []name.Repository
	seen := map[string]bool{from.RegistryStr(): true}
	for _, d := range r.pubs.registries.pushed() {
		if reg := d.Context().RegistryStr(); !seen[reg] {
			seen[reg] = true
			repos = append(repos, d.Context())
		}
	}
	if len(repos) < 2 {
		return nil
	}
	start := time.Now()
	sp, err := promote.Send(ctx, from, img.Artifact, repos, r.st.Push.Jobs, opts)
	if err != nil {
		return fmt.Errorf("%w: read %s: %w", source.ErrUnavailable, from, err)
	}
	r.pr.Printf("%d blob(s), %.1f MiB, read once from %s and sent to %d registries at once (%.1f MiB written, %d already there) in %.2fs",
		sp.Blobs, float64(sp.Bytes)/(1<<20), from, len(repos), float64(sp.Sent)/(1<<20), sp.Present, time.Since(start).Seconds())
	for _, repo := range slices.Sorted(maps.Keys(sp.Failed)) {
		r.pr.Printf("%s: %v (its push sends the blob from %s)", repo, sp.Failed[repo], from)
	}
	return nil
}
