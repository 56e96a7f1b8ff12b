package settings

import (
	"errors"
	"strings"
	"testing"
)

// A migrating step's variables: hoist's own pass, a typo is named with the
// setting it is near, a peer's harmless variable gets a notice, and one
// that would change the image is refused.
func TestUnrecognized(t *testing.T) {
	t.Parallel()
	notes, err := Unrecognized([]string{"PLUGIN_REPO=app", "PLUGIN_REPOO=app", "PLUGIN_QUIET=true", "PLUGIN_DAEMON_OFF=true",
		"DRONE_COMMIT_SHA=abc", "HOME=/root", "PLUGIN_CUSTOM_PLATFORM=linux/arm64", "PLUGIN_SOMETHING_ELSE_ENTIRELY=1", "PLUGIN_BAKE_OPTIONS="})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"setting PLUGIN_BAKE_OPTIONS has no effect: bake builds are not supported; build each target in its own step with PLUGIN_DOCKERFILE and PLUGIN_TARGET",
		"setting PLUGIN_QUIET has no effect: hoist's output is chosen with PLUGIN_PROGRESS",
		"setting PLUGIN_REPOO is not a hoist setting and is ignored; did you mean PLUGIN_REPO?",
		"setting PLUGIN_SOMETHING_ELSE_ENTIRELY is not a hoist setting and is ignored",
	}
	if strings.Join(notes, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(notes, "\n"), strings.Join(want, "\n"))
	}
	_, err = Unrecognized([]string{"PLUGIN_BAKE_FILE=docker-bake.hcl", "PLUGIN_SQUASH=true", "PLUGIN_QUIET=true"})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "PLUGIN_BAKE_FILE: bake builds are not supported") || !strings.Contains(err.Error(), "PLUGIN_SQUASH: squashing") {
		t.Errorf("error %v", err)
	}
	if _, err := Unrecognized([]string{"PLUGIN_SQUASH=false"}); err != nil {
		t.Errorf("a refused setting turned off: %v", err)
	}
}

// The peers' aliases that change what is built are honoured.
func TestPeerAliases(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PLUGIN_CUSTOM_PLATFORM": "linux/arm64", "PLUGIN_EXPAND_REPO": "true", "PLUGIN_SECRET": "id=a,src=f;id=b,env=B"}
	s, err := Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "/work")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.Platforms, ",") != "linux/arm64" || !s.ExpandRepo || len(s.Secret) != 2 || s.Secret[0] != "id=a,src=f" {
		t.Errorf("platforms %v, expand-repo %v, secrets %q", s.Platforms, s.ExpandRepo, s.Secret)
	}
}
