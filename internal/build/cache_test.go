package build

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Harness's s3 entries: the placeholders take the keys, path style is
// added where the entry does not say, the keys are returned to be
// masked, and the entries given are not changed.
func TestResolveCacheS3(t *testing.T) {
	in := []CacheEntry{
		{Type: "s3", Attrs: map[string]string{"bucket": "b", "region": "r", "access_key_id": "harness_placeholder_aws_creds", "secret_access_key": "harness_placeholder_aws_creds"}},
		{Type: "s3", Attrs: map[string]string{"bucket": "b", "use_path_style": "false", "access_key_id": "own", "secret_access_key": "own-secret"}},
		{Type: "registry", Attrs: map[string]string{"ref": "reg.example.com/cache"}},
	}
	out, secrets, err := ResolveCache(in, "PLUGIN_CACHE_FROM", CacheOptions{S3AccessKey: "AKIA1", S3SecretKey: "s3cret", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []CacheEntry{
		{Type: "s3", Attrs: map[string]string{"bucket": "b", "region": "r", "access_key_id": "AKIA1", "secret_access_key": "s3cret", "use_path_style": "true"}},
		{Type: "s3", Attrs: map[string]string{"bucket": "b", "use_path_style": "false", "access_key_id": "own", "secret_access_key": "own-secret"}},
		{Type: "registry", Attrs: map[string]string{"ref": "reg.example.com/cache"}},
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"AKIA1", "s3cret", "own", "own-secret"}, secrets); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
	if in[0].Attrs["access_key_id"] != "harness_placeholder_aws_creds" {
		t.Errorf("the entry given was changed: %v", in[0].Attrs)
	}
}

// What BuildKit cannot honour is refused, every entry at once, naming
// the setting; no placeholder survives, and no value is in a message.
func TestResolveCacheRefused(t *testing.T) {
	for _, c := range []struct {
		entry CacheEntry
		want  string
	}{
		{CacheEntry{Type: "s3", Attrs: map[string]string{"bucket": "b", "access_key_id": "harness_placeholder_aws_creds"}}, "PLUGIN_HARNESS_SELF_HOSTED_S3_ACCESS_KEY, which is not set"},
		{CacheEntry{Type: "s3", Attrs: map[string]string{"bucket": "b", "secret_access_key": "harness_placeholder_aws_creds"}}, "PLUGIN_HARNESS_SELF_HOSTED_S3_SECRET_KEY, which is not set"},
		{CacheEntry{Type: "s3", Attrs: map[string]string{"region": "r"}}, "bucket is missing"},
		{CacheEntry{Type: "s3", Attrs: map[string]string{"bucket": "b", "tls_insecure_skip_verify": "true"}}, "tls_insecure_skip_verify is an attribute of Harness's own BuildKit"},
		{CacheEntry{Type: "gcs", Attrs: map[string]string{"bucket": "b", "gcp_json_key": "harness_placeholder_gcp_creds"}}, "type=gcs"},
		{CacheEntry{Type: "azure", Attrs: map[string]string{"account_name": "a", "account_key": "harness_placeholder_azure_creds"}}, "type=azblob,account_url="},
		{CacheEntry{Type: "gha", Attrs: map[string]string{"token": "harness_placeholder_x"}}, "token holds a Harness credential placeholder"},
		{CacheEntry{Type: "nfs", Attrs: map[string]string{}}, "type=nfs is not a BuildKit cache backend"},
	} {
		out, _, err := ResolveCache([]CacheEntry{c.entry}, "PLUGIN_CACHE_TO", CacheOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "PLUGIN_CACHE_TO: "+c.entry.Type+" cache entry: ") || len(out) != 0 {
			t.Errorf("%v: %v, %v", c.entry, out, err)
		}
	}
	_, _, err := ResolveCache([]CacheEntry{{Type: "gcs"}, {Type: "azure"}}, "PLUGIN_CACHE_FROM", CacheOptions{})
	if err == nil || strings.Count(err.Error(), "PLUGIN_CACHE_FROM") != 2 {
		t.Errorf("both entries are not named: %v", err)
	}
}

// Kaniko's layer cache is a registry repository: any other is refused.
func TestKanikoCache(t *testing.T) {
	if err := KanikoCache([]CacheEntry{{Type: "registry"}}, nil); err != nil {
		t.Error(err)
	}
	for _, typ := range []string{"s3", "local", "gha"} {
		if err := KanikoCache(nil, []CacheEntry{{Type: typ}}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "type="+typ+" cache needs BuildKit") {
			t.Errorf("%s: %v", typ, err)
		}
	}
}
