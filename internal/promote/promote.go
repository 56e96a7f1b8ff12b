// Package promote finds what hangs off an image's digest in a registry
// (cosign's signatures, attestations and attachments under its tag scheme,
// and the OCI referrers of the digest) and copies it, registry to
// registry, into the repositories the image is promoted to. Nothing is
// re-signed: a signature names the digest, and the digest does not change.
package promote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"
)

// TagSuffixes are cosign's tag scheme: the signatures, attestations and
// SBOM attachment of digest sha256:<hex> sit under sha256-<hex>.<suffix>
// in the image's repository.
var TagSuffixes = []string{"sig", "att", "sbom"}

// Limits on what a source registry may hang off one digest; more is
// refused (the promotion fails, naming the limit) rather than copied
// without end or dropped.
const (
	// MaxAttached bounds the referrers and tagged attachments together.
	MaxAttached = 256
	// MaxSubjects bounds the manifests of an index, each a subject.
	MaxSubjects = 128
	// maxManifest bounds one attachment's manifest, maxManifests all of
	// them (they are held in memory from the search to the copies).
	maxManifest  = 4 << 20
	maxManifests = 32 << 20
	// maxLayers bounds one attachment's layers (one per signature or
	// attestation), maxBytes their size.
	maxLayers = 1000
	maxBytes  = 512 << 20
)

// Attached is everything that hangs off one image in its repository, each
// manifest read once from the source, by digest.
type Attached struct {
	// Subjects are the digests things hang off: the image's, and for an
	// index, each of its manifests'.
	Subjects []v1.Hash
	// Tagged are cosign's tag-scheme attachments that are present.
	Tagged []Attachment
	// Referrers are the OCI referrers of the subjects, from the
	// referrers API or its tag fallback.
	Referrers []Attachment

	src     name.Repository
	srcOpts []remote.Option
}

// Attachment is one manifest hanging off a subject: under a tag of
// cosign's scheme (Tag set) or as a referrer.
type Attachment struct {
	Tag     string
	Subject v1.Hash
	Desc    v1.Descriptor
	// manifest is what the source holds at Desc.Digest.
	manifest *remote.Descriptor
}

// with is opts and more, never writing into opts' spare capacity (the
// option slices are shared between goroutines).
func with(opts []remote.Option, more ...remote.Option) []remote.Option {
	return append(slices.Clip(opts), more...)
}

// Count is how many things hang off the image.
func (a *Attached) Count() int { return len(a.Tagged) + len(a.Referrers) }

// Summary says what hangs off the image, for the step's log.
func (a *Attached) Summary() string {
	if a.Count() == 0 {
		return "nothing (no signature, attestation or referrer)"
	}
	var kinds []string
	n := map[string]int{}
	for _, t := range a.Tagged {
		k := "." + t.Tag[strings.LastIndex(t.Tag, ".")+1:]
		if n[k] == 0 {
			kinds = append(kinds, k)
		}
		n[k]++
	}
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
	}
	if len(a.Referrers) > 0 {
		parts = append(parts, fmt.Sprintf("%d referrer(s)", len(a.Referrers)))
	}
	return strings.Join(parts, ", ")
}

