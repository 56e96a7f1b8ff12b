package cli

import (
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/settings"
)

// Each kind builds the reference its vendor's build-and-push step builds.
func TestKindReferences(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PLUGIN_REPO": "nginx"}, "nginx"},
		{map[string]string{"PLUGIN_REGISTRY_TYPE": "ecr", "PLUGIN_REGISTRY": "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "PLUGIN_REPO": "app"}, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app"},
		{map[string]string{"PLUGIN_REGISTRY_TYPE": "ECR", "PLUGIN_ACCOUNT": "123456789012", "PLUGIN_REGION": "us-gov-west-1", "PLUGIN_FIPS": "true", "PLUGIN_REPO": "app"}, "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app"},
		{map[string]string{"PLUGIN_REGISTRY_TYPE": "ecr", "PLUGIN_ACCOUNT": "123456789012", "PLUGIN_REGION": "cn-north-1", "PLUGIN_REPO": "app"}, "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app"},
		{map[string]string{"PLUGIN_REGISTRY_TYPE": "ecr", "PLUGIN_REGISTRY": "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "PLUGIN_REPO": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app"}, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app"},
		{map[string]string{"PLUGIN_REGISTRY_TYPE": "gar", "PLUGIN_REGISTRY": "/us-docker.pkg.dev/my-proj/", "PLUGIN_REPO": "repo/app"}, "us-docker.pkg.dev/my-proj/repo/app"},
		{map[string]string{"PLUGIN_REGISTRY_TYPE": "gar", "PLUGIN_LOCATION": "europe-west1", "PLUGIN_PROJECT_ID": "p", "PLUGIN_REPO": "repo/app"}, "europe-west1-docker.pkg.dev/p/repo/app"},
		{map[string]string{"PLUGIN_REGISTRY_TYPE": "gcr", "PLUGIN_PROJECT_ID": "p", "PLUGIN_REPO": "app"}, "gcr.io/p/app"},
		{map[string]string{"PLUGIN_REGISTRY_TYPE": "acr", "PLUGIN_REPO": "myreg.azurecr.io/team/app"}, "myreg.azurecr.io/team/app"},
		{map[string]string{"PLUGIN_REGISTRY_TYPE": "acr", "PLUGIN_REGISTRY": "myreg.azurecr.io", "PLUGIN_REPO": "team/app"}, "myreg.azurecr.io/team/app"},
	} {
		s, err := settings.Load(nil, func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		kind, err := kindName(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kindRepo(s, kind)
		if err != nil || got != c.want {
			t.Errorf("%v: %q, %v; want %q", c.env, got, err, c.want)
		}
	}
	s, _ := settings.Load(nil, func(k string) (string, bool) {
		v, ok := map[string]string{"PLUGIN_REGISTRY_TYPE": "acr", "PLUGIN_REPO": "team/app"}[k]
		return v, ok
	}, t.TempDir())
	if _, err := kindRepo(s, "acr"); err == nil || !strings.Contains(err.Error(), "ACR needs PLUGIN_REPO as REGISTRY.azurecr.io/REPOSITORY") {
		t.Errorf("ACR without a registry: %v", err)
	}
}
