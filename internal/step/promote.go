package step

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"

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
	// Key, when set, is the public key the source's signature (and the
	// attestations of Require) must verify with before any byte moves.
	Key     signature.Verifier
	Require []string
}

// promoteOf is the promotion of a push-only step that asks for one (nil
// otherwise), and what it refuses beside it.
func promoteOf(s *settings.Settings, st *Step, path func(string) string) (*PromoteRequest, error) {
	if !s.Promote {
		if s.PromoteKey != "" || len(s.PromoteRequire) > 0 {
			return nil, fmt.Errorf("%w: %s and %s are the policy of a promotion, and %s is not set", settings.ErrInvalid, s.Name("promote-key"), s.Name("promote-require"), s.Name("promote"))
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
	if s.PromoteKey == "" {
		if wantSig || len(req.Require) > 0 {
			return nil, fmt.Errorf("%w: %s asks for signed things, and %s is not set: give the cosign public key (cosign.pub) they must verify with", settings.ErrInvalid, s.Name("promote-require"), s.Name("promote-key"))
		}
		return req, nil
	}
	key := s.PromoteKey
	if !strings.Contains(key, "-----BEGIN") {
		key = path(key)
	}
	v, err := sign.LoadPublic(key)
	if err != nil {
		return nil, err
	}
	req.Key = v
	return req, nil
}

// promote resolves the source to its digest in its registry, checks the
// policy there, finds what hangs off the digest, and pushes the image to
// every destination with what hangs off it copied before the tags.
func (r *runner) promote(ctx context.Context) error {
	pr := r.st.Promote
	start := time.Now()
	access := registry.Access{Transport: r.tr, Keychain: r.kc}
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
	if pr.Key != nil {
		v, err := sign.VerifySignatures(ctx, digest, pr.Key, pr.Require, access)
		r.maskLearned()
		if v != nil {
			r.res.Verification = v
		}
		if err != nil {
			return fmt.Errorf("%w (nothing was promoted)", err)
		}
		r.pr.Printf("promote: policy met on the source: %s", verifiedSummary(v))
	} else {
		r.pr.Printf("promote: no policy (PLUGIN_PROMOTE_KEY is not set): the source is copied as it is, unverified")
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
