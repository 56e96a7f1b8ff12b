package step

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hoist-build/hoist/internal/settings"
)

// auto-tag with the user's tags: the automatic tags, then the user's
// (Woodpecker's merge); with latest alone (given or the default), the
// automatic tags only (drone-docker, drone-kaniko); on a ref that gets no
// automatic tag, the user's alone, or, without any, the step is skipped.
func TestAutoTagMergesTheUsersTags(t *testing.T) {
	t.Parallel()
	base := map[string]string{"PLUGIN_REPO": "registry.example/app", "PLUGIN_AUTO_TAG": "true", "DRONE_REPO_BRANCH": "main"}
	for _, c := range []struct {
		name       string
		env        map[string]string
		want, note []string
	}{
		{"tag event, user tags", map[string]string{"DRONE_COMMIT_REF": "refs/tags/v1.2.3", "PLUGIN_TAGS": "sha-1f2e,stable,1.2"},
			[]string{"1", "1.2", "1.2.3", "sha-1f2e", "stable"}, []string{"auto-tag: the automatic tags 1, 1.2, 1.2.3, then those of PLUGIN_TAGS"}},
		{"suffix applies to the automatic tags only", map[string]string{"DRONE_COMMIT_REF": "refs/tags/v1.2.3", "PLUGIN_TAG": "edge", "PLUGIN_AUTO_TAG_SUFFIX": "linux"},
			[]string{"1-linux", "1.2-linux", "1.2.3-linux", "edge"}, []string{"then those of PLUGIN_TAG: 1-linux, 1.2-linux, 1.2.3-linux, edge"}},
		{"default branch, user tags", map[string]string{"DRONE_COMMIT_REF": "refs/heads/main", "PLUGIN_TAGS": "sha-1f2e"},
			[]string{"latest", "sha-1f2e"}, []string{"auto-tag: the automatic tags latest, then those of PLUGIN_TAGS"}},
		{"feature branch, user tags", map[string]string{"DRONE_COMMIT_REF": "refs/heads/feature", "PLUGIN_TAGS": "sha-1f2e"},
			[]string{"sha-1f2e"}, []string{"refs/heads/feature is neither a tag nor the default branch", "no automatic tags; the tags of PLUGIN_TAGS: sha-1f2e"}},
		{"latest given", map[string]string{"DRONE_COMMIT_REF": "refs/tags/v1.2.3", "PLUGIN_TAGS": "latest"},
			[]string{"1", "1.2", "1.2.3"}, nil},
		{"no tags given", map[string]string{"DRONE_COMMIT_REF": "refs/tags/v1.2.3"},
			[]string{"1", "1.2", "1.2.3"}, nil},
	} {
		env := merged(base, c.env)
		st, err := plan(t, env)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var got []string
		for _, d := range st.Destinations {
			got = append(got, d.TagStr())
		}
		if d := cmp.Diff(c.want, got); d != "" {
			t.Errorf("%s: tags (-want +got):\n%s", c.name, d)
		}
		notes := strings.Join(st.Notes, "\n")
		for _, n := range c.note {
			if !strings.Contains(notes, n) {
				t.Errorf("%s: the notes lack %q:\n%s", c.name, n, notes)
			}
		}
		if c.note == nil && strings.Contains(notes, "auto-tag:") {
			t.Errorf("%s: a note on auto-tag, and the user gave no tag to merge:\n%s", c.name, notes)
		}
		// Refs (the pipeline runner's view) names the same references.
		s, err := settings.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "/work")
		if err != nil {
			t.Fatal(err)
		}
		refs, _, err := Refs(s)
		if err != nil || !slices.EqualFunc(refs, st.Destinations, func(a, b name.Tag) bool { return a.String() == b.String() }) {
			t.Errorf("%s: Refs %v (%v), the step %v", c.name, refs, err, st.Destinations)
		}
	}
	// A ref that gets no automatic tag, and no tag of the user's: skipped.
	for _, tags := range []string{"", "latest"} {
		env := merged(base, map[string]string{"DRONE_COMMIT_REF": "refs/heads/feature"})
		if tags != "" {
			env["PLUGIN_TAGS"] = tags
		}
		if _, err := plan(t, env); !errors.Is(err, ErrSkip) {
			t.Errorf("feature branch, tags %q: %v, want ErrSkip", tags, err)
		}
	}
}

func merged(all ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range all {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
