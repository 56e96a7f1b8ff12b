package step

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/publish"
	"github.com/hoist-build/hoist/internal/registry"
)

// skipExisting asks every destination's registry whether it holds the
// destination's tag already (Push.SkipExisting: plugins/ecr's
// PLUGIN_SKIP_PUSH_IF_TAG_EXISTS, for every registry kind), before
// anything is built or pushed. A repository that holds one of its tags
// is not pushed to, none of its tags (as plugins/ecr skips the push of
// every tag when one exists); the others are. When every destination is
// skipped the step ends there, successfully (ErrSkip): nothing is built,
// written or pushed, as plugins/ecr exits before it builds. A registry
// that cannot tell (unreachable, refusing, failing) fails the step: a
// guess either way would push or drop a tag unasked.
func (r *runner) skipExisting(ctx context.Context) error {
	var check []name.Tag
	for _, d := range r.st.Destinations {
		if r.loginFailed[d.RegistryStr()] == nil {
			check = append(check, d)
		}
	}
	found, err := publish.Existing(ctx, check, publish.Options{Access: registry.Access{Transport: r.tr, Keychain: r.kc}, Retries: r.st.Push.Retries})
	if err != nil {
		return fmt.Errorf("PLUGIN_SKIP_PUSH_IF_TAG_EXISTS: hoist could not tell whether the tag exists, so nothing was built or pushed: %w", err)
	}
	r.existing = found
	var skipped []string
	tagsOf := map[string][]string{}
	for _, d := range r.st.Destinations {
		repo := d.Context().String()
		if _, ok := found[repo]; ok {
			if tagsOf[repo] == nil {
				skipped = append(skipped, repo)
			}
			tagsOf[repo] = append(tagsOf[repo], d.TagStr())
		}
	}
	for _, repo := range skipped {
		r.pr.Printf("image tag exists, skipping push: %s is there already (PLUGIN_SKIP_PUSH_IF_TAG_EXISTS); %s gets none of %s", found[repo], repo, strings.Join(tagsOf[repo], ", "))
	}
	if len(r.unskipped()) == 0 && len(r.st.Destinations) > 0 {
		return fmt.Errorf("%w: image tag exists, skipping push: every destination repository holds one of its tags already (%s): nothing was built or pushed (PLUGIN_SKIP_PUSH_IF_TAG_EXISTS)", ErrSkip, strings.Join(existingTags(found, skipped), ", "))
	}
	return nil
}

// unskipped are the destinations skipExisting did not skip.
func (r *runner) unskipped() []name.Tag {
	if len(r.existing) == 0 {
		return r.st.Destinations
	}
	var out []name.Tag
	for _, d := range r.st.Destinations {
		if _, ok := r.existing[d.Context().String()]; !ok {
			out = append(out, d)
		}
	}
	return out
}

// existingTags are the tags found, in the order of repos.
func existingTags(found map[string]name.Tag, repos []string) []string {
	out := make([]string, len(repos))
	for i, repo := range repos {
		out[i] = found[repo].String()
	}
	return out
}
