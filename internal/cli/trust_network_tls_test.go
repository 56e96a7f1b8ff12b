package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// PLUGIN_INSECURE allows plain HTTP; it does not trust any certificate.
// A TLS registry whose certificate comes from a CA nobody gave hoist,
// with PLUGIN_INSECURE=true and no PLUGIN_SKIP_TLS_VERIFY: the push, a
// registry source, a build's base-image pull through BuildKit (an engine hoist starts and
// configures) and the vulnerability database's download each fail with a
// certificate error that tells a user migrating from docker's
// insecure-registries what to set; with PLUGIN_SKIP_TLS_VERIFY=true each
// works, and with the CA (PLUGIN_REGISTRY_CERTIFICATE) the database comes
// verified.
func TestInsecureIsPlainHTTPNotAnyCertificate(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true})
	// The base image and the database, put there by tools that trust the
	// test CA (crane with the CA, go-containerregistry in the harness).
	harness.Run(t, []string{"SSL_CERT_FILE=" + reg.CAFile}, harness.Tool(t, "crane"), "copy", "--insecure", f.Base, reg.Host+"/base/busybox:1")
	dbRef := harness.PushTrivyDB(t, reg, "mirror/trivy-db", k.DB)
	// The one advice (registry.TLSHint), in the same words everywhere.
	const hint = "give the registry's CA with PLUGIN_REGISTRY_CERTIFICATE (or, unsafely, PLUGIN_SKIP_TLS_VERIFY=true; PLUGIN_INSECURE allows plain HTTP only and does not skip this check)"
	certError := func(t *testing.T, what string, r result, code int) {
		t.Helper()
		if r.code != code {
			t.Errorf("%s with PLUGIN_INSECURE=true: exit %d, want %d:\n%s", what, r.code, code, r)
		}
		if !strings.Contains(r.stderr, "x509: certificate signed by unknown authority") && !strings.Contains(r.stderr, "tls: failed to verify certificate") {
			t.Errorf("%s: no certificate error:\n%s", what, r)
		}
		if strings.Count(r.stderr, hint) != 1 {
			t.Errorf("%s: the error does not say %q once:\n%s", what, hint, r)
		}
	}

	t.Run("push", func(t *testing.T) {
		env := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_DESTINATIONS": reg.Host + "/push/app:1", "PLUGIN_INSECURE": "true"}
		certError(t, "push", hoist(t, env), ExitPush)
		if tags := tagsOf(t, reg, "push/app"); len(tags) != 0 {
			t.Errorf("tagged despite the certificate error: %v", tags)
		}
		r := mustPush(t, with(env, "PLUGIN_SKIP_TLS_VERIFY", "true"))
		assertPushed(t, r, reg, reg.Host+"/push/app:1")
	})

	t.Run("registry source", func(t *testing.T) {
		dst := harness.StartRegistry(t, harness.RegistryOptions{})
		env := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": reg.Host + "/base/busybox:1", "PLUGIN_DESTINATIONS": dst.Host + "/copied/app:1", "PLUGIN_INSECURE": "true"}
		certError(t, "registry source", hoist(t, env), ExitSource)
		if tags := tagsOf(t, dst, "copied/app"); len(tags) != 0 {
			t.Errorf("pushed despite the certificate error: %v", tags)
		}
		r := mustPush(t, with(env, "PLUGIN_SKIP_TLS_VERIFY", "true"))
		assertPushed(t, r, dst, dst.Host+"/copied/app:1")
	})

	t.Run("base image through BuildKit", func(t *testing.T) {
		ctxDir := buildContext(t, "FROM "+reg.Host+"/base/busybox:1\nRUN echo built-over-tls > /t.txt\n", nil)
		env := func(kv ...string) map[string]string {
			// An engine of the test's own: hoist writes its buildkitd.toml.
			return with(map[string]string{"PLUGIN_CONTEXT": ctxDir, "PLUGIN_REPO": reg.Host + "/built/app", "PLUGIN_TAGS": "1",
				"PLUGIN_INSECURE": "true", "PLUGIN_ENGINE_DIR": filepath.Join(t.TempDir(), "engine"), "PLUGIN_BUILDKITD": harness.Buildkitd(t)}, kv...)
		}
		r := hoist(t, env())
		certError(t, "build", r, ExitBuild)
		if !strings.Contains(r.stderr, reg.Host+"/base/busybox:1") {
			t.Errorf("the error does not name the base image:\n%s", r)
		}
		r = mustPush(t, env("PLUGIN_SKIP_TLS_VERIFY", "true"))
		assertPushed(t, r, reg, reg.Host+"/built/app:1")
	})

	t.Run("vulnerability database", func(t *testing.T) {
		env := func(kv ...string) map[string]string {
			return with(scanEnv(t, k, "PLUGIN_SCAN_DB_REPOSITORY", dbRef, "PLUGIN_SCAN_RECORDS", t.TempDir(), "PLUGIN_SCAN_EXIT_CODE", "0"), kv...)
		}
		certError(t, "database download", hoist(t, env("PLUGIN_INSECURE", "true"), "scan", f.DockerSave), ExitScanner)
		for _, kv := range [][]string{{"PLUGIN_SKIP_TLS_VERIFY", "true"}, {"PLUGIN_REGISTRY_CERTIFICATE", reg.CAFile}} {
			r := hoist(t, env(kv...), "scan", f.DockerSave)
			if r.code != 0 || !strings.Contains(r.stderr, "fetching it from "+dbRef) {
				t.Errorf("%s=%s: exit %d:\n%s", kv[0], kv[1], r.code, r)
			}
		}
	})
}
