package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// A docker save tarball pushed, as a plugin, to three registries at once
// (plain HTTP, htpasswd, TLS with a private CA) and to a second repository
// of the first, then pulled back by Docker and run.
func TestPluginPushesDockerSaveToManyRegistries(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	plain := harness.StartRegistry(t, harness.RegistryOptions{})
	auth := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	secure := harness.StartRegistry(t, harness.RegistryOptions{TLS: true, Auth: true})
	config := `{"auths":{"` + secure.Host + `":{"auth":"` + basic(secure.User, secure.Password) + `"}}}`
	out := t.TempDir()
	r := mustPush(t, map[string]string{
		"PLUGIN_PUSH_ONLY":            "true",
		"PLUGIN_SOURCE_TAR_PATH":      f.DockerSave,
		"PLUGIN_REPO":                 plain.Host + "/team/app",
		"PLUGIN_TAGS":                 "1.0.0,latest",
		"PLUGIN_DESTINATIONS":         plain.Host + "/mirror/app:1.0.0," + auth.Host + "/app:1.0.0," + secure.Host + "/app:1.0.0",
		"PLUGIN_REGISTRY":             auth.Host,
		"PLUGIN_USERNAME":             auth.User,
		"PLUGIN_PASSWORD":             auth.Password,
		"PLUGIN_CONFIG":               config,
		"PLUGIN_REGISTRY_CERTIFICATE": secure.CAFile,
		"PLUGIN_DIGEST_FILE":          filepath.Join(out, "digest"),
		"DRONE_OUTPUT":                filepath.Join(out, "drone.env"),
		"PLUGIN_ARTIFACT_FILE":        filepath.Join(out, "artifact.json"),
	})
	digest := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("stdout is not a digest:\n%s", r)
	}
	for _, c := range []struct {
		reg *harness.Registry
		ref string
	}{
		{plain, plain.Host + "/team/app:1.0.0"},
		{plain, plain.Host + "/team/app:latest"},
		{plain, plain.Host + "/mirror/app:1.0.0"},
		{auth, auth.Host + "/app:1.0.0"},
		{secure, secure.Host + "/app:1.0.0"},
	} {
		if got := digestOf(t, c.reg, c.ref); got != digest {
			t.Errorf("%s has digest %s, want %s", c.ref, got, digest)
		}
		assertSummary(t, r, c.ref, digest)
	}
	// The second repository of a registry mounts the blobs of the first.
	assertContains(t, r, "mounted from team/app", "ok (pushed)")
	assertNotContains(t, r, auth.Password, secure.Password, "\x1b")

	if got := f.Docker.RunImage(t, plain.Host+"/team/app:1.0.0", "cat", "/built.txt"); got != f.Built {
		t.Errorf("pushed image prints %q, want %q", got, f.Built)
	}

	b, _ := os.ReadFile(filepath.Join(out, "digest"))
	if strings.TrimSpace(string(b)) != digest {
		t.Errorf("digest file holds %q", b)
	}
	env, _ := os.ReadFile(filepath.Join(out, "drone.env"))
	for _, want := range []string{"digest=" + digest, "IMAGE=" + plain.Host + "/team/app:1.0.0", "IMAGE_DIGEST_REF=" + plain.Host + "/team/app@" + digest, "IMAGE_REFS=" + plain.Host + "/team/app:1.0.0," + plain.Host + "/team/app:latest,"} {
		if !strings.Contains(string(env), want) {
			t.Errorf("DRONE_OUTPUT lacks %q:\n%s", want, env)
		}
	}
	var art struct {
		Kind string
		Data struct {
			RegistryType string
			RegistryURL  string
			Images       []struct{ Image, Digest string }
		}
	}
	ab, _ := os.ReadFile(filepath.Join(out, "artifact.json"))
	if err := json.Unmarshal(ab, &art); err != nil {
		t.Fatalf("artifact file: %v\n%s", err, ab)
	}
	if art.Kind != "docker/v1" || art.Data.RegistryType != "Docker" || len(art.Data.Images) != 5 || art.Data.Images[0].Digest != digest {
		t.Errorf("artifact file: %s", ab)
	}
}

