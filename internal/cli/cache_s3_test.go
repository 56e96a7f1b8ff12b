package cli

import (
	"path/filepath"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// Harness's Docker Layer Caching on self-hosted S3, as Harness sends it:
// type=s3 entries whose credentials are placeholders, the keys in
// PLUGIN_HARNESS_SELF_HOSTED_S3_*, PLUGIN_PATH_STYLE for an S3-compatible
// server. A build on one engine exports its layer cache to a real S3
// server (versitygw); a build of the same context on a fresh engine
// imports it: its RUN step, which writes random bytes, is CACHED, and
// both pushed tags hold one digest (read back with crane). The keys are
// never printed.
func TestLayerCacheOnS3(t *testing.T) {
	f := harness.Inputs(t)
	s3 := harness.StartS3(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN head -c 32 /dev/urandom | md5sum > /stamp\n", nil)
	entry := "type=s3,bucket=" + s3.Bucket + ",region=" + s3.Region + ",endpoint_url=" + s3.Endpoint +
		",access_key_id=harness_placeholder_aws_creds,secret_access_key=harness_placeholder_aws_creds"
	build := func(tag string) result {
		env := buildEnv(t, ctxDir, "PLUGIN_REPO", reg.Host+"/cached/app", "PLUGIN_TAGS", tag,
			"PLUGIN_ENGINE_DIR", filepath.Join(t.TempDir(), "engine"), "PLUGIN_BUILDKITD", harness.Buildkitd(t), "PLUGIN_NETWORK", "none",
			"PLUGIN_CACHE_FROM", entry, "PLUGIN_CACHE_TO", entry+",mode=max", "PLUGIN_PATH_STYLE", "true",
			"PLUGIN_HARNESS_SELF_HOSTED_S3_ACCESS_KEY", s3.AccessKey, "PLUGIN_HARNESS_SELF_HOSTED_S3_SECRET_KEY", s3.SecretKey)
		r := hoist(t, env)
		if r.code != 0 {
			t.Fatalf("build %s:\n%s", tag, r)
		}
		assertNotContains(t, r, s3.SecretKey, s3.AccessKey, "harness_placeholder")
		return r
	}
	build("1")
	if objs := s3.Objects(t); len(objs) == 0 {
		t.Fatalf("nothing in the bucket after the cache export")
	}
	r := build("2")
	assertContains(t, r, "CACHED")
	one, two := digestOf(t, reg, reg.Host+"/cached/app:1"), digestOf(t, reg, reg.Host+"/cached/app:2")
	if one != two {
		t.Errorf("the second build did not take the RUN layer from the S3 cache: %s and %s", one, two)
	}
}

// What Harness's Docker Layer Caching sends that hoist cannot honour is
// refused before anything is built, with what to use instead, and no
// placeholder reaches BuildKit: a placeholder whose key is not set, the
// GCS and Azure backends of Harness's own BuildKit, a TLS check skipped.
func TestLayerCacheRefused(t *testing.T) {
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo never > /never\n", nil)
	const gcpKey = `{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nhoist-test-gcp-key\n"}`
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"placeholder without its key", []string{"PLUGIN_CACHE_FROM", "type=s3,bucket=b,region=r,access_key_id=harness_placeholder_aws_creds,secret_access_key=harness_placeholder_aws_creds"},
			"access_key_id is Harness's placeholder for PLUGIN_HARNESS_SELF_HOSTED_S3_ACCESS_KEY, which is not set"},
		{"gcs", []string{"PLUGIN_CACHE_TO", "type=gcs,bucket=b,gcp_json_key=harness_placeholder_gcp_creds,mode=max", "PLUGIN_HARNESS_SELF_HOSTED_GCP_JSON_KEY", gcpKey},
			"type=gcs (Harness's Docker Layer Caching on Google Cloud Storage) is a backend of Harness's own BuildKit"},
		{"azure", []string{"PLUGIN_CACHE_FROM", "type=azure,account_name=a,container_name=c,account_key=harness_placeholder_azure_creds", "PLUGIN_HARNESS_SELF_HOSTED_AZURE_ACCOUNT_KEY", "azure-account-key-5521"},
			"type=azure (Harness's Docker Layer Caching on Azure Blob Storage) is a backend of Harness's own BuildKit"},
		{"placeholder in another attribute", []string{"PLUGIN_CACHE_FROM", "type=registry,ref=" + reg.Host + "/cache:1,token=harness_placeholder_aws_creds"},
			"token holds a Harness credential placeholder"},
		{"tls insecure", []string{"PLUGIN_CACHE_FROM", "type=registry,ref=" + reg.Host + "/cache:1", "PLUGIN_CACHE_TLS_INSECURE", "true"},
			"BuildKit's layer caches cannot skip certificate checks"},
		{"kaniko", []string{"PLUGIN_CACHE_FROM", "type=s3,bucket=b,region=r", "PLUGIN_BUILD_TOOL", "kaniko"},
			"a type=s3 cache needs BuildKit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := hoist(t, buildEnv(t, ctxDir, append([]string{"PLUGIN_REPO", reg.Host + "/refused/app"}, c.env...)...))
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\n%s", r.code, r)
			}
			assertContains(t, r, c.want)
			assertNotContains(t, r, "hoist-test-gcp-key", "azure-account-key-5521", "RUN echo never")
		})
	}
	if tags := tagsOf(t, reg, "refused/app"); len(tags) != 0 {
		t.Errorf("pushed %v", tags)
	}
}
