package build

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// HarnessPlaceholder starts the values Harness's Docker Layer Caching
// puts in its cache entries where a credential goes
// (harness_placeholder_aws_creds, ..._gcp_creds, ..._azure_creds); the
// plugin is to put the credential of PLUGIN_HARNESS_SELF_HOSTED_* there.
const HarnessPlaceholder = "harness_placeholder_"

// CacheOptions are the settings that complete the cache entries, as the
// buildx plugin applies them: Harness's credentials for its placeholders,
// the peers' PLUGIN_PATH_STYLE.
type CacheOptions struct {
	// S3AccessKey and S3SecretKey replace the placeholders of an s3
	// entry's access_key_id and secret_access_key.
	S3AccessKey, S3SecretKey string
	// PathStyle adds use_path_style=true to s3 entries that do not say.
	PathStyle bool
}

// cacheTypes are the cache backends the BuildKit hoist drives has, with
// what each entry is checked for.
var cacheTypes = map[string]bool{"registry": true, "local": true, "inline": true, "s3": true, "azblob": true, "gha": true}

// cacheSecretAttrs are the attributes that hold a credential.
var cacheSecretAttrs = []string{"access_key_id", "secret_access_key", "session_token", "token", "account_key", "client_secret", "oidc_token", "gcp_json_key"}

// ResolveCache checks cache entries (what is the entries' setting, for
// the messages) against the backends BuildKit has and completes them with
// o: Harness's placeholders are replaced by the credentials of
// PLUGIN_HARNESS_SELF_HOSTED_*, never passed on. An entry BuildKit cannot
// honour is an error that says what to use instead, as is a placeholder
// whose credential is not set. It returns the completed entries and the
// credentials they hold (secrets to mask).
func ResolveCache(entries []CacheEntry, what string, o CacheOptions) ([]CacheEntry, []string, error) {
	var (
		out     []CacheEntry
		secrets []string
		errs    []error
	)
	for _, e := range entries {
		c := CacheEntry{Type: e.Type, Attrs: map[string]string{}}
		for k, v := range e.Attrs {
			c.Attrs[k] = v
		}
		if err := resolveEntry(&c, o); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s cache entry: %w", what, c.Type, err))
			continue
		}
		for _, k := range cacheSecretAttrs {
			if v := c.Attrs[k]; v != "" {
				secrets = append(secrets, v)
			}
		}
		out = append(out, c)
	}
	return out, secrets, errors.Join(errs...)
}

func resolveEntry(c *CacheEntry, o CacheOptions) error {
	switch c.Type {
	case "gcs":
		return fmt.Errorf("type=gcs (Harness's Docker Layer Caching on Google Cloud Storage) is a backend of Harness's own BuildKit, which upstream BuildKit, the engine hoist drives, does not have: use a registry cache in Artifact Registry (type=registry,ref=LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/cache,mode=max) or Cloud Storage's S3 interoperability (type=s3,endpoint_url=https://storage.googleapis.com,bucket=...,region=auto with an HMAC key as access_key_id and secret_access_key)")
	case "azure":
		return fmt.Errorf("type=azure (Harness's Docker Layer Caching on Azure Blob Storage) is a backend of Harness's own BuildKit, which upstream BuildKit, the engine hoist drives, does not have: use upstream's type=azblob,account_url=https://ACCOUNT.blob.core.windows.net,name=NAME,secret_access_key=ACCOUNT_KEY, or a registry cache in ACR")
	}
	if !cacheTypes[c.Type] {
		return fmt.Errorf("type=%s is not a BuildKit cache backend: use registry, local, s3, azblob or gha", c.Type)
	}
	if c.Type == "s3" {
		for _, p := range []struct{ attr, value, env string }{
			{"access_key_id", o.S3AccessKey, "PLUGIN_HARNESS_SELF_HOSTED_S3_ACCESS_KEY"},
			{"secret_access_key", o.S3SecretKey, "PLUGIN_HARNESS_SELF_HOSTED_S3_SECRET_KEY"},
		} {
			if !strings.HasPrefix(c.Attrs[p.attr], HarnessPlaceholder) {
				continue
			}
			if p.value == "" {
				return fmt.Errorf("%s is Harness's placeholder for %s, which is not set; hoist passes no placeholder on: set %s (Harness sets it with Docker Layer Caching on self-hosted S3) or give the key in the entry", p.attr, p.env, p.env)
			}
			c.Attrs[p.attr] = p.value
		}
		if o.PathStyle {
			if _, set := c.Attrs["use_path_style"]; !set {
				c.Attrs["use_path_style"] = "true"
			}
		}
		if _, ok := c.Attrs["tls_insecure_skip_verify"]; ok {
			return fmt.Errorf("tls_insecure_skip_verify is an attribute of Harness's own BuildKit: upstream BuildKit's s3 cache always checks the endpoint's certificate; remove it and give an endpoint whose certificate the engine trusts")
		}
		if c.Attrs["bucket"] == "" {
			return fmt.Errorf("bucket is missing: type=s3,bucket=BUCKET,region=REGION[,endpoint_url=URL,use_path_style=true]")
		}
	}
	var placeholders []string
	for k, v := range c.Attrs {
		if strings.Contains(v, HarnessPlaceholder) {
			placeholders = append(placeholders, k)
		}
	}
	if len(placeholders) > 0 {
		sort.Strings(placeholders)
		return fmt.Errorf("%s holds a Harness credential placeholder (%s…) that hoist cannot fill in for type=%s; hoist passes no placeholder on: give the credential in the entry or remove the attribute", strings.Join(placeholders, ", "), HarnessPlaceholder, c.Type)
	}
	return nil
}
