package settings

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// An env file, which anyone who can write the workspace can write, may
// not say where secrets go or come from: each such variable is refused
// with the file and its line, whatever else the file sets.
func TestEnvFileMayNotRedirectSecrets(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		line, name string
	}{
		{"PLUGIN_SIGN_FULCIO_URL=https://fulcio.attacker.example", "PLUGIN_SIGN_FULCIO_URL"},
		{"PLUGIN_SIGN_REKOR_URL=https://rekor.attacker.example", "PLUGIN_SIGN_REKOR_URL"},
		{"PLUGIN_SIGN_TLOG_UPLOAD=false", "PLUGIN_SIGN_TLOG_UPLOAD"},
		{"PLUGIN_SIGN_KEY=attacker.key", "PLUGIN_SIGN_KEY"},
		{"export PLUGIN_COSIGN_PRIVATE_KEY='attacker.key'", "PLUGIN_COSIGN_PRIVATE_KEY"},
		{"PLUGIN_REGISTRY=registry.attacker.example", "PLUGIN_REGISTRY"},
		{"DOCKER_REGISTRY=registry.attacker.example", "DOCKER_REGISTRY"},
		{"PLUGIN_REPO=registry.attacker.example/app", "PLUGIN_REPO"},
		{"PLUGIN_DESTINATIONS=registry.attacker.example/app:1", "PLUGIN_DESTINATIONS"},
		{"PLUGIN_BASE_IMAGE_REGISTRY=registry.attacker.example", "PLUGIN_BASE_IMAGE_REGISTRY"},
		{"PLUGIN_CONFIG=attacker-config.json", "PLUGIN_CONFIG"},
		{"PLUGIN_REGISTRY_CERTIFICATE=attacker-ca.pem", "PLUGIN_REGISTRY_CERTIFICATE"},
		{"PLUGIN_INSECURE=true", "PLUGIN_INSECURE"},
		{"PLUGIN_SKIP_TLS_VERIFY=true", "PLUGIN_SKIP_TLS_VERIFY"},
		{"PLUGIN_REGISTRY_ROUTES=registry.example.com=https://127.0.0.1:1", "PLUGIN_REGISTRY_ROUTES"},
		{"PLUGIN_GAR_REGISTRY=registry.attacker.example", "PLUGIN_GAR_REGISTRY"},
		{"PLUGIN_GOOGLE_STS_ENDPOINT=https://sts.attacker.example", "PLUGIN_GOOGLE_STS_ENDPOINT"},
		{"PLUGIN_STS_ENDPOINT=https://sts.attacker.example", "PLUGIN_STS_ENDPOINT"},
		{"AZURE_AUTHORITY_HOST=https://login.attacker.example", "AZURE_AUTHORITY_HOST"},
		{"PLUGIN_BUILDER_REMOTE_CONN=tcp://builder.attacker.example:1234", "PLUGIN_BUILDER_REMOTE_CONN"},
		{"BUILDKIT_HOST=tcp://builder.attacker.example:1234", "BUILDKIT_HOST"},
		{"DOCKER_HOST=tcp://docker.attacker.example:2375", "DOCKER_HOST"},
		{"PLUGIN_SCAN_TRIVY=./trivy", "PLUGIN_SCAN_TRIVY"},
		{"PLUGIN_SCAN_DB_REPOSITORY=registry.attacker.example/trivy-db", "PLUGIN_SCAN_DB_REPOSITORY"},
		{"TRIVY_CACHE_DIR=./planted-cache", "TRIVY_CACHE_DIR"},
		{"PLUGIN_KANIKO_EXECUTOR=./executor", "PLUGIN_KANIKO_EXECUTOR"},
		{"PLUGIN_BUILDKITD=./buildkitd", "PLUGIN_BUILDKITD"},
		{"PLUGIN_SECRETS_FROM_ENV=id=PLUGIN_PASSWORD", "PLUGIN_SECRETS_FROM_ENV"},
		{"PLUGIN_SECRETS_FROM_FILE=id=/root/.docker/config.json", "PLUGIN_SECRETS_FROM_FILE"},
		{"PLUGIN_BUILD_ARGS_FROM_ENV=PLUGIN_PASSWORD", "PLUGIN_BUILD_ARGS_FROM_ENV"},
	} {
		dir := t.TempDir()
		// The variable on line 3, between settings an env file may set.
		content := "# build values\nPLUGIN_TARGET=release\n" + c.line + "\nPLUGIN_BUILD_ARGS=VERSION=1.2.3\n"
		os.WriteFile(filepath.Join(dir, "ci.env"), []byte(content), 0o644)
		_, err := Load(nil, env(map[string]string{"PLUGIN_ENV_FILE": "ci.env", "PLUGIN_PASSWORD": "step-secret"}), dir)
		want := "env file " + filepath.Join(dir, "ci.env") + " line 3 sets " + c.name + ", which an env file may not set"
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "PLUGIN_ENV_FILE") {
			t.Errorf("%s: %v, want exit-2 error %q", c.line, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "step-secret") {
			t.Errorf("%s: the error shows a secret: %v", c.line, err)
		}
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
	s, err = Load(nil, env(map[string]string{"PLUGIN_BUILD_ARGS": "PLUGIN_PASSWORD", "PLUGIN_SIGN_FULCIO_URL": "https://fulcio.example"}), dir)
	if err != nil || s.SignFulcioURL != "https://fulcio.example" || s.BuildArgs[0] != "PLUGIN_PASSWORD" {
		t.Errorf("from the environment: %v %+v", err, s)
	}
}
