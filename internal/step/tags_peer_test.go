package step

import (
	"slices"
	"testing"
)

// Woodpecker's default_tag (PLUGIN_DEFAULT_TAG) takes the place of latest
// among the automatic tags of the default branch; a tag's versions and a
// suffix are as without it.
func TestAutoTagDefault(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"DRONE_COMMIT_REF": "refs/heads/main"}, []string{"reg.example.com/app:edge"}},
		{map[string]string{"DRONE_COMMIT_REF": "refs/tags/v1.2.3"}, []string{"reg.example.com/app:1", "reg.example.com/app:1.2", "reg.example.com/app:1.2.3"}},
		{map[string]string{"DRONE_COMMIT_REF": "refs/heads/main", "PLUGIN_AUTO_TAG_SUFFIX": "alpine"}, []string{"reg.example.com/app:alpine"}},
	} {
		env := map[string]string{"PLUGIN_REPO": "reg.example.com/app", "PLUGIN_AUTO_TAG": "true", "DRONE_REPO_BRANCH": "main", "PLUGIN_DEFAULT_TAG": "edge"}
		for k, v := range c.env {
			env[k] = v
		}
		st, err := plan(t, env)
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		var got []string
		for _, d := range st.Destinations {
			got = append(got, d.Name())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: %v, want %v", c.env, got, c.want)
		}
	}
}
