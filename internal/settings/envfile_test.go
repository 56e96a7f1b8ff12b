package settings

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// envFileNames are the variables an env file may set: the tags, build
// arguments with values, labels, the target stage, the platforms,
// no-cache and pull. A setting joins them only when the threat model
// allows it (docs/usage.md, "Settings from an env file").
var envFileNames = []string{
	"PLUGIN_TARGET", "PLUGIN_BUILD_ARGS", "PLUGIN_BUILD_ARGS_NEW", "PLUGIN_MULTIPLE_BUILD_ARGS", "PLUGIN_CUSTOM_LABELS", "PLUGIN_LABEL", "PLUGIN_LABELS",
	"PLUGIN_PLATFORM", "PLUGIN_CUSTOM_PLATFORM", "PLUGIN_PLATFORMS", "PLUGIN_NO_CACHE", "PLUGIN_PULL_IMAGE",
	"PLUGIN_TAG", "PLUGIN_TAGS", "PLUGIN_EXPAND_TAG", "PLUGIN_AUTO_TAG", "PLUGIN_DEFAULT_TAGS", "PLUGIN_AUTO_TAG_SUFFIX", "PLUGIN_DEFAULT_SUFFIX", "PLUGIN_DEFAULT_TAG",
}

// The allowlist is the settings tagged envfile, and nothing else.
func TestEnvFileAllowlist(t *testing.T) {
	t.Parallel()
	var got []string
	for _, f := range Fields() {
		if f.EnvFile != "" {
			got = append(got, f.Env...)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(envFileNames))
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("the settings an env file may set (-want +got):\n%s", d)
	}
}

// An env file, which anyone who can write the workspace can write, sets
// only what the allowlist names. Every other variable, a setting or not,
// is refused with the file, its line and the variable, whatever else the
// file sets, and never with its value.
func TestEnvFileSetsOnlyAllowedSettings(t *testing.T) {
	t.Parallel()
	for _, line := range []string{
		// Where secrets go or come from, and how their connection is checked.
		"PLUGIN_SIGN_FULCIO_URL=https://fulcio.attacker.example",
		"PLUGIN_SIGN_REKOR_URL=https://rekor.attacker.example",
		"PLUGIN_SIGN_TLOG_UPLOAD=false",
		"PLUGIN_SIGN_KEY=attacker.key",
		"export PLUGIN_COSIGN_PRIVATE_KEY='attacker.key'",
		"PLUGIN_REGISTRY=registry.attacker.example",
		"DOCKER_REGISTRY=registry.attacker.example",
		"PLUGIN_REPO=registry.attacker.example/app",
		"PLUGIN_DESTINATIONS=registry.attacker.example/app:1",
		"PLUGIN_EXPAND_REPO=true",
		"PLUGIN_BASE_IMAGE_REGISTRY=registry.attacker.example",
		"PLUGIN_CONFIG=attacker-config.json",
		"PLUGIN_REGISTRY_CERTIFICATE=attacker-ca.pem",
		"PLUGIN_INSECURE=true",
		"PLUGIN_SKIP_TLS_VERIFY=true",
		"PLUGIN_REGISTRY_ROUTES=registry.example.com=https://127.0.0.1:1",
		"PLUGIN_GAR_REGISTRY=registry.attacker.example",
		"PLUGIN_GOOGLE_STS_ENDPOINT=https://sts.attacker.example",
		"PLUGIN_STS_ENDPOINT=https://sts.attacker.example",
		"AZURE_AUTHORITY_HOST=https://login.attacker.example",
		"PLUGIN_BUILDER_REMOTE_CONN=tcp://builder.attacker.example:1234",
		"BUILDKIT_HOST=tcp://builder.attacker.example:1234",
		"DOCKER_HOST=tcp://docker.attacker.example:2375",
		"PLUGIN_CACHE_TO=type=registry,ref=registry.example/victim/prod:release",
		"PLUGIN_CACHE_FROM=type=local,src=/root",
		"PLUGIN_ENABLE_CACHE=true",
		"PLUGIN_CACHE_REPO=registry.example/victim/prod",
		// Credentials, even the step's own kind.
		"PLUGIN_USERNAME=attacker",
		"PLUGIN_PASSWORD=attacker-password-1234",
		"PLUGIN_SECRETS_FROM_ENV=id=PLUGIN_PASSWORD",
		"PLUGIN_SECRETS_FROM_FILE=id=/root/.docker/config.json",
		"PLUGIN_SECRET=id=k,src=/root/.ssh/id_rsa",
		"PLUGIN_BUILD_ARGS_FROM_ENV=PLUGIN_PASSWORD",
		// Programs hoist runs.
		"PLUGIN_SCAN_TRIVY=./trivy",
		"PLUGIN_KANIKO_EXECUTOR=./executor",
		"PLUGIN_BUILDKITD=./buildkitd",
		// What is read and written.
		"PLUGIN_CONTEXT=/root",
		"PLUGIN_DOCKERFILE=/var/run/secrets/kubernetes.io/serviceaccount/token",
		"PLUGIN_CONTEXT_SUB_PATH=../..",
		"PLUGIN_PUSH_ONLY=true",
		"PLUGIN_SOURCE_TAR_PATH=/tmp/other.tar",
		"PLUGIN_SOURCE_IMAGE=registry.example/other:1",
		"PLUGIN_DIGEST_FILE=/root/.bashrc",
		"PLUGIN_TAR_PATH=/root/.ssh/authorized_keys",
		"PLUGIN_IMAGE_STORE=/tmp/store",
		"PLUGIN_ENV_FILE=other.env",
		// What network RUN gets.
		"PLUGIN_NETWORK=host",
		"PLUGIN_ADD_HOST=registry.example:10.0.0.1",
		// What a verdict rests on.
		"PLUGIN_SCAN=false",
		"PLUGIN_SCAN_SEVERITY=CRITICAL",
		"PLUGIN_SCAN_IGNOREFILE=/dev/null",
		"PLUGIN_SCAN_SKIP_DIRS=/lib",
		"PLUGIN_SCAN_EXIT_CODE=0",
		"PLUGIN_SCAN_DB_REPOSITORY=registry.attacker.example/trivy-db",
		"TRIVY_CACHE_DIR=./planted-cache",
		"PLUGIN_REQUIRE_SCAN=false",
		// Not settings: the CI's run identity and commit, proxies, and
		// a misspelt setting.
		"HARNESS_EXECUTION_ID=another-run",
		"DRONE_BUILD_NUMBER=41",
		"DRONE_COMMIT_SHA=0000000000000000000000000000000000000000",
		"HTTPS_PROXY=http://proxy.attacker.example:3128",
		"PLUGIN_TAGZ=1",
	} {
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		dir := t.TempDir()
		// The variable on line 3, between settings an env file may set.
		content := "# build values\nPLUGIN_TARGET=release\n" + line + "\nPLUGIN_BUILD_ARGS=VERSION=1.2.3\n"
		os.WriteFile(filepath.Join(dir, "ci.env"), []byte(content), 0o644)
		_, err := Load(nil, env(map[string]string{"PLUGIN_ENV_FILE": "ci.env", "PLUGIN_PASSWORD": "step-secret"}), dir)
		want := "PLUGIN_ENV_FILE: env file " + filepath.Join(dir, "ci.env") + " line 3 sets " + name + ", which an env file may not set"
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "step's own") {
			t.Errorf("%s: %v, want exit-2 error %q", line, err, want)
		}
		_, value, _ := strings.Cut(line, "=")
		if err != nil && (strings.Contains(err.Error(), "step-secret") || len(value) >= 6 && strings.Contains(err.Error(), value)) {
			t.Errorf("%s: the error shows a value: %v", line, err)
		}
	}
}

