package cli

import (
	"fmt"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// BuildKit records the build arguments a RUN uses in the image's history
// ("RUN |2 NPM_LOGIN=... PIP_INDEX_URL=..."), and the labels as given: the
// image's config, published with every push. So a build argument or a
// custom label whose value holds a secret hoist knows (the registry
// password, a build secret's value) or a URL with a login is refused
// before the build (exit 2), naming the argument or label and never its
// value: nothing is pushed, and the secret is in no output. The step's
// own proxy variables stay exempt (BuildKit keeps them out of the
// history; TestNothingSecretIsPublished reads the config back).
func TestKnownSecretInBuildArgOrLabelIsRefused(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	const pip, npm = "pip-login-s3cret-5512", "npm-build-secret-value-7731"
	ctxDir := buildContext(t, "FROM "+f.Base+"\nARG NPM_LOGIN\nARG NPM_TOKEN\nARG PIP_INDEX_URL\nRUN echo building\n", nil)
	for i, c := range []struct {
		name   string
		kv     []string
		want   []string
		secret []string
	}{
		{"the registry password", []string{"PLUGIN_BUILD_ARGS", "VERSION=1,NPM_LOGIN=" + a.Password},
			[]string{"PLUGIN_BUILD_ARGS: build argument NPM_LOGIN holds a secret of this step", "PLUGIN_SECRET=id=NPM_LOGIN,env=", "RUN --mount=type=secret"}, []string{a.Password}},
		{"a URL with a login", []string{"PLUGIN_BUILD_ARGS", "PIP_INDEX_URL=https://ci:" + pip + "@pypi.example/simple"},
			[]string{"PLUGIN_BUILD_ARGS: build argument PIP_INDEX_URL holds a URL with a login", "without its login"}, []string{pip}},
		{"a scheme-less login, semicolon separated", []string{"PLUGIN_MULTIPLE_BUILD_ARGS", "true", "PLUGIN_BUILD_ARGS_NEW", "A=x,y;PIP_INDEX_URL=ci:" + pip + "@pypi.example/simple"},
			[]string{"PLUGIN_BUILD_ARGS_NEW: build argument PIP_INDEX_URL holds a URL with a login"}, []string{pip}},
		{"a build secret's value, from the environment", []string{"PLUGIN_SECRETS_FROM_ENV", "npm=NPM_TOKEN", "PLUGIN_BUILD_ARGS_FROM_ENV", "NPM_TOKEN", "NPM_TOKEN", npm},
			[]string{"PLUGIN_BUILD_ARGS_FROM_ENV: build argument NPM_TOKEN holds a secret of this step"}, []string{npm}},
		{"a label with a URL login", []string{"PLUGIN_CUSTOM_LABELS", "team=core,mirror=https://ci:" + pip + "@mirror.example/"},
			[]string{"PLUGIN_CUSTOM_LABELS: label mirror holds a URL with a login", "without its login"}, []string{pip}},
		{"a label with the registry password", []string{"PLUGIN_CUSTOM_LABELS", "note=" + a.Password},
			[]string{"PLUGIN_CUSTOM_LABELS: label note holds a secret of this step"}, []string{a.Password}},
	} {
		repo := fmt.Sprintf("refused%d/app", i)
		env := buildEnv(t, ctxDir, append([]string{"PLUGIN_REPO", a.Host + "/" + repo, "PLUGIN_TAGS", "1", "PLUGIN_NO_CACHE", "true",
			"PLUGIN_USERNAME", a.User, "PLUGIN_PASSWORD", a.Password}, c.kv...)...)
		r := hoist(t, env)
		if r.code != ExitSettings {
			t.Errorf("%s: exit %d, want %d:\n%s", c.name, r.code, ExitSettings, r)
		}
		assertContains(t, r, c.want...)
		assertNotContains(t, r, c.secret...)
		if tags := tagsOf(t, a, repo); len(tags) != 0 {
			t.Errorf("%s: pushed %v", c.name, tags)
		}
	}
}
