package step

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hoist-build/hoist/internal/settings"
)

func plan(t *testing.T, env map[string]string) (Step, error) {
	t.Helper()
	s, err := settings.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "/work")
	if err != nil {
		return Step{}, err
	}
	return FromSettings(s, Environ{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, WorkDir: "/work", TempDir: "/tmp"})
}

// The plugin's rules: the mode, the destinations, the build tool and the
// build-only outputs, from the env a CI runner sends.
func TestFromSettings(t *testing.T) {
	t.Parallel()
	type view struct {
		Mode, Tool, Store, Tar string
		Dests                  []string
		NoPush                 bool
	}
	look := func(st Step) view {
		v := view{Mode: "push-only", NoPush: st.Mode == ModeBuildOnly}
		for _, d := range st.Destinations {
			v.Dests = append(v.Dests, d.Name())
		}
		if st.Build != nil {
			v.Mode, v.Tool, v.Store, v.Tar = "build", st.Build.Tool, st.Build.Store, st.Build.TarPath
			if st.Build.InDaemon {
				v.Tool += " in the daemon"
			}
		}
		return v
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		want view
	}{
		{"build and push", map[string]string{"PLUGIN_REPO": "reg.example.com/app", "PLUGIN_TAGS": "1,2"},
			view{Mode: "build", Tool: "buildkit", Dests: []string{"reg.example.com/app:1", "reg.example.com/app:2"}}},
		{"build-only to a tarball, relative path", map[string]string{"PLUGIN_REPO": "app", "PLUGIN_NO_PUSH": "true", "PLUGIN_TAR_PATH": "out/image.tar"},
			view{Mode: "build", Tool: "buildkit", NoPush: true, Store: "/work/.hoist/images", Tar: "/work/out/image.tar", Dests: []string{"index.docker.io/library/app:latest"}}},
		{"build-only without a repository keeps nothing in the store", map[string]string{"PLUGIN_NO_PUSH": "true"},
			view{Mode: "build", Tool: "buildkit", NoPush: true}},
		{"kaniko in Kubernetes", map[string]string{"PLUGIN_REPO": "app", "KUBERNETES_SERVICE_HOST": "10.0.0.1"},
			view{Mode: "build", Tool: "kaniko", Dests: []string{"index.docker.io/library/app:latest"}}},
		{"buildx on Kubernetes when the flag says so", map[string]string{"PLUGIN_REPO": "app", "KUBERNETES_SERVICE_HOST": "10.0.0.1", "CI_USE_BUILDX_ON_K8": "true"},
			view{Mode: "build", Tool: "buildkit", Dests: []string{"index.docker.io/library/app:latest"}}},
		{"the daemon's builder", map[string]string{"PLUGIN_REPO": "app", "PLUGIN_BUILDER_DRIVER": "docker"},
			view{Mode: "build", Tool: "buildkit in the daemon", Dests: []string{"index.docker.io/library/app:latest"}}},
		{"push-only, ECR step", map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REGISTRY_TYPE": "ecr", "PLUGIN_REGISTRY": "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "PLUGIN_REPO": "app", "PLUGIN_TAGS": "7"},
			view{Mode: "push-only", Dests: []string{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:7"}}},
		{"push-only with extra destinations", map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_DESTINATIONS": "a.example.com/x:1,b.example.com/y:2"},
			view{Mode: "push-only", Dests: []string{"a.example.com/x:1", "b.example.com/y:2"}}},
	} {
		st, err := plan(t, c.env)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if d := cmp.Diff(c.want, look(st)); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, d)
		}
	}
}

func TestFromSettingsRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PLUGIN_NO_PUSH": "true", "PLUGIN_PUSH_ONLY": "true"}, "inputs no-push and push-only cannot be used together"},
		{map[string]string{"PLUGIN_AUTO_TAG": "true", "PLUGIN_EXPAND_TAG": "true"}, "The auto-tag flag conflicts with the expand-tag flag"},
		{map[string]string{"PLUGIN_REPO": "app", "PLUGIN_BUILDER_DRIVER": "docker", "PLUGIN_BUILD_TOOL": "kaniko"}, "PLUGIN_BUILDER_DRIVER=docker is a BuildKit builder"},
		{map[string]string{"PLUGIN_REPO": "app", "PLUGIN_BUILDER_DRIVER": "docker", "PLUGIN_NO_PUSH": "true", "PLUGIN_TAR_PATH": "x.tar", "PLUGIN_BUILDX_OUTPUT_FORMAT": "oci"}, "saves docker tarballs only"},
		{map[string]string{"PLUGIN_NO_PUSH": "true", "PLUGIN_BUILDX_LOAD": "true"}, "PLUGIN_BUILDX_LOAD needs PLUGIN_REPO"},
		{map[string]string{"PLUGIN_OUTPUT": "type=docker"}, "PLUGIN_OUTPUT=type=docker (a load into the daemon) needs PLUGIN_REPO"},
		{map[string]string{"PLUGIN_REPO": "app", "PLUGIN_BUILD_TOOL": "docker"}, "want buildkit or kaniko"},
		{map[string]string{"PLUGIN_REPO": "app", "PLUGIN_REGISTRY_TYPE": "quay"}, "want docker, ecr, gar, gcr or acr"},
		{map[string]string{"PLUGIN_REPO": "app", "PLUGIN_BUILD_ARGS": "=x", "PLUGIN_CUSTOM_LABELS": "nolabel"}, "malformed build argument"},
		{map[string]string{"PLUGIN_REPO": "app", "PLUGIN_JOBS": "0"}, "--jobs must be at least 1"},
	} {
		_, err := plan(t, c.env)
		if !errors.Is(err, settings.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v; want %q", c.env, err, c.want)
		}
	}
	// Auto-tag on a branch that is not the default one skips the step.
	_, err := plan(t, map[string]string{"PLUGIN_AUTO_TAG": "true", "DRONE_COMMIT_REF": "refs/heads/feature", "DRONE_REPO_BRANCH": "main"})
	if !errors.Is(err, ErrSkip) {
		t.Errorf("auto-tag on a feature branch: %v, want ErrSkip", err)
	}
}

// An output that pushes nothing beside a repository is said, not silent
// (a user migrating from buildx may expect the tags to be pushed).
func TestOutputThatPushesNothingIsNoted(t *testing.T) {
	t.Parallel()
	st, err := plan(t, map[string]string{"PLUGIN_REPO": "r.example/app", "PLUGIN_OUTPUT": "type=local,dest=out"})
	if err != nil {
		t.Fatal(err)
	}
	want := `PLUGIN_OUTPUT="type=local,dest=out" pushes nothing, as buildx's --output does; the repository set beside it gets no image`
	if !slices.Contains(st.Notes, want) {
		t.Errorf("notes %q lack %q", st.Notes, want)
	}
	st, err = plan(t, map[string]string{"PLUGIN_REPO": "r.example/app", "PLUGIN_OUTPUT": "type=registry"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Notes {
		if strings.Contains(n, "pushes nothing") {
			t.Errorf("a pushing output noted: %q", n)
		}
	}
}

// Build arguments, secrets and labels are read once, into the step: Run
// never looks at the environment.
func TestFromSettingsReadsTheEnvironmentOnce(t *testing.T) {
	t.Parallel()
	st, err := plan(t, map[string]string{"PLUGIN_REPO": "app", "PLUGIN_BUILD_ARGS": "A=1,FROM_ENV", "FROM_ENV": "e", "HTTP_PROXY": "http://proxy:3128",
		"PLUGIN_SECRETS_FROM_ENV": "tok=TOKEN", "TOKEN": "s3cret-value", "PLUGIN_PASSWORD": "hunter2-pw", "PLUGIN_USERNAME": "u"})
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, kv := range st.Build.Request.BuildArgs {
		args = append(args, kv.Key+"="+kv.Value)
	}
	if d := cmp.Diff([]string{"A=1", "FROM_ENV=e", "HTTP_PROXY=http://proxy:3128"}, args); d != "" {
		t.Errorf("build args (-want +got):\n%s", d)
	}
	if string(st.Build.Request.Secrets["tok"]) != "s3cret-value" {
		t.Errorf("secret tok = %q", st.Build.Request.Secrets["tok"])
	}
	if got := st.Secrets.String("pw hunter2-pw, secret s3cret-value"); got != "pw ****, secret ****" {
		t.Errorf("the mask leaves %q", got)
	}
	// The registries' transport goes through the step's proxy (the
	// pipeline runner's steps each have their own environment).
	if got := st.Transport.Proxy.HTTPProxy; got != "http://proxy:3128" {
		t.Errorf("the transport's proxy is %q, want the step's HTTP_PROXY", got)
	}
}

// An output path that is a directory is refused before anything runs,
// naming the setting.
func TestOutputPathsCheckedFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, k := range []string{"DRONE_OUTPUT", "PLUGIN_DIGEST_FILE", "PLUGIN_ARTIFACT_FILE", "PLUGIN_METADATA_FILE"} {
		_, err := plan(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REPO": "reg.example.com/app", k: dir})
		if !errors.Is(err, settings.ErrInvalid) || !strings.Contains(err.Error(), k+": write "+dir+": is a directory") {
			t.Errorf("%s: error %v", k, err)
		}
	}
}