// Every input form, each written by a tool other than hoist, is pushed and
// the pushed image runs.
func TestPushInputsFromOtherTools(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	gz := filepath.Join(t.TempDir(), "docker-save.tar.gz")
	harness.Run(t, nil, "sh", "-c", "gzip -c "+f.DockerSave+" > "+gz)
	cases := []struct {
		name, path, pick, from string
	}{
		{"docker save", f.DockerSave, "", "docker-archive"},
		{"docker save, gzip compressed", gz, "", "docker-archive " + gz + ", gzip"},
		{"docker save of two images, one picked", f.DockerSaveTwo, f.App, "docker-archive"},
		{"skopeo docker-archive", f.SkopeoArchive, "", "docker-archive"},
		{"skopeo oci-archive", f.SkopeoOCIArch, "", "OCI archive"},
		{"skopeo oci layout", f.SkopeoLayout, "", "OCI layout"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := reg.Host + "/inputs/app:" + itoa(i)
			env := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": c.path, "PLUGIN_DESTINATIONS": ref}
			if c.pick != "" {
				env["PLUGIN_SOURCE_IMAGE"] = c.pick
			}
			r := mustPush(t, env)
			assertContains(t, r, "source: "+c.from)
			if got := digestOf(t, reg, ref); got != strings.TrimSpace(r.stdout) {
				t.Errorf("registry digest %s, hoist said %s", got, r.stdout)
			}
			if got := f.Docker.RunImage(t, ref, "cat", "/built.txt"); got != f.Built {
				t.Errorf("pushed image prints %q, want %q", got, f.Built)
			}
		})
	}
}

// A two-platform image index in an OCI layout (docker manifest, then skopeo
// copy --all) is pushed as an index, digest unchanged, and both platforms
// run (arm64 through qemu).
func TestPushMultiPlatformIndex(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ref := reg.Host + "/multi/app:1"
	r := mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.MultiLayout, "PLUGIN_DESTINATIONS": ref})
	want := digestOf(t, f.Registry, f.MultiRemote)
	if got := digestOf(t, reg, ref); got != want || strings.TrimSpace(r.stdout) != want {
		t.Errorf("pushed index %s (stdout %s), source index %s", got, r.stdout, want)
	}
	raw := harness.Run(t, nil, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
	if !strings.Contains(raw, `"arm64"`) || !strings.Contains(raw, `"amd64"`) {
		t.Errorf("pushed manifest is not a two-platform index: %s", raw)
	}
	if got := f.Docker.RunImage(t, ref, "cat", "/hello.txt"); got != "hello from amd64" {
		t.Errorf("amd64 variant prints %q", got)
	}
	f.Docker.Run(t, "pull", "-q", "--platform", "linux/arm64", ref)
	if got := strings.TrimSpace(f.Docker.Run(t, "run", "--rm", "--network", "host", "--platform", "linux/arm64", ref, "sh", "-c", "cat /hello.txt; uname -m")); got != f.MultiArm64Hello+"\naarch64" {
		t.Errorf("arm64 variant prints %q", got)
	}
}

// PLUGIN_SOURCE_IMAGE is found in the Docker daemon, retagged and pushed;
// without a source at all, repo:tag is looked up in the daemon.
func TestPushFromDaemon(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ref := reg.Host + "/from-daemon/app:v2"
	r := mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": f.App, "PLUGIN_DESTINATIONS": ref, "DOCKER_HOST": f.Docker.Host})
	assertContains(t, r, "source: docker daemon at "+f.Docker.Host+" ("+f.App+")")
	if got := f.Docker.RunImage(t, ref, "cat", "/built.txt"); got != f.Built {
		t.Errorf("pushed image prints %q", got)
	}

	// The peers' push-only from the daemon: the image is named repo:tag.
	local := reg.Host + "/by-name/app"
	f.Docker.Run(t, "tag", f.App, local+":7")
	r = mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REPO": local, "PLUGIN_TAGS": "7", "DOCKER_HOST": f.Docker.Host})
	assertContains(t, r, "source: docker daemon", local+":7")
	if d := tagsOf(t, reg, "by-name/app"); len(d) != 1 || d[0] != "7" {
		t.Errorf("tags %v", d)
	}
}

// A registry image is copied registry to registry: the same manifest bytes,
// so the same digest.
func TestPushFromRegistry(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	src := f.Registry.Host + "/fixture/app:1"
	ref := reg.Host + "/copied/app:1"
	r := mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": src, "PLUGIN_DESTINATIONS": ref, "PLUGIN_DAEMON_OFF": "true"})
	assertContains(t, r, "source: registry image "+src)
	if got, want := digestOf(t, reg, ref), digestOf(t, f.Registry, src); got != want {
		t.Errorf("copy has digest %s, source %s", got, want)
	}
}

