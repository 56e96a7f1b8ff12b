package cli

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// A Dockerfile's RUN under Kaniko runs as root in hoist's own container.
// The attacker's RUN here reads every process's environment (hoist's as
// PID 1, the executor's, its own) and every docker config it can find,
// and writes what it read into the image. The step pushes with the
// credentials of one registry, pulls its base image with those of
// another, and its environment also holds an unrelated registry's login
// (in PLUGIN_CONFIG, beside the base registry's), signing material and a
// CI secret. What the RUN read holds the base registry's login
// (PLUGIN_BASE_IMAGE_*), which the executor needs for the pull
// (docs/usage.md says so), and none of the rest.
func TestKanikoRunReadsNoUnrelatedSecret(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	image := pluginImage(t, "kaniko")
	base := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	dest := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "pusher"})
	other := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "elsewhere"})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": f.Base, "PLUGIN_DESTINATIONS": base.Host + "/private/base:1",
		"PLUGIN_REGISTRY": base.Host, "PLUGIN_USERNAME": base.User, "PLUGIN_PASSWORD": base.Password})

	const run = `(echo '=== the RUN ran'; ` +
		`echo '=== pid 1:'; cat /proc/1/environ | tr '\0' '\n'; ` +
		`echo '=== env:'; env; ` +
		`for p in /proc/[0-9]*; do echo "=== $p: $(tr '\0' ' ' < $p/cmdline)"; tr '\0' '\n' < $p/environ; done; ` +
		`echo '=== docker configs:'; ` +
		`for d in $(cat /proc/[0-9]*/environ | tr '\0' '\n' | sed -n 's/^DOCKER_CONFIG=//p'); do echo "== $d"; cat $d/config.json; echo; done; ` +
		`for c in $(find /kaniko /root /tmp /workspace -name config.json); do echo "== $c"; cat $c; echo; done; ` +
		`echo '=== end') > /leak.txt 2>&1; true`
	ws := buildContext(t, "FROM "+base.Host+"/private/base:1\nRUN "+run+"\n", nil)

	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{
		base.Host:  map[string]string{"auth": basic(base.User, base.Password)},
		other.Host: map[string]string{"auth": basic(other.User, other.Password)},
	}})
	secrets := map[string]string{
		"PLUGIN_PASSWORD":           dest.Password,
		"PLUGIN_SIGN_PASSWORD":      "sign-password-" + dest.Password[3:],
		"PLUGIN_COSIGN_PRIVATE_KEY": "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nc2lnbmluZy1rZXktbWF0ZXJpYWw=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----",
		"SIGSTORE_ID_TOKEN":         "eyJhbGciOiJub25lIn0.eyJpc3MiOiJjaSJ9.identity-token-" + other.Password[3:],
		"AWS_SECRET_ACCESS_KEY":     "aws-secret-" + base.Password[3:],
		"DEPLOY_TOKEN":              "ci-secret-" + dest.Password[3:],
		"GITHUB_TOKEN":              "ghs_" + other.Password[3:],
	}
	env := merged(secrets, map[string]string{"PLUGIN_REPO": dest.Host + "/kaniko/leak", "PLUGIN_TAGS": "1", "PLUGIN_USERNAME": dest.User,
		"PLUGIN_CONFIG": string(cfg), "PLUGIN_PROGRESS": "plain",
		// The key is in the step's environment, signing off (a key alone
		// would sign, which a Kaniko step refuses).
		"PLUGIN_SIGN":                "false",
		"PLUGIN_BASE_IMAGE_REGISTRY": base.Host, "PLUGIN_BASE_IMAGE_USERNAME": base.User, "PLUGIN_BASE_IMAGE_PASSWORD": base.Password})
	out, err := plugin(t, f.Docker, image, ws, env)
	if err != nil {
		t.Fatalf("build and push: %v\n%s", err, out)
	}
	leak := fileOf(t, dest, dest.Host+"/kaniko/leak:1", "leak.txt")
	t.Logf("what the RUN read:\n%s", leak)

	// The RUN ran and read what this container offers it: the executor's
	// environment (its docker config's directory) and that config, with
	// the base registry's login the pull needs.
	for _, want := range []string{"=== the RUN ran", "=== pid 1:", "=== env:", "DOCKER_CONFIG=/kaniko/tmp/", "=== docker configs:", base.Host, basic(base.User, base.Password), "=== end"} {
		if !strings.Contains(leak, want) {
			t.Errorf("what the RUN read lacks %q: the test proves nothing", want)
		}
	}
	// Nothing else: not the destination's login (hoist pushes, not the
	// executor), not the unrelated registry's, no signing material, no
	// other secret of the step's environment.
	unwanted := map[string]string{
		"the destination's password": dest.Password, "the destination's login": basic(dest.User, dest.Password),
		"the unrelated registry's password": other.Password, "the unrelated registry's login": basic(other.User, other.Password),
		"the unrelated registry's host": other.Host, "PLUGIN_CONFIG": string(cfg),
	}
	for k, v := range secrets {
		unwanted[k] = v
		if i := strings.IndexByte(v, '\n'); i > 0 {
			unwanted[k+" (its first line)"] = v[:i]
		}
	}
	for what, v := range unwanted {
		if strings.Contains(leak, v) {
			t.Errorf("the RUN read %s", what)
		}
	}
	if strings.Contains(leak, "PLUGIN_") {
		t.Errorf("the RUN read a PLUGIN_ variable")
	}
}

