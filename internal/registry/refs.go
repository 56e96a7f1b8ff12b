package registry

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// ErrReference marks an invalid repository, tag or destination.
var ErrReference = errors.New("invalid destination")

// Destinations returns the references to push to: every tag of repo, then
// every extra destination, without duplicates. Every invalid one is
// reported.
func Destinations(repo string, tags, extra []string, insecure bool) ([]name.Tag, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	var out []name.Tag
	var errs []error
	seen := map[string]bool{}
	add := func(t name.Tag) {
		if !seen[t.Name()] {
			seen[t.Name()] = true
			out = append(out, t)
		}
	}
	if repo = strings.TrimSpace(repo); repo != "" {
		r, err := name.NewRepository(repo, opts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: PLUGIN_REPO %q: %w", ErrReference, repo, err))
		} else {
			for _, tag := range tags {
				t, err := name.NewTag(r.Name()+":"+tag, opts...)
				if err != nil || t.TagStr() != tag {
					errs = append(errs, fmt.Errorf("%w: tag %q (PLUGIN_TAGS): a tag has at most 128 letters, digits, '_', '.' and '-', and does not start with '.' or '-'", ErrReference, tag))
					continue
				}
				add(t)
			}
		}
	}
	for _, d := range extra {
		if strings.Contains(d, "@") {
			errs = append(errs, fmt.Errorf("%w: destination %q (PLUGIN_DESTINATIONS) is a digest reference; give registry/repository:tag", ErrReference, d))
			continue
		}
		t, err := name.NewTag(d, opts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: destination %q (PLUGIN_DESTINATIONS): %w", ErrReference, d, err))
			continue
		}
		add(t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no destination: repository name to publish image must be specified (PLUGIN_REPO / --repo, or PLUGIN_DESTINATIONS / --destination)", ErrReference)
	}
	return out, nil
}
