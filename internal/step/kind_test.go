package step

import (
	"errors"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/kinds"
	"github.com/hoist-build/hoist/internal/settings"
)

// The registry kind of the env each runner step type sends: inferred from
// the registry's host when PLUGIN_REGISTRY_TYPE is unset, with the
// destination and the ECR region that follow from it.
func TestKindFromTheStep(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		env      map[string]string
		kind     string
		why      string
		dest     string
		ecrRegio string
	}{
		{"BuildAndPushECR", map[string]string{"PLUGIN_REGISTRY": "123456789012.dkr.ecr.eu-west-3.amazonaws.com", "PLUGIN_REPO": "app", "PLUGIN_ACCESS_KEY": "AKIA1", "PLUGIN_SECRET_KEY": "s"},
			"ecr", "PLUGIN_REGISTRY names 123456789012.dkr.ecr.eu-west-3.amazonaws.com", "123456789012.dkr.ecr.eu-west-3.amazonaws.com/app:latest", "eu-west-3"},
		{"ECR, China partition, FIPS and a port", map[string]string{"PLUGIN_REGISTRY": "https://123456789012.dkr.ecr-fips.cn-north-1.amazonaws.com.cn:8443/", "PLUGIN_REPO": "team/app"},
			"ecr", "", "123456789012.dkr.ecr-fips.cn-north-1.amazonaws.com.cn:8443/team/app:latest", "cn-north-1"},
		{"ECR, the repository already under the registry", map[string]string{"PLUGIN_REGISTRY": "123456789012.dkr.ecr.us-west-2.amazonaws.com", "PLUGIN_REPO": "123456789012.dkr.ecr.us-west-2.amazonaws.com/app"},
			"ecr", "", "123456789012.dkr.ecr.us-west-2.amazonaws.com/app:latest", "us-west-2"},
		{"ECR, PLUGIN_REGION wins", map[string]string{"PLUGIN_REGISTRY": "123456789012.dkr.ecr.us-west-2.amazonaws.com", "PLUGIN_REPO": "app", "PLUGIN_REGION": "eu-central-1"},
			"ecr", "", "123456789012.dkr.ecr.us-west-2.amazonaws.com/app:latest", "eu-central-1"},
		{"ECR Public", map[string]string{"PLUGIN_REGISTRY": "public.ecr.aws", "PLUGIN_REPO": "alias/app"}, "ecr", "", "public.ecr.aws/alias/app:latest", ""},
		{"BuildAndPushGAR", map[string]string{"PLUGIN_REGISTRY": "europe-west1-docker.pkg.dev/my-project", "PLUGIN_REPO": "images/app", "PLUGIN_JSON_KEY": "{}"},
			"gar", "PLUGIN_REGISTRY names europe-west1-docker.pkg.dev", "europe-west1-docker.pkg.dev/my-project/images/app:latest", ""},
		{"BuildAndPushGCR", map[string]string{"PLUGIN_REGISTRY": "eu.gcr.io/my-project", "PLUGIN_REPO": "app", "PLUGIN_JSON_KEY": "{}"},
			"gcr", "", "eu.gcr.io/my-project/app:latest", ""},
		{"gcr.io", map[string]string{"PLUGIN_REGISTRY": "gcr.io/p", "PLUGIN_REPO": "app"}, "gcr", "", "gcr.io/p/app:latest", ""},
		{"BuildAndPushACR", map[string]string{"PLUGIN_REGISTRY": "myreg.azurecr.io", "PLUGIN_REPO": "myreg.azurecr.io/team/app", "CLIENT_ID": "c", "TENANT_ID": "t", "CLIENT_SECRET": "s"},
			"acr", "PLUGIN_REGISTRY names myreg.azurecr.io", "myreg.azurecr.io/team/app:latest", ""},
		{"ACR without PLUGIN_REGISTRY: the repository's host", map[string]string{"PLUGIN_REPO": "myreg.azurecr.cn/app"},
			"acr", "PLUGIN_REPO names myreg.azurecr.cn", "myreg.azurecr.cn/app:latest", ""},
		{"ACR, a short repository", map[string]string{"PLUGIN_REGISTRY": "myreg.azurecr.io", "PLUGIN_REPO": "app"}, "acr", "", "myreg.azurecr.io/app:latest", ""},
		{"BuildAndPushDockerRegistry", map[string]string{"PLUGIN_REGISTRY": "https://index.docker.io/v1/", "PLUGIN_REPO": "team/app", "PLUGIN_USERNAME": "u", "PLUGIN_PASSWORD": "p"},
			"docker", "no registry is named (Docker Hub)", "index.docker.io/team/app:latest", ""},
		{"a private registry", map[string]string{"PLUGIN_REGISTRY": "registry.example.com", "PLUGIN_REPO": "registry.example.com/app"},
			"docker", "PLUGIN_REGISTRY names registry.example.com, which is no cloud registry's host", "registry.example.com/app:latest", ""},
		{"docker: the repository as it is", map[string]string{"PLUGIN_REGISTRY": "registry.example.com", "PLUGIN_REPO": "app"}, "docker", "", "index.docker.io/library/app:latest", ""},
		{"docker with PLUGIN_EXPAND_REPO", map[string]string{"PLUGIN_REGISTRY": "registry.example.com/team/", "PLUGIN_REPO": "app", "PLUGIN_EXPAND_REPO": "true"},
			"docker", "", "registry.example.com/team/app:latest", ""},
		{"PLUGIN_EXPAND_REPO, already prefixed", map[string]string{"PLUGIN_REGISTRY": "registry.example.com", "PLUGIN_REPO": "registry.example.com/app", "PLUGIN_EXPAND_REPO": "true"},
			"docker", "", "registry.example.com/app:latest", ""},
		{"PLUGIN_EXPAND_REPO, Docker Hub", map[string]string{"PLUGIN_REGISTRY": "https://index.docker.io/v1/", "PLUGIN_REPO": "team/app", "PLUGIN_EXPAND_REPO": "true"},
			"docker", "", "index.docker.io/team/app:latest", ""},
		{"the type says so, a VPC endpoint", map[string]string{"PLUGIN_REGISTRY_TYPE": "ECR", "PLUGIN_REGISTRY": "ecr.internal.example.com", "PLUGIN_REPO": "app", "PLUGIN_ACCESS_KEY": "AKIA1"},
			"ecr", "PLUGIN_REGISTRY_TYPE says so", "ecr.internal.example.com/app:latest", ""},
		{"a run mixing kinds: ECR keys serve PLUGIN_ECR_REGISTRY", map[string]string{"PLUGIN_REGISTRY": "registry.example.com", "PLUGIN_REPO": "registry.example.com/app",
			"PLUGIN_ACCESS_KEY": "AKIA1", "PLUGIN_ECR_REGISTRY": "ecr.internal.example.com", "PLUGIN_JSON_KEY": "{}", "PLUGIN_DESTINATIONS": "europe-docker.pkg.dev/p/app:1"},
			"docker", "", "registry.example.com/app:latest", ""},
		{"AWS keys in the runner's environment are not a step's", map[string]string{"PLUGIN_REPO": "registry.example.com/app", "AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s", "GOOGLE_CREDENTIALS": "{}"},
			"docker", "", "registry.example.com/app:latest", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.env["PLUGIN_PUSH_ONLY"] = "true"
			st, err := plan(t, c.env)
			if err != nil {
				t.Fatal(err)
			}
			if st.Login.Kinds.Type != c.kind {
				t.Errorf("kind %q, want %q", st.Login.Kinds.Type, c.kind)
			}
			note := "registry kind: " + c.kind + " (" + c.why
			if !strings.Contains(strings.Join(st.Notes, "\n"), note) {
				t.Errorf("notes %q lack %q", st.Notes, note)
			}
			if len(st.Destinations) < 1 || st.Destinations[0].Name() != c.dest {
				t.Errorf("destinations %v, want %s", st.Destinations, c.dest)
			}
			if c.kind == "ecr" {
				kc, err := st.Login.Kind.Keychain(&st.Login.Kinds, true, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := kc.(*kinds.ECR).Region(); got != c.ecrRegio {
					t.Errorf("ECR region %q, want %q", got, c.ecrRegio)
				}
			}
		})
	}
}

