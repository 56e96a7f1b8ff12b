package step

import (
	"errors"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/settings"
)

// A cosign key in PEM form, as far as planning reads it (its type; it is
// decrypted when the step runs).
const planKey = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"

// PLUGIN_COSIGN_PRIVATE_KEY alone signs what the step pushes, as
// plugins/docker does; a step that pushes nothing, or PLUGIN_SIGN=false,
// signs nothing and says so; a Kaniko build that pushes is refused as
// with PLUGIN_SIGN.
func TestKeyAloneSigns(t *testing.T) {
	t.Parallel()
	push := map[string]string{"PLUGIN_REPO": "registry.example/app", "PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": "image.tar"}
	for _, c := range []struct {
		name  string
		env   map[string]string
		signs bool
		note  string
	}{
		{"cosign key alone", map[string]string{"PLUGIN_COSIGN_PRIVATE_KEY": planKey, "PLUGIN_COSIGN_PASSWORD": "pw"}, true, ""},
		{"sign key alone", map[string]string{"PLUGIN_SIGN_KEY": planKey}, true, ""},
		{"PLUGIN_SIGN=false", map[string]string{"PLUGIN_COSIGN_PRIVATE_KEY": planKey, "PLUGIN_SIGN": "false"}, false, "PLUGIN_COSIGN_PRIVATE_KEY is set and PLUGIN_SIGN=false: nothing is signed"},
		{"build-only", map[string]string{"PLUGIN_COSIGN_PRIVATE_KEY": planKey, "PLUGIN_PUSH_ONLY": "false", "PLUGIN_NO_PUSH": "true"}, false, "PLUGIN_COSIGN_PRIVATE_KEY (without PLUGIN_SIGN): this step pushes nothing (PLUGIN_NO_PUSH), so nothing is signed"},
		{"no key", nil, false, ""},
	} {
		st, err := plan(t, merged(push, c.env))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if (st.Sign != nil) != c.signs {
			t.Errorf("%s: signs %v, want %v", c.name, st.Sign != nil, c.signs)
		}
		if c.signs && st.Sign != nil && st.Sign.Key != planKey {
			t.Errorf("%s: signs with %q", c.name, st.Sign.Key)
		}
		notes := strings.Join(st.Notes, "\n")
		if c.note != "" && !strings.Contains(notes, c.note) {
			t.Errorf("%s: the notes lack %q:\n%s", c.name, c.note, notes)
		}
		if c.note == "" && strings.Contains(notes, "signed") {
			t.Errorf("%s: a note on signing:\n%s", c.name, notes)
		}
	}
	_, err := plan(t, map[string]string{"PLUGIN_REPO": "registry.example/app", "PLUGIN_BUILD_TOOL": "kaniko", "PLUGIN_COSIGN_PRIVATE_KEY": planKey})
	if !errors.Is(err, settings.ErrInvalid) || !strings.Contains(err.Error(), "PLUGIN_COSIGN_PRIVATE_KEY (without PLUGIN_SIGN): this step builds with Kaniko") {
		t.Errorf("a Kaniko build with a key alone: %v", err)
	}
}