// The Dockerfile does not choose which of the step's logins the Kaniko
// executor gets (and so which a RUN can read): a FROM on the destination
// registry (any image there) or on a registry PLUGIN_CONFIG has a login
// for is pulled without credentials, and the log says so; the executor's
// docker config holds the explicit base-image login only. (The
// destination and the other registry take anonymous pulls here, so the
// build runs and its RUN reads the config; the logins are the step's
// secrets all the same.)
func TestKanikoDockerfileDoesNotChooseLogins(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	image := pluginImage(t, "kaniko")
	dest := harness.StartRegistry(t, harness.RegistryOptions{})
	other := harness.StartRegistry(t, harness.RegistryOptions{})
	base := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "reader"})
	for _, ref := range []string{dest.Host + "/team/anything:1", other.Host + "/team/anything:1"} {
		mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": f.Base, "PLUGIN_DESTINATIONS": ref})
	}
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": f.Base, "PLUGIN_DESTINATIONS": base.Host + "/private/base:1",
		"PLUGIN_REGISTRY": base.Host, "PLUGIN_USERNAME": base.User, "PLUGIN_PASSWORD": base.Password})
	destPassword, otherPassword := "push-"+base.Password[2:], "elsewhere-"+base.Password[2:]
	ws := buildContext(t, "FROM "+dest.Host+"/team/anything:1 AS creds\nFROM "+other.Host+"/team/anything:1 AS other\n"+
		"FROM "+base.Host+"/private/base:1\nRUN cat /kaniko/tmp/kaniko-*/docker/config.json > /leak.txt; true\n", nil)
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{other.Host: map[string]string{"auth": basic("elsewhere", otherPassword)}}})
	out, err := plugin(t, f.Docker, image, ws, map[string]string{"PLUGIN_REPO": dest.Host + "/kaniko/leak", "PLUGIN_TAGS": "1",
		"PLUGIN_USERNAME": "pusher", "PLUGIN_PASSWORD": destPassword, "PLUGIN_CONFIG": string(cfg),
		"PLUGIN_BASE_IMAGE_REGISTRY": base.Host, "PLUGIN_BASE_IMAGE_USERNAME": base.User, "PLUGIN_BASE_IMAGE_PASSWORD": base.Password,
		"PLUGIN_PROGRESS": "plain"})
	if err != nil {
		t.Fatalf("build and push: %v\n%s", err, out)
	}
	leak := fileOf(t, dest, dest.Host+"/kaniko/leak:1", "leak.txt")
	t.Logf("what the RUN read: %s", leak)
	if !strings.Contains(leak, basic(base.User, base.Password)) {
		t.Fatalf("the RUN did not read the executor's docker config (it lacks the base-image login): the test proves nothing")
	}
	for what, v := range map[string]string{"the destination's password": destPassword, "the destination's login": basic("pusher", destPassword),
		"the destination's host": dest.Host, "PLUGIN_CONFIG's password": otherPassword, "PLUGIN_CONFIG's login": basic("elsewhere", otherPassword),
		"PLUGIN_CONFIG's host": other.Host} {
		if strings.Contains(leak, v) {
			t.Errorf("the RUN read %s", what)
		}
	}
	for _, want := range []string{"Kaniko pulls the base images on " + dest.Host + " (a destination: its login is hoist's, for the push), " + other.Host +
		" without credentials: a Dockerfile's FROM does not choose which of the step's logins the executor gets", "PLUGIN_BASE_IMAGE_REGISTRY"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// A secret given as a flag to a Kaniko build is refused before anything
// runs: a Dockerfile's RUN reads hoist's command line
// (/proc/PID/cmdline is readable even though hoist is not dumpable). The
// same secret in the environment (the plugin way) is taken.
func TestKanikoRefusesSecretFlags(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	ctxDir := buildContext(t, "FROM "+f.Base+"\n", nil)
	env := func() map[string]string {
		return buildEnv(t, ctxDir, "PLUGIN_BUILD_TOOL", "kaniko", "PLUGIN_KANIKO_EXECUTOR", "/nonexistent/executor", "PLUGIN_NO_PUSH", "true",
			"PLUGIN_REPO", "127.0.0.1:1/kaniko/app")
	}
	r := hoist(t, env(), "build", "--username", "u", "--password", "flag-secret-1", "--base-image-username", "u", "--base-image-password", "flag-secret-2")
	if r.code != ExitSettings {
		t.Errorf("secret flags with Kaniko: exit %d, want %d\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, "--base-image-password", "--password", "a Dockerfile's RUN can read hoist's command line", "PLUGIN_PASSWORD")
	assertNotContains(t, r, "flag-secret-1", "flag-secret-2", "kaniko executor not found")
	// In the environment: planned, and on to the executor (absent here).
	r = hoist(t, merged(env(), map[string]string{"PLUGIN_USERNAME": "u", "PLUGIN_PASSWORD": "env-secret"}), "build")
	if r.code == ExitSettings {
		t.Errorf("the secret in the environment was refused:\n%s", r)
	}
	assertContains(t, r, "/nonexistent/executor")
}

// fileOf reads a file of the image ref, as crane exports its filesystem.
func fileOf(t *testing.T, reg *harness.Registry, ref, file string) string {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(reg.Crane(t, "export", ref, "-")))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s holds no %s", ref, file)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "/") == file {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}

// Signing, attesting or scanning in a Kaniko build step is refused at
// once in the plugin image, before anything is built or pushed, with the
// recipe; the recipe's steps (build only, then a push-only step that
// signs, in a container of its own) sign what was built.
func TestKanikoSignsOnlyInAStepOfItsOwn(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	image := pluginImage(t, "kaniko")
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	ws := buildContext(t, "FROM "+f.Base+"\nRUN echo built-by-kaniko > /k.txt\n", nil)
	key, pub := keyPair(t, "kaniko-pw")
	sign := map[string]string{"PLUGIN_SIGN": "true", "PLUGIN_SIGN_KEY": key, "PLUGIN_SIGN_PASSWORD": "kaniko-pw", "PLUGIN_PROVENANCE": "true"}
	keyDir := strings.TrimSuffix(key, "/cosign.key")
	out, err := plugin(t, f.Docker, image, ws, merged(sign, map[string]string{"PLUGIN_SIGN_KEY": "/keys/cosign.key",
		"PLUGIN_REPO": reg.Host + "/kaniko/signed", "PLUGIN_PROGRESS": "plain"}), "-v", keyDir+":/keys:ro")
	if err == nil || !strings.Contains(err.Error(), "exit status 2") {
		t.Errorf("a signing Kaniko build: %v, want exit 2\n%s", err, out)
	}
	for _, want := range []string{"PLUGIN_SIGN, PLUGIN_PROVENANCE: this step builds with Kaniko (PLUGIN_BUILD_TOOL says so)",
		"does not sign, attest or scan in the container that built", "PLUGIN_PUSH_ONLY=true, PLUGIN_SOURCE_TAR_PATH=image.tar"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "build tool: kaniko") || strings.Contains(out, "kaniko-pw") {
		t.Errorf("the step went on, or showed the password:\n%s", out)
	}
	if tags := tagsOf(t, reg, "kaniko/signed"); len(tags) != 0 {
		t.Errorf("pushed: %v", tags)
	}

	// The recipe.
	out, err = plugin(t, f.Docker, image, ws, map[string]string{"PLUGIN_NO_PUSH": "true", "PLUGIN_TAR_PATH": "/harness/image.tar",
		"PLUGIN_REPO": reg.Host + "/kaniko/signed", "PLUGIN_PROGRESS": "plain"})
	if err != nil {
		t.Fatalf("build only: %v\n%s", err, out)
	}
	out, err = plugin(t, f.Docker, image, ws, merged(sign, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": "/harness/image.tar",
		"PLUGIN_SIGN_KEY": "/keys/cosign.key", "PLUGIN_REPO": reg.Host + "/kaniko/signed", "PLUGIN_PROGRESS": "plain"}), "-v", keyDir+":/keys:ro")
	if err != nil {
		t.Fatalf("push only, signed: %v\n%s", err, out)
	}
	ref := reg.Host + "/kaniko/signed@" + digestOf(t, reg, reg.Host+"/kaniko/signed:latest")
	if out, err := verify(t, reg, pub, ref); err != nil {
		t.Errorf("cosign verify: %v\n%s", err, out)
	}
	if _, out, err := statements(t, reg, pub, "slsaprovenance1", ref); err != nil {
		t.Errorf("cosign verify-attestation: %v\n%s", err, out)
	}
	if got := f.Docker.RunImage(t, reg.Host+"/kaniko/signed:latest", "cat", "/k.txt"); got != "built-by-kaniko" {
		t.Errorf("the signed image prints %q", got)
	}
}

// After a Kaniko build hoist runs no program of its container: a RUN
// can replace any of them. Here the destination's login comes from a
// credential helper (docker-credential-hoisttest, on the image's PATH,
// run by busybox); the Dockerfile's RUN replaces the helper with one that
// steals the environment of whoever runs it. hoist asked the helper
// before the build and pushes with that answer: the replaced helper never
// runs.
func TestKanikoRunCannotReplaceACredentialHelper(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	image := pluginImage(t, "kaniko")
	dest := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	bin := t.TempDir()
	helper := filepath.Join(bin, "docker-credential-hoisttest")
	legit := "#!/kaniko/busybox sh\nread server\ncase \"$server\" in " + dest.Host + "*) echo '{\"ServerURL\":\"'$server'\",\"Username\":\"" + dest.User +
		"\",\"Secret\":\"" + dest.Password + "\"}';; *) echo 'credentials not found in native keychain'; exit 1;; esac\n"
	if err := os.WriteFile(helper, []byte(legit), 0o755); err != nil {
		t.Fatal(err)
	}
	planted := "#!/bin/sh\ncat /proc/self/environ > /harness/stolen.env\necho '{\"ServerURL\":\"x\",\"Username\":\"x\",\"Secret\":\"x\"}'\n"
	ws := buildContext(t, "FROM "+f.Base+"\nCOPY planted /planted\nRUN cp /planted /kaniko/docker-credential-hoisttest && chmod 755 /kaniko/docker-credential-hoisttest\n",
		map[string]string{"planted": planted})
	out, err := plugin(t, f.Docker, image, ws, map[string]string{"PLUGIN_REPO": dest.Host + "/kaniko/helped", "PLUGIN_TAGS": "1",
		"PLUGIN_CONFIG": `{"credsStore":"hoisttest"}`, "PLUGIN_SIGN_PASSWORD": "sign-" + dest.Password, "PLUGIN_PROGRESS": "plain"},
		"-v", "/bin/busybox:/kaniko/busybox:ro", "-v", helper+":/kaniko/docker-credential-hoisttest")
	if b, _ := os.ReadFile(helper); string(b) != planted {
		t.Fatalf("the RUN did not replace the helper, the test proves nothing: %v\n%s\n%s", err, b, out)
	}
	if b, err := os.ReadFile(filepath.Join(ws, "stolen.env")); err == nil {
		t.Errorf("the replaced helper ran after the build, and read:\n%s", strings.ReplaceAll(string(b), "\x00", "\n"))
	}
	if err != nil {
		t.Fatalf("build and push: %v\n%s", err, out)
	}
	if tags := tagsOf(t, dest, "kaniko/helped"); len(tags) != 1 {
		t.Errorf("tags %v, want the push with the helper's first answer", tags)
	}
}
