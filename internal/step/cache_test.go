package step

import (
	"testing"
)

// Harness's s3 layer cache from the step's settings: the request's
// entries hold the keys in place of the placeholders, with path style,
// and the keys (and an entry's own credential) are the step's secrets,
// masked from its first byte.
func TestCacheFromHarnessSettings(t *testing.T) {
	entry := "type=s3,bucket=b,region=r,endpoint_url=http://127.0.0.1:9000,access_key_id=harness_placeholder_aws_creds,secret_access_key=harness_placeholder_aws_creds"
	st, err := plan(t, map[string]string{"PLUGIN_REPO": "reg.example.com/app", "PLUGIN_CACHE_FROM": entry, "PLUGIN_CACHE_TO": "type=gha,url=http://127.0.0.1:1,token=gha-token-7731",
		"PLUGIN_PATH_STYLE": "true", "PLUGIN_HARNESS_SELF_HOSTED_S3_ACCESS_KEY": "AKIA7731", "PLUGIN_HARNESS_SELF_HOSTED_S3_SECRET_KEY": "s3-secret-7731"})
	if err != nil {
		t.Fatal(err)
	}
	from := st.Build.Request.CacheFrom
	if len(from) != 1 || from[0].Attrs["access_key_id"] != "AKIA7731" || from[0].Attrs["secret_access_key"] != "s3-secret-7731" || from[0].Attrs["use_path_style"] != "true" {
		t.Errorf("cache-from %+v", from)
	}
	for _, secret := range []string{"AKIA7731", "s3-secret-7731", "gha-token-7731"} {
		if !st.Secrets.Contains(secret) {
			t.Errorf("%s is not among the step's secrets", secret)
		}
	}
}
