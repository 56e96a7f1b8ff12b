package step

import (
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/tags"
)

// Refs are the references a step with these settings names (repo x
// tags, and PLUGIN_DESTINATIONS), and whether it pushes to them (a
// build-only step records its image under them), without planning the
// rest of the step: the pipeline runner plans its local registries and
// checks its steps' hand-overs with them.
func Refs(s *settings.Settings) (refs []name.Tag, pushes bool, err error) {
	if err := checkModes(s); err != nil {
		return nil, false, err
	}
	pushes = s.PushOnly || !s.NoPush
	tagList := s.Tags
	if !s.PushOnly {
		if tagList, err = buildTags(s); err != nil {
			if errors.Is(err, ErrSkip) {
				return nil, false, nil
			}
			return nil, false, err
		}
	}
	kind, kindName, _, err := kindOf(s)
	if err != nil {
		return nil, false, err
	}
	kcfg := kindsConfig(s, kindName, func(p string) string { return p })
	repo, err := kinds.Repository(kind, &kcfg)
	if err != nil {
		return nil, false, err
	}
	if repo == "" && len(s.Destinations) == 0 {
		return nil, pushes, nil
	}
	refs, err = registry.Destinations(repo, tagList, s.Destinations, s.Insecure)
	return refs, pushes, err
}

// checkModes rejects contradicting mode settings.
func checkModes(s *settings.Settings) error {
	if s.NoPush && s.PushOnly {
		return fmt.Errorf("%w: inputs no-push and push-only cannot be used together. please define only one (%s=true and %s=true; a stage-level PLUGIN_NO_PUSH reaches every step of the stage: set PLUGIN_NO_PUSH=false on the push step)", settings.ErrInvalid, s.Origin("no-push"), s.Origin("push-only"))
	}
	return nil
}

// repoName is a repository's full name (index.docker.io/library/app).
func repoName(repo string, insecure bool) string {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(repo, opts...)
	if err != nil {
		return repo
	}
	return r.Name()
}

// buildTags applies --auto-tag and --expand-tag, as the peers do for builds.
func buildTags(s *settings.Settings) ([]string, error) {
	if s.AutoTag && s.ExpandTag {
		return nil, fmt.Errorf("%w: The auto-tag flag conflicts with the expand-tag flag (PLUGIN_AUTO_TAG and PLUGIN_EXPAND_TAG are both true)", settings.ErrInvalid)
	}
	out := s.Tags
	if s.AutoTag {
		if s.IsSet("tags") && !(len(s.Tags) == 1 && s.Tags[0] == "latest") {
			return nil, fmt.Errorf("%w: The auto-tag flag does not work with user provided tags %v (%s); remove them or PLUGIN_AUTO_TAG", settings.ErrInvalid, s.Tags, s.Origin("tags"))
		}
		t, err := tags.Auto(s.CommitRef, s.RepoBranch, s.AutoTagSuffix)
		if errors.Is(err, tags.ErrSkip) {
			return nil, fmt.Errorf("%w: skipping automated docker build for %s: it is neither a tag nor the default branch (DRONE_REPO_BRANCH=%q)", ErrSkip, s.CommitRef, s.RepoBranch)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", settings.ErrInvalid, err)
		}
		out = defaultTag(t, s)
	}
	if s.ExpandTag {
		out = tags.Expand(out)
	}
	return out, nil
}

// defaultTag puts PLUGIN_DEFAULT_TAG (Woodpecker's default_tag) in place
// of latest among the automatic tags; a suffix stands alone there anyway.
func defaultTag(t []string, s *settings.Settings) []string {
	if s.AutoTagSuffix != "" || s.DefaultTag == "" {
		return t
	}
	for i := range t {
		if t[i] == "latest" {
			t[i] = s.DefaultTag
		}
	}
	return t
}
