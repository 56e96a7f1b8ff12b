package registry

import (
	"errors"
	"fmt"
	"regexp"
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
	add := func(t name.Tag, setting string) {
		if err := CheckSpec(t); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s (%s): %w", ErrReference, t.Name(), setting, err))
			return
		}
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
				add(t, "PLUGIN_REPO and PLUGIN_TAGS")
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
		add(t, "PLUGIN_DESTINATIONS")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no destination: repository name to publish image must be specified (PLUGIN_REPO / --repo, or PLUGIN_DESTINATIONS / --destination)", ErrReference)
	}
	return out, nil
}

// The distribution specification's grammar: a repository is path
// components of lower-case letters and digits joined by one '.', one or
// two '_' or any number of '-'; a tag starts with a letter, digit or '_'.
var (
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	tagSpec       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// CheckSpec rejects what go-containerregistry lets through but the
// distribution API does not: a repository path with "..", empty or
// malformed components (which would reach URLs outside /v2/NAME/), and
// tags starting with '.' or '-' (which fail at the manifest PUT, after
// every blob was sent). It is checked before any request.
func CheckSpec(t name.Tag) error {
	for _, c := range strings.Split(t.RepositoryStr(), "/") {
		if !pathComponent.MatchString(c) {
			return fmt.Errorf("repository path component %q: want lower-case letters and digits, joined by '.', '_', '__' or '-' (the distribution specification)", c)
		}
	}
	if len(t.RepositoryStr()) > 255 {
		return fmt.Errorf("repository %q is longer than 255 characters", t.RepositoryStr())
	}
	if !tagSpec.MatchString(t.TagStr()) {
		return fmt.Errorf("tag %q: a tag has at most 128 letters, digits, '_', '.' and '-', and does not start with '.' or '-'", t.TagStr())
	}
	return nil
}
