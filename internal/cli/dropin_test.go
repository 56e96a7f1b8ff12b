package cli

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// The workspace is the context (PLUGIN_CONTEXT defaults to "."): the image
// store .hoist/images, this step's tarball and another step's half-written
// files all sit in it, and the .dockerignore does not name them. Builds of
// COPY . /app in a row give one digest, and the image holds none of
// hoist's files.
func TestHoistFilesStayOutOfTheContext(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := buildContext(t, "FROM "+f.Base+"\nCOPY . /app\nCMD [\"busybox\", \"find\", \"/app\"]\n", map[string]string{
		"app.txt": "the app", ".dockerignore": "*.log\n",
		// Another step of the stage, writing its tarball here right now.
		".hoist-tmp-other.tar-12345":      "half a tarball",
		"sub/.hoist-build-999/oci-layout": "{}",
	})
	env := func(kv ...string) map[string]string {
		e := buildEnv(t, ".", "PLUGIN_REPO", reg.Host+"/ctx/app")
		delete(e, "PLUGIN_CONTEXT") // the peers' default, "."
		for i := 0; i+1 < len(kv); i += 2 {
			e[kv[i]] = kv[i+1]
		}
		return e
	}
	// Builds in a row with the store in the context: one digest. (A
	// tarball in the context changes its directory's time when it is
	// renamed into place; its own file is left out, below.)
	var digests []string
	for i, tag := range []string{"1", "2"} {
		if r := hoistIn(t, ws, env("PLUGIN_NO_PUSH", "true")); r.code != 0 {
			t.Fatalf("build-only %d:\n%s", i, r)
		}
		if _, err := os.Stat(filepath.Join(ws, ".hoist", "images", "index.json")); err != nil {
			t.Fatalf("the store is not in the context, the test proves nothing: %v", err)
		}
		if r := hoistIn(t, ws, env("PLUGIN_TAGS", tag)); r.code != 0 {
			t.Fatalf("build and push %d:\n%s", i, r)
		}
		digests = append(digests, digestOf(t, reg, reg.Host+"/ctx/app:"+tag))
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of one context: %s, then %s", digests[0], digests[1])
	}
	// The step's own tarball, in the context, written by the build-only
	// step before and by this build: not in the image.
	for i, e := range []map[string]string{env("PLUGIN_NO_PUSH", "true", "PLUGIN_TAR_PATH", "out/image.tar"), env("PLUGIN_TAGS", "3", "PLUGIN_TAR_PATH", "out/image.tar")} {
		if r := hoistIn(t, ws, e); r.code != 0 {
			t.Fatalf("with a tarball %d:\n%s", i, r)
		}
	}
	if _, err := os.Stat(filepath.Join(ws, "out", "image.tar")); err != nil {
		t.Fatalf("no tarball in the context, the test proves nothing: %v", err)
	}
	got := strings.Fields(f.Docker.RunImage(t, reg.Host+"/ctx/app:3"))
	sort.Strings(got)
	want := []string{"/app", "/app/.dockerignore", "/app/Dockerfile", "/app/app.txt", "/app/out", "/app/sub"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the image's /app holds %v, want %v", got, want)
	}
}

// PLUGIN_DOCKERFILE unset: a plugin step reads Dockerfile in the working
// directory, as the peers do, so a root Dockerfile builds the context
// PLUGIN_CONTEXT=sub; the CLI reads the context's, as docker build does. A
// missing one names the path and the setting that chose it.
func TestDockerfileDefault(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := buildContext(t, "FROM "+f.Base+"\nCOPY which.txt /which.txt\nCMD [\"cat\", \"/which.txt\"]\n", map[string]string{
		"sub/which.txt": "root Dockerfile", "sub/Dockerfile": "FROM " + f.Base + "\nRUN echo sub Dockerfile > /which.txt\nCMD [\"cat\", \"/which.txt\"]\n",
	})
	plugin := buildEnv(t, "sub", "PLUGIN_REPO", reg.Host+"/df/app", "PLUGIN_TAGS", "plugin")
	if r := hoistIn(t, ws, plugin); r.code != 0 {
		t.Fatalf("plugin:\n%s", r)
	}
	dir, _ := harness.SharedEngine(t)
	if r := hoistIn(t, ws, map[string]string{}, "build", "--context", "sub", "--engine-dir", dir, "--repo", reg.Host+"/df/app", "--tags", "cli"); r.code != 0 {
		t.Fatalf("cli:\n%s", r)
	}
	for tag, want := range map[string]string{"plugin": "root Dockerfile", "cli": "sub Dockerfile"} {
		if got := f.Docker.RunImage(t, reg.Host+"/df/app:"+tag); got != want {
			t.Errorf("%s: the image says %q, want %q", tag, got, want)
		}
	}
	empty := t.TempDir()
	os.MkdirAll(filepath.Join(empty, "sub"), 0o755)
	r := hoistIn(t, empty, buildEnv(t, "sub", "PLUGIN_REPO", reg.Host+"/df/app"))
	if r.code != ExitSettings {
		t.Errorf("exit %d, want %d", r.code, ExitSettings)
	}
	assertContains(t, r, "dockerfile does not exist at path: "+filepath.Join(empty, "Dockerfile"),
		"the default: Dockerfile in the working directory, as the peers read an unset PLUGIN_DOCKERFILE, and the context has none either")
}