// Every setting of the allowlist is taken from an env file, with the
// variables already set winning, under any of the setting's names.
func TestEnvFileSetsTheAllowedSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ci.env"), []byte(`# written by an earlier step
PLUGIN_TAGS=1.2.3,latest
PLUGIN_EXPAND_TAG=true
PLUGIN_AUTO_TAG=true
PLUGIN_AUTO_TAG_SUFFIX=linux
PLUGIN_MULTIPLE_BUILD_ARGS=true
PLUGIN_BUILD_ARGS_NEW=LIST=a,b;VERSION=1.2.3
PLUGIN_CUSTOM_LABELS=team=core
export PLUGIN_TARGET=release
PLUGIN_PLATFORM=linux/amd64,linux/arm64
PLUGIN_NO_CACHE='true'
PLUGIN_PULL_IMAGE="false"
`), 0o644)
	s, err := Load(nil, env(map[string]string{"PLUGIN_ENV_FILE": "ci.env", "PLUGIN_TARGET": "set", "PLUGIN_CUSTOM_PLATFORM": "linux/s390x"}), dir)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{s.Tags, s.ExpandTag, s.AutoTag, s.AutoTagSuffix, s.MultiBuildArgs, s.BuildArgsNew, s.Labels, s.Target, s.Platforms, s.NoCache, s.Pull}
	want := []any{[]string{"1.2.3", "latest"}, true, true, "linux", true, []string{"LIST=a,b", "VERSION=1.2.3"}, []string{"team=core"}, "set", []string{"linux/s390x"}, true, false}
	if d := cmp.Diff(want, got); d != "" {
		t.Error(d)
	}
}

// Build arguments from an env file carry their values: a bare name would
// hand the step's own environment (its secrets) to the Dockerfile.
func TestEnvFileBuildArgsNeedValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bare.env"), []byte("PLUGIN_BUILD_ARGS=VERSION=1,PLUGIN_PASSWORD\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bare-new.env"), []byte("PLUGIN_MULTIPLE_BUILD_ARGS=true\n\nPLUGIN_BUILD_ARGS_NEW=A=x,y;TOKEN\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "ok.env"), []byte("PLUGIN_BUILD_ARGS=VERSION=1,EMPTY=\nPLUGIN_TARGET=release\n"), 0o644)
	for file, want := range map[string]string{
		"bare.env":     "line 1: PLUGIN_BUILD_ARGS names \"PLUGIN_PASSWORD\" without a value",
		"bare-new.env": "line 3: PLUGIN_BUILD_ARGS_NEW names \"TOKEN\" without a value",
	} {
		_, err := Load(nil, env(map[string]string{"PLUGIN_ENV_FILE": file}), dir)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", file, err, want)
		}
	}
	s, err := Load(nil, env(map[string]string{"PLUGIN_ENV_FILE": "ok.env"}), dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]any{[]string{"VERSION=1", "EMPTY="}, "release"}, []any{s.BuildArgs, s.Target}); d != "" {
		t.Error(d)
	}
	// The same settings from the step's own environment are its to give.
	s, err = Load(nil, env(map[string]string{"PLUGIN_BUILD_ARGS": "PLUGIN_PASSWORD", "PLUGIN_SIGN_FULCIO_URL": "https://fulcio.example", "PLUGIN_CONTEXT": "/src"}), dir)
	if err != nil || s.SignFulcioURL != "https://fulcio.example" || s.BuildArgs[0] != "PLUGIN_PASSWORD" || s.Context != "/src" {
		t.Errorf("from the environment: %v %+v", err, s)
	}
}
