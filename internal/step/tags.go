package step

import (
	"errors"
	"fmt"
	"strings"

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
		if tagList, _, err = buildTags(s); err != nil {
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

// buildTags applies --auto-tag and --expand-tag, as the peers do for
// builds; note, when set, says how auto-tag met the tags the user gave.
//
// auto-tag alone, or with the peers' default tag (latest, given or not),
// gives the automatic tags only, as drone-docker and drone-kaniko do (and
// skips the step on a ref that gets none). With other tags it merges, as
// Woodpecker's buildx plugin does (drone-docker#475 asks for it; drone-
// kaniko refuses the pair, drone-docker drops the user's tags): the
// automatic tags, then the user's; on a ref that gets no automatic tag,
// the user's alone. Woodpecker adds latest to the automatic tags when no
// tags are given (its default); hoist does not (drone-docker reverted that
// merge for it, drone-docker#252).
func buildTags(s *settings.Settings) (out []string, note string, err error) {
	if s.AutoTag && s.ExpandTag {
		return nil, "", fmt.Errorf("%w: The auto-tag flag conflicts with the expand-tag flag (PLUGIN_AUTO_TAG and PLUGIN_EXPAND_TAG are both true)", settings.ErrInvalid)
	}
	out = s.Tags
	if s.AutoTag {
		var user []string
		if s.IsSet("tags") && !(len(s.Tags) == 1 && s.Tags[0] == "latest") {
			user = s.Tags
		}
		auto, err := tags.Auto(s.CommitRef, s.RepoBranch, s.AutoTagSuffix)
		switch {
		case errors.Is(err, tags.ErrSkip) && len(user) == 0:
			return nil, "", fmt.Errorf("%w: skipping automated docker build for %s: it is neither a tag nor the default branch (DRONE_REPO_BRANCH=%q)", ErrSkip, s.CommitRef, s.RepoBranch)
		case errors.Is(err, tags.ErrSkip):
			out = tags.Merge(nil, user)
			note = fmt.Sprintf("auto-tag: %s is neither a tag nor the default branch (DRONE_REPO_BRANCH=%q): no automatic tags; the tags of %s: %s", s.CommitRef, s.RepoBranch, s.Origin("tags"), strings.Join(out, ", "))
		case err != nil:
			return nil, "", fmt.Errorf("%w: %w", settings.ErrInvalid, err)
		default:
			auto = defaultTag(auto, s)
			out = tags.Merge(auto, user)
			if len(user) > 0 {
				note = fmt.Sprintf("auto-tag: the automatic tags %s, then those of %s: %s", strings.Join(auto, ", "), s.Origin("tags"), strings.Join(out, ", "))
			}
		}
	}
	if s.ExpandTag {
		out = tags.Expand(out)
	}
	return out, note, nil
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
