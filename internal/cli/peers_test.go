package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// A step copied from the Woodpecker or thegeeklab buildx plugin: its tags
// come from PLUGIN_TAGS_FILE (one a line, in place of PLUGIN_TAGS), its
// build secrets from PLUGIN_SECRETS (comma separated, a comma inside one
// escaped: a file, a variable, a bare id), its platform and labels from
// PLUGIN_PLATFORMS and PLUGIN_LABELS. Every tag of the file is pushed
// (read back with crane, one digest), PLUGIN_TAGS is not, and the image's
// RUN saw every secret.
func TestWoodpeckerStepTagsFileAndSecrets(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := buildContext(t, "FROM "+f.Base+"\n"+
		"RUN --mount=type=secret,id=filetok --mount=type=secret,id=envtok --mount=type=secret,id=BARE_TOKEN "+
		"test \"$(cat /run/secrets/filetok)\" = file-s3cret && test \"$(cat /run/secrets/envtok)\" = env-s3cret && test \"$(cat /run/secrets/BARE_TOKEN)\" = bare-s3cret && echo peer-ok > /ok.txt\n",
		map[string]string{"ci/tags.txt": "1.4.2\n\n  1.4  \nstable\n", "secret.txt": "file-s3cret"})
	repo := "peer/app"
	env := buildEnv(t, ws,
		"PLUGIN_REPO", reg.Host+"/"+repo,
		"PLUGIN_TAGS", "from-tags-setting",
		"PLUGIN_TAGS_FILE", "ci/tags.txt",
		"PLUGIN_SECRETS", `id=filetok\,src=`+filepath.Join(ws, "secret.txt")+`,id=envtok\,env=MY_TOKEN,id=BARE_TOKEN`,
		"MY_TOKEN", "env-s3cret", "BARE_TOKEN", "bare-s3cret",
		"PLUGIN_PLATFORMS", "linux/amd64",
		"PLUGIN_LABELS", "org.example.peer=woodpecker")
	r := hoistIn(t, ws, env)
	if r.code != 0 {
		t.Fatalf("hoist failed:\n%s", r)
	}
	got := tagsOf(t, reg, repo)
	slices.Sort(got)
	if want := []string{"1.4", "1.4.2", "stable"}; !slices.Equal(got, want) {
		t.Fatalf("tags %v, want %v (the file's, not PLUGIN_TAGS)", got, want)
	}
	digest := digestOf(t, reg, reg.Host+"/"+repo+":1.4.2")
	for _, tag := range []string{"1.4", "stable"} {
		if d := digestOf(t, reg, reg.Host+"/"+repo+":"+tag); d != digest {
			t.Errorf("%s holds %s, 1.4.2 holds %s", tag, d, digest)
		}
	}
	assertSummary(t, r, reg.Host+"/"+repo+":stable", digest)
	if out := f.Docker.RunImage(t, reg.Host+"/"+repo+":stable", "cat", "/ok.txt"); out != "peer-ok" {
		t.Errorf("image prints %q", out)
	}
	if cfg := reg.Crane(t, "config", reg.Host+"/"+repo+":stable"); !strings.Contains(cfg, `"org.example.peer":"woodpecker"`) {
		t.Errorf("the label of PLUGIN_LABELS is not in the config: %s", cfg)
	}
	assertNotContains(t, r, "file-s3cret", "env-s3cret", "bare-s3cret")
}

// A tags file is the repository's: a link out of the workspace is not
// followed, and nothing is built or pushed (exit 2, naming the setting).
// PLUGIN_SECRET and PLUGIN_SECRETS saying different things, and two
// peers' platform names with different values, are refused the same way.
func TestPeerSettingsRefusedBeforeBuild(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := buildContext(t, "FROM "+f.Base+"\n", nil)
	outside := filepath.Join(t.TempDir(), "tags")
	os.WriteFile(outside, []byte("leaked\n"), 0o644)
	if err := os.Symlink(outside, filepath.Join(ws, "tags.txt")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		kv    []string
		wants []string
	}{
		{"tags file linked out", []string{"PLUGIN_TAGS_FILE", "tags.txt"}, []string{"PLUGIN_TAGS_FILE", "tags.txt", "out of the workspace"}},
		{"two secret lists", []string{"PLUGIN_SECRET", "id=a", "PLUGIN_SECRETS", "id=b"}, []string{"PLUGIN_SECRET and PLUGIN_SECRETS"}},
		{"two platform names", []string{"PLUGIN_PLATFORM", "linux/amd64", "PLUGIN_PLATFORMS", "linux/arm64"}, []string{"PLUGIN_PLATFORM and PLUGIN_PLATFORMS", "keep one"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := "refused/" + strings.ReplaceAll(tc.name, " ", "-")
			r := hoistIn(t, ws, buildEnv(t, ws, append([]string{"PLUGIN_REPO", reg.Host + "/" + repo}, tc.kv...)...))
			if r.code != 2 {
				t.Fatalf("exit %d, want 2:\n%s", r.code, r)
			}
			assertContains(t, r, tc.wants...)
			if tags := tagsOf(t, reg, repo); len(tags) != 0 {
				t.Errorf("pushed %v", tags)
			}
		})
	}
}