// Build-only, then push-only with the same step settings, for every kind:
// no tarball, no daemon; the push-only step finds the image its build
// recorded in the workspace image store under the kind's full reference
// (one store holds all four, so a name that did not match would fail).
// A push-only step to a repository no build named takes the one image a
// workspace recorded, and refuses when there are several.
func TestPushOnlyFindsTheStagesImage(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	aws, ecrReg := ecrSetup(t)
	aws.AddRepository("stage/app")
	g, garReg := googleSetup(t)
	aad := harness.StartAzure(t)
	acrReg, _ := harness.StartACR(t, aad)
	docker := harness.StartRegistry(t, harness.RegistryOptions{})
	store := filepath.Join(t.TempDir(), ".hoist", "images")
	kinds := []struct {
		kind string
		reg  *harness.Registry
		ref  string
		env  map[string]string
	}{
		{"ecr", ecrReg, ecrReg.Host + "/stage/app:1", map[string]string{"PLUGIN_REGISTRY_TYPE": "ecr", "PLUGIN_REGISTRY": ecrReg.Host, "PLUGIN_REPO": "stage/app",
			"PLUGIN_REGION": aws.Region, "PLUGIN_ECR_ENDPOINT": aws.URL, "PLUGIN_ACCESS_KEY": aws.AccessKey, "PLUGIN_SECRET_KEY": aws.SecretKey}},
		{"gar", garReg, garReg.Host + "/proj/stage/app:1", map[string]string{"PLUGIN_REGISTRY_TYPE": "gar", "PLUGIN_REGISTRY": garReg.Host + "/proj", "PLUGIN_REPO": "stage/app",
			"PLUGIN_JSON_KEY": g.KeyFile}},
		{"acr", acrReg, acrReg.Host + "/app:1", map[string]string{"PLUGIN_REGISTRY_TYPE": "acr", "PLUGIN_REGISTRY": acrReg.Host, "PLUGIN_REPO": "app",
			"TENANT_ID": aad.TenantID, "CLIENT_ID": aad.ClientID, "CLIENT_SECRET": aad.Secret, "AZURE_AUTHORITY_HOST": aad.URL, "PLUGIN_REGISTRY_CERTIFICATE": aad.CAFile}},
		{"docker", docker, docker.Host + "/stage/app:1", map[string]string{"PLUGIN_REPO": docker.Host + "/stage/app"}},
	}
	for _, k := range kinds {
		ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo "+k.kind+" > /kind.txt\nCMD [\"cat\", \"/kind.txt\"]\n", nil)
		mustPush(t, merged(buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_TAGS", "1", "PLUGIN_IMAGE_STORE", store), k.env))
	}
	for _, k := range kinds {
		sock := harness.CountingSocket(t)
		r := mustPush(t, merged(k.env, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_TAGS": "1", "PLUGIN_IMAGE_STORE": store,
			"PLUGIN_DAEMON_OFF": "true", "DOCKER_HOST": sock.Host}))
		assertContains(t, r, "source: workspace image store "+store+" ("+k.ref+")")
		if got := digestOf(t, k.reg, k.ref); got != strings.TrimSpace(r.stdout) {
			t.Errorf("%s: the registry holds %s, hoist said %s", k.kind, got, r.stdout)
		}
		if sock.Connections() != 0 {
			t.Errorf("%s: the push-only step opened DOCKER_HOST", k.kind)
		}
	}
	if got := f.Docker.RunImage(t, kinds[3].ref); got != "docker" {
		t.Errorf("the docker kind's image says %q", got)
	}

	// The mission's push-only step pushes to a repository its build did
	// not name: with several images recorded, it refuses and lists them.
	other := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REPO": docker.Host + "/elsewhere/app", "PLUGIN_IMAGE_STORE": store}
	r := hoist(t, other)
	if r.code != ExitSource {
		t.Errorf("several images: exit %d, want %d:\n%s", r.code, ExitSource, r)
	}
	assertContains(t, r, "holds 4 images and none is named as a destination", kinds[0].ref, kinds[3].ref, "set PLUGIN_SOURCE_IMAGE")
	// With one, it takes it and says so.
	one := filepath.Join(t.TempDir(), "one")
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo the-one > /kind.txt\nCMD [\"cat\", \"/kind.txt\"]\n", nil)
	mustPush(t, buildEnv(t, ctxDir, "PLUGIN_NO_PUSH", "true", "PLUGIN_REPO", "build/app", "PLUGIN_IMAGE_STORE", one))
	other["PLUGIN_IMAGE_STORE"] = one
	r = mustPush(t, other)
	assertContains(t, r, "source: workspace image store "+one+", the one image recorded there, as none is named as a destination (index.docker.io/build/app:latest)")
	if got := f.Docker.RunImage(t, docker.Host+"/elsewhere/app:latest"); got != "the-one" {
		t.Errorf("the image says %q", got)
	}
}

// A migrating step's variables: a typo is named with the setting it is
// near, a peer's setting hoist cannot honour is refused before anything
// is pushed, and one that changes nothing here gets a notice.
func TestUnknownPluginSettings(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	base := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REPO": reg.Host + "/unknown/app"}
	r := mustPush(t, merged(base, map[string]string{"PLUGIN_TAGSS": "1", "PLUGIN_STORAGE_DRIVER": "overlay2"}))
	assertContains(t, r, "warning: setting PLUGIN_TAGSS is not a hoist setting and is ignored; did you mean PLUGIN_TAGS?",
		"warning: setting PLUGIN_STORAGE_DRIVER has no effect: it configures the Docker daemon the peers start; hoist starts none")
	r = hoist(t, merged(base, map[string]string{"PLUGIN_TAGS": "bake", "PLUGIN_BAKE_FILE": "docker-bake.hcl"}))
	if r.code != ExitSettings {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, "PLUGIN_BAKE_FILE: bake builds are not supported")
	if tags := tagsOf(t, reg, "unknown/app"); len(tags) != 1 || tags[0] != "latest" {
		t.Errorf("tags %v, want only the first run's latest", tags)
	}
}