// Credentials of one kind with a host of another: refused, never pushed to
// the other kind's registry.
func TestKindCredentialsMismatch(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PLUGIN_REGISTRY": "ecr.internal.example.com", "PLUGIN_REPO": "app", "PLUGIN_ACCESS_KEY": "AKIA1", "PLUGIN_SECRET_KEY": "s"},
			"PLUGIN_ACCESS_KEY (ECR credentials) are set, but the registry ecr.internal.example.com is no ECR host, so the registry kind would be docker; set PLUGIN_REGISTRY_TYPE=ecr"},
		{map[string]string{"PLUGIN_REPO": "app", "PLUGIN_ASSUME_ROLE": "arn:aws:iam::1:role/r"},
			"PLUGIN_ASSUME_ROLE (ECR credentials) are set, but Docker Hub (no PLUGIN_REGISTRY) is no ECR host"},
		{map[string]string{"PLUGIN_REGISTRY": "123456789012.dkr.ecr.eu-west-3.amazonaws.com", "PLUGIN_REPO": "app", "PLUGIN_JSON_KEY": "{}"},
			"PLUGIN_JSON_KEY (GAR credentials) are set, but the registry 123456789012.dkr.ecr.eu-west-3.amazonaws.com is no GAR host, so the registry kind would be ecr"},
		{map[string]string{"PLUGIN_REGISTRY": "registry.example.com", "PLUGIN_REPO": "registry.example.com/app", "CLIENT_ID": "c", "TENANT_ID": "t"},
			"CLIENT_ID and TENANT_ID (ACR credentials) are set, but the registry registry.example.com is no ACR host"},
	} {
		c.env["PLUGIN_PUSH_ONLY"] = "true"
		_, err := plan(t, c.env)
		if !errors.Is(err, settings.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.env, err, c.want)
		}
	}
}