// Find lists what hangs off the image digest of repo, whose manifests
// (the image's, or an index's and each of its children's) are subjects,
// and reads each such manifest once, by digest: a referrer must name its
// subject, and every manifest is within the limits above. opts reach the
// repository; with remote.Reuse of a Puller, every read goes through it
// (one ping and token), else through one of Find's own. A registry that cannot say (an error other than "not
// there") fails the search: a promotion must not silently drop a
// signature.
func Find(ctx context.Context, repo name.Repository, digest v1.Hash, children []v1.Hash, opts []remote.Option) (*Attached, error) {
	subjects := []v1.Hash{digest}
	for _, c := range children {
		if !slices.Contains(subjects, c) {
			subjects = append(subjects, c)
		}
	}
	if len(subjects) > MaxSubjects+1 {
		return nil, fmt.Errorf("%s@%s is an index of %d manifests, more than the %d hoist promotes", repo, digest, len(subjects)-1, MaxSubjects)
	}
	// A puller of the caller's (remote.Reuse in opts) is used as it is.
	pl, err := remote.NewPuller(opts...)
	if err != nil {
		return nil, err
	}
	a := &Attached{Subjects: subjects, src: repo, srcOpts: with(opts, remote.Reuse(pl))}
	var (
		mu    sync.Mutex
		count int
		held  int64
	)
	// add takes one attachment, read by digest and checked, under the
	// limits. The descriptor keeps the context it is read with for its
	// blobs, read later by the copies: Find's, not the group's, which
	// ends with the search.
	add := func(_ context.Context, at Attachment) error {
		desc, err := remote.Get(repo.Digest(at.Desc.Digest.String()), with(a.srcOpts, remote.WithContext(ctx))...)
		if err != nil {
			return fmt.Errorf("read %s@%s: %w", repo, at.Desc.Digest, err)
		}
		if err := check(desc, at); err != nil {
			return fmt.Errorf("%s@%s: %w", repo, at.Desc.Digest, err)
		}
		at.manifest, at.Desc = desc, desc.Descriptor
		mu.Lock()
		defer mu.Unlock()
		count++
		held += int64(len(desc.Manifest))
		switch {
		case count > MaxAttached:
			return fmt.Errorf("%s@%s carries more than %d signatures, attestations and referrers, the most hoist copies", repo, digest, MaxAttached)
		case held > maxManifests:
			return fmt.Errorf("what hangs off %s@%s takes more than %d MiB of manifests, the most hoist copies", repo, digest, maxManifests>>20)
		}
		if at.Tag != "" {
			a.Tagged = append(a.Tagged, at)
		} else {
			a.Referrers = append(a.Referrers, at)
		}
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, s := range subjects {
		for _, suffix := range TagSuffixes {
			g.Go(func() error {
				tag := repo.Tag(s.Algorithm + "-" + s.Hex + "." + suffix)
				desc, err := pl.Head(gctx, tag)
				if isNotFound(err) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("read %s: %w", tag, err)
				}
				return add(gctx, Attachment{Tag: tag.TagStr(), Subject: s, Desc: *desc})
			})
		}
		g.Go(func() error {
			d := repo.Digest(s.String())
			idx, err := remote.Referrers(d, with(a.srcOpts, remote.WithContext(gctx))...)
			if isNotFound(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read the referrers of %s: %w", d, err)
			}
			m, err := idx.IndexManifest()
			if err != nil {
				return fmt.Errorf("read the referrers of %s: %w", d, err)
			}
			if len(m.Manifests) > MaxAttached {
				return fmt.Errorf("%s has %d referrers, more than the %d hoist copies", d, len(m.Manifests), MaxAttached)
			}
			// One at a time here (a goroutine of g waiting for a slot of
			// g could wait for ever); the subjects go at once.
			for _, r := range m.Manifests {
				if err := add(gctx, Attachment{Subject: s, Desc: r}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// One referrer may be listed under two subjects; copy it once.
	slices.SortFunc(a.Referrers, func(x, y Attachment) int { return strings.Compare(x.Desc.Digest.String(), y.Desc.Digest.String()) })
	a.Referrers = slices.CompactFunc(a.Referrers, func(x, y Attachment) bool { return x.Desc.Digest == y.Desc.Digest })
	slices.SortFunc(a.Tagged, func(x, y Attachment) int { return strings.Compare(x.Tag, y.Tag) })
	return a, nil
}

// check refuses an attachment hoist does not copy: an index, a manifest
// over the limits, a referrer that does not name its subject.
func check(desc *remote.Descriptor, at Attachment) error {
	if !desc.MediaType.IsImage() {
		return fmt.Errorf("it is a %s; hoist promotes signatures, attestations and other image manifests hanging off a digest", desc.MediaType)
	}
	if len(desc.Manifest) > maxManifest {
		return fmt.Errorf("its manifest is %d bytes, more than the %d MiB hoist copies", len(desc.Manifest), maxManifest>>20)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return err
	}
	if len(m.Layers) > maxLayers {
		return fmt.Errorf("it has %d layers, more than the %d hoist copies", len(m.Layers), maxLayers)
	}
	total := m.Config.Size
	for _, l := range m.Layers {
		total += l.Size
	}
	if total > maxBytes {
		return fmt.Errorf("its blobs take %d MiB, more than the %d MiB hoist copies", total>>20, maxBytes>>20)
	}
	if at.Tag == "" && (m.Subject == nil || m.Subject.Digest != at.Subject) {
		return fmt.Errorf("it is listed as a referrer of %s and does not name it as its subject", at.Subject)
	}
	return nil
}

// isNotFound is a registry's "no such manifest".
func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// Copied is what Copy did in one repository.
type Copied struct {
	Written, Merged, Present int
}

func (c Copied) String() string {
	return fmt.Sprintf("%d copied, %d merged with what was there, %d already there", c.Written, c.Merged, c.Present)
}

// Copy writes what hangs off the image into dst, which must hold the
// image already (a referrer's subject, a signature's digest): each
// referrer by its digest (go-containerregistry keeps the referrers tag
// fallback of a registry without the referrers API, also for a referrer
// that is there but not listed), each tag-scheme attachment under its
// tag. A tag that holds something else already is merged, as cosign
// does when it signs again: its layers (signatures, attestations) are
// kept and the source's added. Manifests are those Find read; blobs of
// the same registry are mounted, others stream from the source. dstOpts
// reach the destination; a caller that has a pusher and a puller for it
// passes them in (remote.Reuse), so that nothing pings or logs in again.
// The tags are written at once (up to 4); the first that fails stops the
// others, and its error is the one returned (the caller then writes no
// tag of its own).
func (a *Attached) Copy(ctx context.Context, dst name.Repository, dstOpts []remote.Option) (Copied, error) {
	var c Copied
	// The caller's pusher and puller (remote.Reuse in dstOpts) are used
	// as they are; else Copy's own serve every write and read.
	pl, err := remote.NewPuller(dstOpts...)
	if err != nil {
		return c, err
	}
	pu, err := remote.NewPusher(dstOpts...)
	if err != nil {
		return c, err
	}
	dstOpts = with(dstOpts, remote.Reuse(pl), remote.Reuse(pu), remote.WithContext(ctx))
	// Referrers first: a signature under a tag never names a referrer,
	// but a referrer's own signature may be tagged under its digest.
	listed := map[v1.Hash]map[v1.Hash]bool{}
	for _, r := range a.Referrers {
		if listed[r.Subject] == nil {
			listed[r.Subject] = map[v1.Hash]bool{}
			idx, err := remote.Referrers(dst.Digest(r.Subject.String()), dstOpts...)
			if err != nil && !isNotFound(err) {
				return c, fmt.Errorf("read the referrers of %s@%s: %w", dst, r.Subject, err)
			}
			if err == nil {
				m, err := idx.IndexManifest()
				if err != nil {
					return c, fmt.Errorf("read the referrers of %s@%s: %w", dst, r.Subject, err)
				}
				for _, d := range m.Manifests {
					listed[r.Subject][d.Digest] = true
				}
			}
		}
		to := dst.Digest(r.Desc.Digest.String())
		switch _, err := remote.Head(to, dstOpts...); {
		case err == nil && listed[r.Subject][r.Desc.Digest]:
			c.Present++
			continue
		case err == nil:
			// There, not listed (a fallback tag's update failed): the
			// manifest written again lists it.
			if err := remote.Put(to, r.manifest, dstOpts...); err != nil {
				return c, fmt.Errorf("list the referrer %s: %w", r.Desc.Digest, err)
			}
			c.Written++
			continue
		case !isNotFound(err):
			return c, fmt.Errorf("read %s: %w", to, err)
		}
		if err := a.write(r, to, dstOpts); err != nil {
			return c, fmt.Errorf("copy the referrer %s (%s): %w", r.Desc.Digest, r.Desc.ArtifactType, err)
		}
		c.Written++
	}
	var mu sync.Mutex
	count := func(n *int) {
		mu.Lock()
		*n++
		mu.Unlock()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	tagOpts := with(dstOpts, remote.WithContext(gctx))
	for _, t := range a.Tagged {
		g.Go(func() error {
			to := dst.Tag(t.Tag)
			there, err := remote.Head(to, tagOpts...)
			switch {
			case err == nil && there.Digest == t.Desc.Digest:
				count(&c.Present)
				return nil
			case err == nil:
				if err := a.merge(t, to, tagOpts); err != nil {
					return fmt.Errorf("merge %s into %s: %w", t.Tag, to, err)
				}
				count(&c.Merged)
				return nil
			case !isNotFound(err):
				return fmt.Errorf("read %s: %w", to, err)
			}
			if err := a.write(t, to, tagOpts); err != nil {
				return fmt.Errorf("copy %s: %w", t.Tag, err)
			}
			count(&c.Written)
			return nil
		})
	}
	err = g.Wait()
	return c, err
}

// image is the attachment as an image whose blobs are read from the
// source (or mounted from it within one registry).
func (a *Attached) image(at Attachment) (v1.Image, error) {
	return at.manifest.Image()
}

// write writes the attachment's manifest, with its blobs, at to.
func (a *Attached) write(at Attachment, to name.Reference, dstOpts []remote.Option) error {
	img, err := a.image(at)
	if err != nil {
		return err
	}
	return remote.Write(to, img, dstOpts...)
}

// merge adds the layers of the attachment (cosign's signatures or
// attestations, one per layer) that the image at to lacks, with their
// annotations, and writes the result to to.
func (a *Attached) merge(at Attachment, to name.Tag, dstOpts []remote.Option) error {
	src, err := a.image(at)
	if err != nil {
		return err
	}
	there, err := remote.Get(to, dstOpts...)
	if err != nil {
		return err
	}
	if !there.MediaType.IsImage() || len(there.Manifest) > maxManifest {
		return fmt.Errorf("it holds a %s of %d bytes, not cosign's image", there.MediaType, len(there.Manifest))
	}
	dst, err := there.Image()
	if err != nil {
		return err
	}
	dm, err := dst.Manifest()
	if err != nil {
		return err
	}
	sm, err := src.Manifest()
	if err != nil {
		return err
	}
	have := map[v1.Hash]bool{}
	for _, l := range dm.Layers {
		have[l.Digest] = true
	}
	var adds []mutate.Addendum
	for _, l := range sm.Layers {
		if have[l.Digest] {
			continue
		}
		layer, err := src.LayerByDigest(l.Digest)
		if err != nil {
			return err
		}
		adds = append(adds, mutate.Addendum{Layer: layer, Annotations: l.Annotations, MediaType: l.MediaType})
	}
	if len(adds) == 0 {
		return nil // every layer of the source is there
	}
	if len(dm.Layers)+len(adds) > maxLayers {
		return fmt.Errorf("merged, it would have %d layers, more than the %d hoist writes", len(dm.Layers)+len(adds), maxLayers)
	}
	out, err := mutate.Append(dst, adds...)
	if err != nil {
		return err
	}
	if dm.MediaType != "" {
		out = mutate.MediaType(out, dm.MediaType)
	}
	return remote.Write(to, out, dstOpts...)
}

// Children are the digests of an index's manifests (none for an image).
func Children(a any) ([]v1.Hash, error) {
	idx, ok := a.(v1.ImageIndex)
	if !ok {
		return nil, nil
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []v1.Hash
	for _, d := range m.Manifests {
		if (d.MediaType.IsImage() || d.MediaType.IsIndex()) && !slices.Contains(out, d.Digest) {
			out = append(out, d.Digest)
		}
	}
	return out, nil
}