// plugins/ecr's scan_on_push (PLUGIN_SCAN_ON_PUSH, Woodpecker's
// PLUGIN_ECR_SCAN_ON_PUSH): a repository hoist creates gets it, an
// existing one is set to the value given, and a step that does not set
// it leaves the repository's alone.
func TestECRScanOnPush(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	aws, reg := ecrSetup(t)
	push := func(tag string, kv ...string) {
		t.Helper()
		r := mustPush(t, ecrEnv(aws, reg, append([]string{"PLUGIN_SOURCE_TAR_PATH", f.SkopeoLayout, "PLUGIN_REPO", "team/scan", "PLUGIN_TAGS", tag,
			"PLUGIN_ACCESS_KEY", aws.AccessKey, "PLUGIN_SECRET_KEY", aws.SecretKey}, kv...)...))
		assertPushed(t, r, reg, reg.Host+"/team/scan:"+tag)
	}
	push("1", "PLUGIN_CREATE_REPOSITORY", "true", "PLUGIN_SCAN_ON_PUSH", "true")
	if !aws.HasRepository("team/scan") || aws.Policy("ScanOnPush team/scan") != "true" {
		t.Fatalf("repository %v, scan-on-push %q", aws.HasRepository("team/scan"), aws.Policy("ScanOnPush team/scan"))
	}
	push("2", "PLUGIN_ECR_SCAN_ON_PUSH", "false")
	if got := aws.Policy("ScanOnPush team/scan"); got != "false" {
		t.Errorf("scan-on-push %q after PLUGIN_ECR_SCAN_ON_PUSH=false", got)
	}
	calls := aws.CallCount("PutImageScanningConfiguration")
	push("3")
	if aws.CallCount("PutImageScanningConfiguration") != calls || aws.CallCount("CreateRepository") != 1 {
		t.Errorf("a step without the setting changed the repository: %v", aws.Calls)
	}
}

// Woodpecker's cache_images (PLUGIN_CACHE_IMAGES): the build exports its
// cache to each image (mode=max, an OCI image manifest) and reads it from
// there, so the cache is in the registry after the build.
func TestWoodpeckerCacheImages(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := buildContext(t, "FROM "+f.Base+"\nRUN echo cached > /c.txt\n", nil)
	r := hoistIn(t, ws, buildEnv(t, ws, "PLUGIN_REPO", reg.Host+"/cached/app", "PLUGIN_TAGS", "1", "PLUGIN_CACHE_IMAGES", reg.Host+"/cached/cache:buildcache"))
	if r.code != 0 {
		t.Fatalf("hoist failed:\n%s", r)
	}
	if got := tagsOf(t, reg, "cached/cache"); !slices.Equal(got, []string{"buildcache"}) {
		t.Errorf("cache tags %v", got)
	}
	if m := reg.Crane(t, "manifest", reg.Host+"/cached/cache:buildcache"); !strings.Contains(m, "application/vnd.oci.image.manifest.v1+json") {
		t.Errorf("the cache is not an OCI image manifest: %s", m)
	}
}

// The bare names the peers' Google and Azure variants read: ACCESS_TOKEN
// (plugins/docker, plugins/gar), TOKEN (the GCR and GAR wrappers' last name
// for the JSON key), SERVICE_PRINCIPAL_CLIENT_ID/_SECRET (the ACR
// wrappers' direct login) and PLUGIN_AZURE_AUTHORITY_HOST push as their
// PLUGIN_ names do; no secret is printed.
func TestGoogleAndAzureVariantNames(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	g, greg := googleSetup(t)
	keyJSON, _ := os.ReadFile(g.KeyFile)
	aad := harness.StartAzure(t)
	areg, refresh := harness.StartACR(t, aad)
	for _, c := range []struct {
		name string
		reg  *harness.Registry
		ref  string
		env  map[string]string
	}{
		{"ACCESS_TOKEN", greg, greg.Host + "/hoist-test/images/app:access-token",
			map[string]string{"PLUGIN_REGISTRY": greg.Host + "/hoist-test/", "PLUGIN_REGISTRY_TYPE": "gar", "PLUGIN_REPO": "images/app", "PLUGIN_TAGS": "access-token", "ACCESS_TOKEN": g.AccessToken}},
		{"TOKEN", greg, greg.Host + "/hoist-test/images/app:json-key",
			map[string]string{"PLUGIN_REGISTRY": greg.Host + "/hoist-test/", "PLUGIN_REGISTRY_TYPE": "gcr", "PLUGIN_REPO": "images/app", "PLUGIN_TAGS": "json-key", "TOKEN": string(keyJSON)}},
		{"SERVICE_PRINCIPAL_CLIENT_ID", areg, areg.Host + "/team/app:sp",
			map[string]string{"PLUGIN_REGISTRY_TYPE": "acr", "PLUGIN_REPO": areg.Host + "/team/app", "PLUGIN_TAGS": "sp", "SERVICE_PRINCIPAL_CLIENT_ID": areg.User, "SERVICE_PRINCIPAL_CLIENT_SECRET": areg.Password}},
		{"PLUGIN_AZURE_AUTHORITY_HOST", areg, areg.Host + "/team/app:authority",
			map[string]string{"PLUGIN_REGISTRY_TYPE": "acr", "PLUGIN_REPO": areg.Host + "/team/app", "PLUGIN_TAGS": "authority", "PLUGIN_AZURE_AUTHORITY_HOST": aad.URL,
				"PLUGIN_REGISTRY_CERTIFICATE": aad.CAFile, "PLUGIN_TENANT_ID": aad.TenantID, "PLUGIN_CLIENT_ID": aad.ClientID, "PLUGIN_CLIENT_SECRET": aad.Secret}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := mustPush(t, merged(map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout}, c.env))
			assertPushed(t, r, c.reg, c.ref)
			assertNotContains(t, r, g.AccessToken, refresh, aad.Secret, areg.Password)
		})
	}
}
