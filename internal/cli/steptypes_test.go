package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// The mission's Build and Push step types, each run in hoist's Kaniko
// plugin image (what a Kubernetes step runs) with exactly the environment
// the runner sends for it (docs/ci.md): no PLUGIN_REGISTRY_TYPE, the
// registry named by its cloud host. The cloud hosts resolve to the test's
// loopback registries (docker run --add-host), which serve HTTPS for those
// names; the only additions are the stand-ins' endpoints and CAs. Each
// kind is inferred from the host, logs in its cloud's way, and the image
// is read back from the registry with go-containerregistry.
func TestStepTypesInThePluginImage(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	image := pluginImage(t, "kaniko")
	const (
		ecrHost = "123456789012.dkr.ecr.eu-west-3.amazonaws.com"
		garHost = "europe-west1-docker.pkg.dev"
		gcrHost = "eu.gcr.io"
		acrHost = "hoistreg.azurecr.io"
	)
	named := func(reg *harness.Registry, name string) string {
		return name + reg.Host[strings.LastIndex(reg.Host, ":"):]
	}
	pem := func(files ...string) string {
		var b strings.Builder
		for _, p := range files {
			c, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(c)
		}
		return b.String()
	}

	docker := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})

	aws := harness.StartAWS(t, "eu-west-3")
	aws.Password = "ecr-token-" + strings.Repeat("y", 12)
	ecrReg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "AWS", Password: aws.Password, TLS: true, Names: []string{ecrHost}})
	aws.Registry = named(ecrReg, ecrHost)
	aws.AddRepository("app")
	aws.PublicPassword = "ecr-public-token-" + strings.Repeat("z", 12)
	publicReg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "AWS", Password: aws.PublicPassword, TLS: true, Names: []string{"public.ecr.aws"}})

	g := harness.StartGoogle(t)
	garReg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "oauth2accesstoken", Password: g.AccessToken, TLS: true, Names: []string{garHost, gcrHost}})
	key, _ := os.ReadFile(g.KeyFile)

	aad := harness.StartAzure(t)
	acrReg, _ := harness.StartACRNamed(t, aad, acrHost)

	cases := []struct {
		step, kind string
		reg        *harness.Registry
		ref        string // the reference on the loopback host, to read back
		env        map[string]string
		standIn    map[string]string
		hosts      []string
	}{
		{"BuildAndPushDockerRegistry", "docker", docker, docker.Host + "/team/app:1",
			map[string]string{"PLUGIN_REGISTRY": docker.Host, "PLUGIN_REPO": docker.Host + "/team/app", "PLUGIN_USERNAME": docker.User, "PLUGIN_PASSWORD": docker.Password}, nil, nil},
		{"BuildAndPushECR", "ecr", ecrReg, ecrReg.Host + "/app:1",
			map[string]string{"PLUGIN_REGISTRY": named(ecrReg, ecrHost), "PLUGIN_REPO": "app", "PLUGIN_REGION": "eu-west-3",
				"PLUGIN_ACCESS_KEY": aws.AccessKey, "PLUGIN_SECRET_KEY": aws.SecretKey},
			map[string]string{"PLUGIN_ECR_ENDPOINT": aws.URL, "PLUGIN_REGISTRY_CERTIFICATE": pem(ecrReg.CAFile)}, []string{ecrHost}},
		// Not a Harness step type: ECR Public, whose login is its own API's.
		{"ECR Public", "ecr", publicReg, publicReg.Host + "/hoist/app:1",
			map[string]string{"PLUGIN_REGISTRY": named(publicReg, "public.ecr.aws"), "PLUGIN_REPO": "hoist/app",
				"PLUGIN_ACCESS_KEY": aws.AccessKey, "PLUGIN_SECRET_KEY": aws.SecretKey},
			map[string]string{"PLUGIN_ECR_ENDPOINT": aws.URL, "PLUGIN_REGISTRY_CERTIFICATE": pem(publicReg.CAFile)}, []string{"public.ecr.aws"}},
		{"BuildAndPushGAR", "gar", garReg, garReg.Host + "/hoist-test/images/app:1",
			map[string]string{"PLUGIN_REGISTRY": named(garReg, garHost) + "/hoist-test", "PLUGIN_REPO": "images/app", "PLUGIN_JSON_KEY": b64(string(key))},
			map[string]string{"PLUGIN_REGISTRY_CERTIFICATE": pem(garReg.CAFile)}, []string{garHost}},
		{"BuildAndPushGCR", "gcr", garReg, garReg.Host + "/hoist-test/app:1",
			map[string]string{"PLUGIN_REGISTRY": named(garReg, gcrHost) + "/hoist-test", "PLUGIN_REPO": "app", "PLUGIN_JSON_KEY": string(key)},
			map[string]string{"PLUGIN_REGISTRY_CERTIFICATE": pem(garReg.CAFile)}, []string{gcrHost}},
		{"BuildAndPushACR", "acr", acrReg, "", // read back below, through the front
			map[string]string{"PLUGIN_REPO": acrReg.Host + "/team/app", "PLUGIN_REGISTRY": acrReg.Host,
				"CLIENT_ID": aad.ClientID, "TENANT_ID": aad.TenantID, "CLIENT_SECRET": aad.Secret},
			map[string]string{"AZURE_AUTHORITY_HOST": aad.URL, "PLUGIN_REGISTRY_CERTIFICATE": pem(aad.CAFile, acrReg.CAFile)}, []string{acrHost}},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.step, " ", "_"), func(t *testing.T) {
			ws := buildContext(t, "FROM "+f.Base+"\nRUN echo "+c.step+" > /step.txt\n", nil)
			addon := t.TempDir()
			// What a Kubernetes Build and Push step gets besides its
			// connector's settings (docs/ci.md).
			// Plus a setting a newer runner might send that hoist does not
			// know: named in a warning, never silently dropped.
			env := merged(map[string]string{"PLUGIN_TAGS": "1", "PLUGIN_SNAPSHOT_MODE": "redo", "PLUGIN_ARTIFACT_FILE": "/addon/tmp/.plugin/artifact",
				"KUBERNETES_SERVICE_HOST": "10.96.0.1", "PLUGIN_PROGRESS": "plain", "PLUGIN_HOIST_FUTURE_SETTING": "x"}, c.env, c.standIn)
			args := []string{"-v", addon + ":/addon"}
			for _, h := range c.hosts {
				args = append(args, "--add-host", h+":127.0.0.1")
			}
			out, err := plugin(t, f.Docker, image, ws, env, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "registry kind: "+c.kind+" (") {
				t.Errorf("the kind is not %s:\n%s", c.kind, out)
			}
			if !strings.Contains(out, "warning: setting PLUGIN_HOIST_FUTURE_SETTING is not a hoist setting and is ignored") {
				t.Errorf("the unknown setting is not named:\n%s", out)
			}
			for _, secret := range []string{aws.SecretKey, aws.Password, aws.PublicPassword, g.AccessToken, aad.Secret, docker.Password} {
				if strings.Contains(out, secret) {
					t.Errorf("a secret was printed:\n%s", out)
				}
			}
			art, err := os.ReadFile(filepath.Join(addon, "tmp", ".plugin", "artifact"))
			if err != nil || !strings.Contains(string(art), `"registryType": "`+artifactTypes[c.kind]+`"`) {
				t.Errorf("artifact file (%v):\n%s", err, art)
			}
			if c.ref != "" {
				digestOf(t, c.reg, c.ref)
			} else {
				// The front's certificate is for 127.0.0.1 too.
				loop := *c.reg
				loop.Host = "127.0.0.1" + c.reg.Host[strings.LastIndex(c.reg.Host, ":"):]
				digestOf(t, &loop, loop.Host+"/team/app:1")
			}
		})
	}
	if aws.CallCount("ecr-public:GetAuthorizationToken") != 1 || aws.CallCount("GetAuthorizationToken") != 1 {
		t.Errorf("ECR token calls %v, want one of each API", aws.Calls)
	}
	// Pulled with the registry's login, into the test's own docker config.
	cfg := t.TempDir()
	f.Docker.Run(t, "--config", cfg, "login", "-u", docker.User, "-p", docker.Password, docker.Host)
	f.Docker.Run(t, "--config", cfg, "pull", "-q", docker.Host+"/team/app:1")
	if got := strings.TrimSpace(f.Docker.Run(t, "run", "--rm", "--network", "host", docker.Host+"/team/app:1", "cat", "/step.txt")); got != "BuildAndPushDockerRegistry" {
		t.Errorf("the Docker step's image prints %q", got)
	}
}

// artifactTypes is how the artifact file names each kind.
var artifactTypes = map[string]string{"docker": "Docker", "ecr": "ECR", "gar": "GAR", "gcr": "GCR", "acr": "ACR"}
