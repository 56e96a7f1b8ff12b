package build

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hoist-build/hoist/internal/envlist"
)

// The executor gets what it needs to reach registries from the step's
// environment, and nothing of the step's secrets: the Dockerfile's RUN
// steps run beside it and read its environment.
func TestExecutorEnv(t *testing.T) {
	t.Parallel()
	environ := []string{"PATH=/kaniko", "HOME=/root", "SSL_CERT_FILE=/kaniko/ssl/certs/ca-certificates.crt", "TMPDIR=/kaniko/tmp",
		"HTTPS_PROXY=http://proxy:3128", "no_proxy=localhost", "container=podman",
		"PLUGIN_PASSWORD=registry-secret", "PLUGIN_SIGN_PASSWORD=sign-secret", "PLUGIN_SIGN_KEY=-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----",
		"PLUGIN_CONFIG={\"auths\":{}}", "DOCKER_CONFIG=/kaniko/.docker/", "AWS_SECRET_ACCESS_KEY=aws-secret", "GOOGLE_APPLICATION_CREDENTIALS=/key.json",
		"SIGSTORE_ID_TOKEN=eyJ.x.y", "DRONE_NETRC_PASSWORD=git-secret", "PATHOLOGY=x", "MALFORMED"}
	want := []string{"PATH=/kaniko", "HOME=/root", "SSL_CERT_FILE=/kaniko/ssl/certs/ca-certificates.crt", "TMPDIR=/kaniko/tmp",
		"HTTPS_PROXY=http://proxy:3128", "no_proxy=localhost", "container=podman"}
	if d := cmp.Diff(want, envlist.Filter(environ, executorEnv)); d != "" {
		t.Errorf("the executor's environment (-want +got):\n%s", d)
	}
}

// The registries Kaniko pulls base images from, build arguments expanded
// as BuildKit and Kaniko expand them: these get credentials, no other.
func TestBaseHosts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	os.WriteFile(df, []byte(`# syntax=docker/dockerfile:1
ARG REGISTRY=default.example.com
ARG BASE=${REGISTRY}/team/base:1
ARG UNUSED
FROM $BASE AS build
RUN make
FROM --platform=linux/amd64 tools.example.com:5000/tools:2 AS tools
FROM build AS test
FROM scratch
COPY --from=build /out /out
FROM ${MIRROR:-mirror.example.com}/library/busybox
FROM busybox
`), 0o644)
	for _, c := range []struct {
		args []KV
		want []string
	}{
		{nil, []string{"default.example.com", "tools.example.com:5000", "mirror.example.com", "index.docker.io"}},
		{[]KV{{"REGISTRY", "private.example.com"}}, []string{"private.example.com", "tools.example.com:5000", "mirror.example.com", "index.docker.io"}},
		// MIRROR is no ARG before the first FROM: a build argument does
		// not reach it.
		{[]KV{{"BASE", "other.example.com/x"}, {"MIRROR", "m.example.com"}}, []string{"other.example.com", "tools.example.com:5000", "mirror.example.com", "index.docker.io"}},
	} {
		got, err := BaseHosts(df, c.args)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(c.want, got); d != "" {
			t.Errorf("%v (-want +got):\n%s", c.args, d)
		}
	}
}