// A second push of the same image only checks the manifests.
func TestRepushIsUpToDate(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	env := func() map[string]string {
		return map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_REPO": reg.Host + "/again/app", "PLUGIN_TAGS": "a,b"}
	}
	mustPush(t, env())
	r := mustPush(t, env())
	if strings.Count(r.stderr, "ok (up to date)") != 2 || strings.Contains(r.stderr, "uploaded") {
		t.Errorf("second push was not a no-op:\n%s", r)
	}
}

// The user's own docker config with a credential helper logs in.
func TestDockerConfigCredentialHelper(t *testing.T) {
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	bin := t.TempDir()
	helper := "#!/bin/sh\nread server\necho '{\"ServerURL\":\"'$server'\",\"Username\":\"" + reg.User + "\",\"Secret\":\"" + reg.Password + "\"}'\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-hoisttest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	cfgDir := t.TempDir()
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"credHelpers":{"`+reg.Host+`":"hoisttest"}}`), 0o600)
	ref := reg.Host + "/helped/app:1"
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_DESTINATIONS": ref, "DOCKER_CONFIG": cfgDir})
	if d := tagsOf(t, reg, "helped/app"); len(d) != 1 {
		t.Errorf("tags %v", d)
	}
	// Without the config (so without the helper) the registry refuses.
	r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_DESTINATIONS": reg.Host + "/helped/app:2"})
	if r.code != ExitPush {
		t.Errorf("push without credentials:\n%s", r)
	}

	// A registry that echoes the Authorization header in its error: what
	// the helper returned is masked, in the header's base64 form too.
	echoHost := echoingRegistry(t, reg, " (user "+reg.Password+")")
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"credHelpers":{"`+echoHost+`":"hoisttest"}}`), 0o600)
	r = hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_DESTINATIONS": echoHost + "/helped/app:3",
		"DOCKER_CONFIG": cfgDir, "PLUGIN_DEBUG": "true"})
	if r.code != ExitPush {
		t.Errorf("exit %d:\n%s", r.code, r)
	}
	assertContains(t, r, "denied for Basic ****", "(user ****)", "debug: PUT "+echoHost+"/v2/helped/app/manifests/3")
	assertNotContains(t, r, reg.Password, basic(reg.User, reg.Password))

	// A helper that fails: a settings error naming the helper.
	os.WriteFile(filepath.Join(bin, "docker-credential-broken"), []byte("#!/bin/sh\necho 'helper exploded' >&2\nexit 1\n"), 0o755)
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"credHelpers":{"`+reg.Host+`":"broken"}}`), 0o600)
	r = hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_DESTINATIONS": reg.Host + "/helped/app:4", "DOCKER_CONFIG": cfgDir})
	if r.code != ExitSettings {
		t.Errorf("a failing helper: exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, "credential helper docker-credential-broken (named in "+filepath.Join(cfgDir, "config.json")+") failed for "+reg.Host)
}

// Progress on a terminal is drawn with bars; in plain mode there are no
// control characters.
func TestProgressModes(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	r := mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_DESTINATIONS": reg.Host + "/p/app:tty", "PLUGIN_PROGRESS": "tty"})
	assertContains(t, r, "/p/app:tty", "[========================] done")
	r = mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_DESTINATIONS": reg.Host + "/p/app:plain"})
	assertContains(t, r, "blob sha256:", "uploaded", "manifest plain written")
	assertNotContains(t, r, "\x1b")
}

func basic(user, pass string) string {
	return b64(user + ":" + pass)
}

// A registry that hands out bearer tokens from a token realm: the basic
// credentials are exchanged for a token, the wrong ones are refused.
func TestBearerTokenRealm(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg, ts := harness.StartTokenRegistry(t)
	ref := reg.Host + "/bearer/app:1"
	r := mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoOCIArch, "PLUGIN_DESTINATIONS": ref,
		"PLUGIN_USERNAME": reg.User, "PLUGIN_PASSWORD": reg.Password})
	if ts.Issued.Load() == 0 {
		t.Error("no token was issued")
	}
	if got := digestOf(t, reg, ref); got != strings.TrimSpace(r.stdout) {
		t.Errorf("digest %s, hoist said %s", got, r.stdout)
	}
	r = hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoOCIArch, "PLUGIN_DESTINATIONS": reg.Host + "/bearer/app:2",
		"PLUGIN_USERNAME": reg.User, "PLUGIN_PASSWORD": "not-" + reg.Password})
	if r.code != ExitPush {
		t.Errorf("wrong password: exit %d", r.code)
	}
	assertContains(t, r, "registry "+reg.Host+" refused access")
	assertNotContains(t, r, "not-"+reg.Password)
}

// PLUGIN_DAEMON_OFF as Harness sends it on every VM and Cloud step: a push
// that needs no daemon (a tarball, a layout) never opens DOCKER_HOST,
// whether it is set or not; a source image that is looked up there does
// open it (which shows that the counting socket sees connections).
func TestDaemonOffNeverTouchesTheSocket(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	for i, src := range []string{f.DockerSave, f.SkopeoLayout} {
		for _, off := range []string{"true", "false"} {
			sock := harness.CountingSocket(t)
			mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": src, "PLUGIN_DAEMON_OFF": off,
				"DOCKER_HOST": sock.Host, "PLUGIN_DESTINATIONS": fmt.Sprintf("%s/daemon-off/app:%d-%s", reg.Host, i, off)})
			if n := sock.Connections(); n != 0 {
				t.Errorf("%s with PLUGIN_DAEMON_OFF=%s: %d connections to DOCKER_HOST", src, off, n)
			}
		}
	}
	sock := harness.CountingSocket(t)
	r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": "hoist-no-such-image:1", "PLUGIN_DAEMON_OFF": "true",
		"DOCKER_HOST": sock.Host, "PLUGIN_DESTINATIONS": reg.Host + "/daemon-off/app:never"})
	if r.code == 0 || sock.Connections() == 0 {
		t.Errorf("a source image looked up in the daemon: exit %d, %d connections:\n%s", r.code, sock.Connections(), r)
	}
	assertContains(t, r, "docker daemon "+sock.Host)
}

// The mission's four parallel push-only steps from one uncompressed
// tarball (docker save) in one workspace: each layer is compressed once
// between them (the compression cache), and every registry holds one
// digest, read back by an independent client.
func TestParallelPushOnlyCompressOnce(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	ws := t.TempDir()
	regs := make([]*harness.Registry, 4)
	for i := range regs {
		regs[i] = harness.StartRegistry(t, harness.RegistryOptions{})
	}
	results := make([]result, len(regs))
	var wg sync.WaitGroup
	for i, reg := range regs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = hoistIn(t, ws, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
				"PLUGIN_REPO": reg.Host + "/parallel/app", "PLUGIN_TAGS": "1"})
		}()
	}
	wg.Wait()
	fresh, hits := 0, 0
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("step %d:\n%s", i, r)
		}
		for _, line := range strings.Split(r.stderr, "\n") {
			switch {
			case !strings.Contains(line, "compressed layer"):
			case strings.Contains(line, "(from the compression cache"):
				hits++
			default:
				fresh++
			}
		}
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal([]byte(harness.Run(t, nil, "tar", "xOf", f.DockerSave, "manifest.json")), &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("docker save's manifest.json: %v", err)
	}
	layers := len(manifest[0].Layers)
	if fresh != layers || hits != 3*layers {
		t.Errorf("%d layers compressed %d times, taken from the cache %d times; want %d and %d", layers, fresh, hits, layers, 3*layers)
	}
	want := digestOf(t, regs[0], regs[0].Host+"/parallel/app:1")
	for _, reg := range regs[1:] {
		if got := digestOf(t, reg, reg.Host+"/parallel/app:1"); got != want {
			t.Errorf("%s holds %s, %s holds %s", reg.Host, got, regs[0].Host, want)
		}
	}
	if got := f.Docker.RunImage(t, regs[3].Host+"/parallel/app:1", "cat", "/built.txt"); got != f.Built {
		t.Errorf("the pushed image prints %q, want %q", got, f.Built)
	}
}

// PLUGIN_SKIP_PUSH_IF_TAG_EXISTS (plugins/ecr's), for any registry: a
// repository holding one of the step's tags gets none of them (its
// manifest digest, read with crane, unchanged; its other tag absent), a
// repository holding none is pushed; when every repository holds one,
// nothing is built or pushed and the step exits 0, saying so; a registry
// that cannot be reached fails the step before anything is pushed.
func TestSkipPushIfTagExists(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	login := map[string]string{"PLUGIN_REGISTRY": reg.Host, "PLUGIN_USERNAME": reg.User, "PLUGIN_PASSWORD": reg.Password}
	// What is there already: another image (an index) under 1.0.
	mustPush(t, merged(login, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.MultiLayout, "PLUGIN_REPO": reg.Host + "/skip/app", "PLUGIN_TAGS": "1.0"}))
	before := digestOf(t, reg, reg.Host+"/skip/app:1.0")
	craneLs := func(repo string) string {
		tags := strings.Fields(reg.Crane(t, "ls", reg.Host+"/"+repo))
		slices.Sort(tags)
		return strings.Join(tags, ",")
	}

	// skip/app holds 1.0 (the second of its tags): none of its tags is
	// pushed; skip/fresh holds none: pushed.
	push := merged(login, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_REPO": reg.Host + "/skip/app",
		"PLUGIN_TAGS": "latest,1.0", "PLUGIN_DESTINATIONS": reg.Host + "/skip/fresh:1.0", "PLUGIN_SKIP_PUSH_IF_TAG_EXISTS": "true"})
	r := mustPush(t, push)
	if got := digestOf(t, reg, reg.Host+"/skip/app:1.0"); got != before {
		t.Errorf("skip/app:1.0 holds %s, was %s: pushed over", got, before)
	}
	if got := craneLs("skip/app"); got != "1.0" {
		t.Errorf("skip/app's tags: %s, want 1.0 alone (latest skipped with it)", got)
	}
	assertPushed(t, r, reg, reg.Host+"/skip/fresh:1.0")
	if digestOf(t, reg, reg.Host+"/skip/fresh:1.0") == before {
		t.Errorf("skip/fresh holds the index")
	}
	assertContains(t, r, "image tag exists, skipping push: "+reg.Host+"/skip/app:1.0 is there already (PLUGIN_SKIP_PUSH_IF_TAG_EXISTS); "+reg.Host+"/skip/app gets none of latest, 1.0")
	assertNotContains(t, r, reg.Host+"/skip/app:latest  ", reg.Password)

	// Every repository holds one of its tags: the step exits 0, nothing
	// pushed, no digest on stdout.
	r = mustPush(t, push)
	if strings.TrimSpace(r.stdout) != "" || !strings.Contains(r.stderr, "every destination repository holds one of its tags already") || strings.Contains(r.stderr, "pushing to") {
		t.Errorf("all there: %s", r)
	}
	if got := digestOf(t, reg, reg.Host+"/skip/app:1.0"); got != before {
		t.Errorf("skip/app:1.0 holds %s, was %s", got, before)
	}
	// A build whose tags are all there is not built.
	ctxDir := buildContext(t, "FROM "+f.Base+"\nRUN echo skipped > /s.txt\n", nil)
	r = mustPush(t, merged(login, buildEnv(t, ctxDir, "PLUGIN_REPO", reg.Host+"/skip/app", "PLUGIN_TAGS", "1.0", "PLUGIN_SKIP_PUSH_IF_TAG_EXISTS", "true")))
	if strings.Contains(r.stderr, "built sha256:") || !strings.Contains(r.stderr, "nothing was built or pushed") || digestOf(t, reg, reg.Host+"/skip/app:1.0") != before {
		t.Errorf("a build whose tag exists: %s", r)
	}
	// Without the setting, the tag is pushed over (the test sees a push).
	mustPush(t, merged(push, map[string]string{"PLUGIN_SKIP_PUSH_IF_TAG_EXISTS": "false", "PLUGIN_DESTINATIONS": ""}))
	if digestOf(t, reg, reg.Host+"/skip/app:1.0") == before {
		t.Errorf("without the setting, skip/app:1.0 was not pushed")
	}

	// A registry that cannot be reached: a failure, nothing pushed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	r = hoist(t, merged(push, map[string]string{"PLUGIN_REPO": reg.Host + "/skip/other", "PLUGIN_DESTINATIONS": closed + "/skip/app:1.0"}))
	if r.code != ExitPush || !strings.Contains(r.stderr, "PLUGIN_SKIP_PUSH_IF_TAG_EXISTS: hoist could not tell whether the tag exists, so nothing was built or pushed") ||
		!strings.Contains(r.stderr, "cannot reach registry "+closed) {
		t.Errorf("unreachable: exit %d, want %d:\n%s", r.code, ExitPush, r)
	}
	if tags := tagsOf(t, reg, "skip/other"); len(tags) != 0 {
		t.Errorf("pushed despite a registry that could not tell: %v", tags)
	}
}
