package step

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/settings"
)

// A step that builds with Kaniko neither signs, attests nor scans: the
// Dockerfile's RUN steps run as root in its container. It is refused
// when planned, with the recipe (build only, then a step of its own);
// the same settings on a push-only step, or with BuildKit, are planned.
func TestKanikoBuildDoesNotSignOrScan(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"sign", map[string]string{"PLUGIN_BUILD_TOOL": "kaniko", "PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": "cosign.key"},
			[]string{"PLUGIN_SIGN: this step builds with Kaniko (PLUGIN_BUILD_TOOL says so)", "with PLUGIN_SIGN there"}},
		{"keyless, SBOM and provenance, in Kubernetes", map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "PLUGIN_SIGN": "true",
			"PLUGIN_SIGN_IDENTITY_TOKEN": "a.b.c", "PLUGIN_SBOM": "true", "PLUGIN_PROVENANCE": "true"},
			[]string{"PLUGIN_SIGN, PLUGIN_SBOM, PLUGIN_PROVENANCE: this step builds with Kaniko (running in Kubernetes (KUBERNETES_SERVICE_HOST is set)"}},
		{"scan", map[string]string{"PLUGIN_INFRASTRUCTURE": "kubernetes", "PLUGIN_SCAN": "true"},
			[]string{"PLUGIN_SCAN: this step builds with Kaniko (running in Kubernetes (PLUGIN_INFRASTRUCTURE=kubernetes)"}},
		{"sign on a build-only step", map[string]string{"PLUGIN_BUILD_TOOL": "kaniko", "PLUGIN_NO_PUSH": "true", "PLUGIN_SIGN": "true"},
			[]string{"PLUGIN_SIGN: this step builds with Kaniko"}},
		// A scan record is read, not made, and only of a pre-built
		// image: refused on every build, whatever the tool.
		{"require scan", map[string]string{"PLUGIN_BUILD_TOOL": "kaniko", "PLUGIN_REQUIRE_SCAN": "true"},
			[]string{"PLUGIN_REQUIRE_SCAN checks the record of a pre-built image"}},
	} {
		env := map[string]string{"PLUGIN_REPO": "reg.example.com/app"}
		for k, v := range c.env {
			env[k] = v
		}
		_, err := plan(t, env)
		if !errors.Is(err, settings.ErrInvalid) {
			t.Errorf("%s: %v, want an invalid-settings error (exit 2)", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v\nwant %q", c.name, err, w)
			}
		}
		if !strings.Contains(c.name, "require") {
			for _, w := range []string{"does not sign, attest or scan in the container that built", "PLUGIN_NO_PUSH=true with PLUGIN_TAR_PATH=image.tar",
				"PLUGIN_PUSH_ONLY=true, PLUGIN_SOURCE_TAR_PATH=image.tar", "PLUGIN_BUILD_TOOL=buildkit"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: the recipe lacks %q: %v", c.name, w, err)
				}
			}
		}
	}
	// The recipe's push-only step, in the Kaniko image (the tool is
	// named by the image) or in Kubernetes, and a BuildKit build.
	for _, env := range []map[string]string{
		{"PLUGIN_BUILD_TOOL": "kaniko", "PLUGIN_PUSH_ONLY": "true", "PLUGIN_REQUIRE_SCAN": "true", "PLUGIN_SOURCE_TAR_PATH": "image.tar"},
		{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "PLUGIN_PUSH_ONLY": "true", "PLUGIN_REQUIRE_SCAN": "true"},
		{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "CI_USE_BUILDX_ON_K8": "true", "PLUGIN_SIGN": "true", "PLUGIN_SIGN_IDENTITY_TOKEN": "a." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://issuer.example"}`)) + ".c"},
	} {
		env["PLUGIN_REPO"] = "reg.example.com/app"
		if _, err := plan(t, env); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}
