package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
)

// attestations runs cosign download attestation on ref and returns what
// it printed with every DSSE payload decoded after it: all the
// attestations attached to the digest, as anyone who pulls them reads
// them.
func attestations(t *testing.T, reg *harness.Registry, ref string) string {
	t.Helper()
	out, err := reg.Cosign(t, "download", "attestation", ref)
	if err != nil {
		t.Fatalf("cosign download attestation %s: %v\n%s", ref, err, out)
	}
	all := out
	n := 0
	for _, line := range strings.Split(out, "\n") {
		var env struct {
			Payload string `json:"payload"`
		}
		if json.Unmarshal([]byte(line), &env) != nil || env.Payload == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			t.Fatalf("attestation payload: %v", err)
		}
		all += "\n" + string(b)
		n++
	}
	if n == 0 {
		t.Fatalf("cosign download attestation printed no attestation:\n%s", out)
	}
	return all
}

// assertPublished checks what is published: it holds every part of want
// (so the search below searches what it should), and none of secret.
func assertPublished(t *testing.T, what, published string, want, secret []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(published, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, published)
		}
	}
	for _, s := range secret {
		if strings.Contains(published, s) {
			t.Errorf("%s holds the secret %q:\n%s", what, s, published)
		}
	}
}

// Nothing secret rides into what a signing build publishes: the proxy
// variables (HTTPS_PROXY, HTTP_PROXY, and their HARNESS_ forms) reach the
// build (a RUN prints them: their passwords masked) but are recorded
// nowhere, not even in the image's history, which records the build
// arguments a RUN uses (PIP_INDEX_URL here); the CI's clone URL is
// recorded without its login, in the provenance and in the image's
// labels. (A build argument with a login is refused:
// TestKnownSecretInBuildArgOrLabelIsRefused.) The attestations are read
// back with cosign download attestation, the image's config with crane.
func TestNothingSecretIsPublished(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	key, _ := keyPair(t, "pw")
	const (
		proxyPass   = "proxy-s3cret-5521"
		harnessPass = "harness-proxy-s3cret-7710"
		gitPass     = "git-s3cret-3318"
	)
	ctxDir := buildContext(t, "FROM "+f.Base+"\nARG VERSION\nARG PIP_INDEX_URL\n"+
		"RUN echo \"proxies $HTTPS_PROXY $HTTP_PROXY\" && echo \"v$VERSION\" > /version\n", nil)
	for i, proxies := range [][]string{
		{"HTTPS_PROXY", "http://proxyuser:" + proxyPass + "@proxy.example:3128", "HARNESS_HTTP_PROXY", "http://harnessuser:" + harnessPass + "@proxy2.example:8080"},
		{"HARNESS_HTTPS_PROXY", "http://proxyuser:" + proxyPass + "@proxy.example:3128", "HTTP_PROXY", "http://harnessuser:" + harnessPass + "@proxy2.example:8080"},
	} {
		repo := fmt.Sprintf("%s/published%d/app", a.Host, i)
		r := mustPush(t, buildEnv(t, ctxDir, append([]string{"PLUGIN_REPO", repo, "PLUGIN_TAGS", "1",
			"PLUGIN_BUILD_ARGS", "VERSION=1.2.3,PIP_INDEX_URL=https://pypi.example/simple",
			"DRONE_REMOTE_URL", "https://gituser:" + gitPass + "@git.example.com/team/app.git", "DRONE_COMMIT_SHA", "4f1c2a9be07d5e6f8a9b0c1d2e3f4a5b6c7d8e9f",
			"PLUGIN_NO_CACHE", "true", "PLUGIN_SIGN", "true", "PLUGIN_SIGN_KEY", key, "PLUGIN_SIGN_PASSWORD", "pw", "PLUGIN_PROVENANCE", "true"}, proxies...)...))
		digest := digestOf(t, a, repo+":1")
		secrets := []string{proxyPass, harnessPass, gitPass, "proxyuser", "harnessuser", "gituser", "proxy.example", "proxy2.example"}
		assertPublished(t, "the attestations", attestations(t, a, repo+"@"+digest),
			[]string{`"PIP_INDEX_URL":"https://pypi.example/simple"`, `"VERSION":"1.2.3"`, `"repository":"https://git.example.com/team/app.git"`,
				`"org.opencontainers.image.source":"https://git.example.com/team/app.git"`, "git+https://git.example.com/team/app.git"},
			append(secrets, "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"))
		assertPublished(t, "the image's config", a.Crane(t, "config", repo+"@"+digest),
			[]string{`"org.opencontainers.image.source":"https://git.example.com/team/app.git"`, `"org.opencontainers.image.revision":"4f1c2a9be07d5e6f8a9b0c1d2e3f4a5b6c7d8e9f"`, "proxies $HTTPS_PROXY",
				"RUN |2 VERSION=1.2.3 PIP_INDEX_URL=https://pypi.example/simple"},
			secrets)
		assertPublished(t, "the output", r.stdout+r.stderr, []string{"signed " + repo + "@" + digest, "proxies http://proxyuser:****@proxy.example:3128 http://harnessuser:****@proxy2.example:8080"},
			[]string{proxyPass, harnessPass, gitPass})
	}
}

// A pipeline's secret, used as a build argument whose name says nothing
// of it, is known to the step before it is planned: the build step is
// refused (exit 2) before anything is built, naming the argument, since
// the image's history would publish it; nothing is pushed, and no output
// or report holds the secret.
func TestPipelineSecretIsNotPublished(t *testing.T) {
	const mirror, signPass = "mirror-s3cret-value-4471", "sign-pw-s3cret-0962"
	key, _ := keyPair(t, signPass)
	dir := checkout(t, map[string]string{"publish.yaml": `pipeline:
  identifier: publish
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
          cloneCodebase: true
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: base
                  type: Run
                  spec: {command: 'mkdir -p examples/pipelines/app/rootfs/bin && cp "$(command -v busybox)" examples/pipelines/app/rootfs/bin/busybox'}
              - step:
                  identifier: build
                  type: BuildAndPushDockerRegistry
                  spec:
                    connectorRef: c
                    repo: myorg/published
                    context: examples/pipelines/app
                    dockerfile: examples/pipelines/app/Dockerfile
                    tags: ["1"]
                    buildArgs: {MIRROR_LOGIN: '<+secrets.getValue("mirror")>', GREETING: hi}
                    envVariables:
                      PLUGIN_SIGN: "true"
                      PLUGIN_SIGN_KEY: ` + key + `
                      PLUGIN_SIGN_PASSWORD: '<+secrets.getValue("sign_pw")>'
                      PLUGIN_PROVENANCE: "true"
                      PLUGIN_DEBUG: "true"
`})
	secrets := filepath.Join(t.TempDir(), "s.env")
	os.WriteFile(secrets, []byte("mirror="+mirror+"\nsign_pw="+signPass+"\n"), 0o600)
	r, rep := pipelineRun(t, dir, pipelineEnv(t), "publish.yaml", "--local", "--keep", "--secrets", secrets)
	if r.code == 0 {
		t.Fatalf("the pipeline succeeded:\n%s", r)
	}
	if st := stepOf(t, rep, "build"); st.ExitCode != ExitSettings || len(st.Pushed) != 0 {
		t.Errorf("the build step: exit %d, pushed %v; want exit %d and nothing pushed", st.ExitCode, st.Pushed, ExitSettings)
	}
	if hub := localRegistry(t, rep, "index.docker.io"); len(tagsOf(t, hub, "myorg/published")) != 0 {
		t.Errorf("myorg/published was pushed")
	}
	report, _ := json.Marshal(rep)
	assertPublished(t, "the output and the report", r.stdout+r.stderr+string(report),
		[]string{"build argument MIRROR_LOGIN holds a secret of this step"}, []string{mirror, signPass})
}

// A RUN that prints a multi-line build secret (a file) and a PEM key
// given as a file path (PLUGIN_SIGN_KEY, which the build context happens
// to hold): BuildKit prefixes every line it prints, and no line of either
// (secretLines) reaches the output, while the RUN's other lines do.
func TestMultiLineSecretsInRunOutput(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	key, _ := keyPair(t, "pw")
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	multi := "[ci]\nuser = deploy-" + strconv.Itoa(os.Getpid()) + "\npassword = multi-line-s3cret-" + filepath.Base(t.TempDir()) + "\n  token: tok3n-on-its-own-line-8812\n}\n"
	secretFile := filepath.Join(t.TempDir(), "ci.ini")
	os.WriteFile(secretFile, []byte(multi), 0o600)
	ctxDir := buildContext(t, "FROM "+f.Base+"\nCOPY cosign.key /k\n"+
		"RUN --mount=type=secret,id=ml X=of-the-run && echo \"before-$X\" && cat /run/secrets/ml && cat /k && echo \"after-$X\"\n",
		map[string]string{"cosign.key": string(keyPEM)})
	r := mustPush(t, buildEnv(t, ctxDir, "PLUGIN_REPO", a.Host+"/masked/app", "PLUGIN_TAGS", "1",
		"PLUGIN_SECRETS_FROM_FILE", "ml="+secretFile,
		"PLUGIN_SIGN", "true", "PLUGIN_SIGN_KEY", filepath.Join(ctxDir, "cosign.key"), "PLUGIN_SIGN_PASSWORD", "pw"))
	// What the RUN printed (not its command line, which BuildKit shows
	// too) is in the output.
	assertContains(t, r, "before-of-the-run", "after-of-the-run", "signed "+a.Host+"/masked/app@")
	lines := append(secretLines(multi), secretLines(string(keyPEM))...)
	if len(lines) < 8 {
		t.Fatalf("the secrets have %d lines to search for", len(lines))
	}
	for _, l := range lines {
		if strings.Contains(r.stdout+r.stderr, l) {
			t.Errorf("a line of a secret is in the output: %q\n%s", l, r)
		}
	}
}

// secretLines are the lines of a multi-line secret that are masked on
// their own: trimmed, of 8 bytes (mask.MinLine) or more.
func secretLines(secret string) []string {
	var out []string
	for _, l := range strings.Split(secret, "\n") {
		if l = strings.TrimSpace(l); len(l) >= 8 {
			out = append(out, l)
		}
	}
	return out
}

// A planning error quoting a secret is masked: a malformed build argument
// holding the registry password.
func TestPlanningErrorIsMasked(t *testing.T) {
	t.Parallel()
	pass := secretPassword()
	r := hoist(t, map[string]string{"PLUGIN_REPO": "127.0.0.1:5/app", "PLUGIN_PASSWORD": pass, "PLUGIN_USERNAME": "u", "PLUGIN_REGISTRY": "127.0.0.1:5",
		"PLUGIN_BUILD_ARGS": "MY ARG=" + pass})
	if r.code != ExitSettings {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, `malformed build argument "MY ARG=****"`)
	assertNotContains(t, r, pass)
}

// A pipeline whose planning fails on a value from the secrets file prints
// the problem masked, and so does a scan step that names its image from
// a secret.
func TestPipelineErrorsAreMasked(t *testing.T) {
	const mode, image = "s3cret-mode-value-6120", "s3cret-image-name-8845"
	dir := checkout(t, map[string]string{"plan.yaml": `pipeline:
  identifier: plan
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: scan
                  type: AquaTrivy
                  spec:
                    mode: '<+secrets.getValue("mode")>'
                    config: default
                    target: {type: container, name: app, variant: "1"}
                    image: {type: docker_v2, domain: docker.io, name: myorg/app, tag: "1"}
`, "scan.yaml": `pipeline:
  identifier: scanstep
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: scan
                  type: AquaTrivy
                  spec:
                    mode: orchestration
                    config: default
                    target: {type: container, name: app, variant: "1"}
                    image: {type: docker_v2, domain: docker.io, name: '<+secrets.getValue("image")>', tag: "1"}
`})
	secrets := filepath.Join(t.TempDir(), "s.env")
	os.WriteFile(secrets, []byte("mode="+mode+"\nimage="+image+"\n"), 0o600)
	r := hoistIn(t, dir, pipelineEnv(t), "pipeline", "run", "plan.yaml", "--local", "--secrets", secrets)
	if r.code != ExitSettings {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitSettings, r)
	}
	assertContains(t, r, `.mode "****": hoist runs the scan itself`)
	assertNotContains(t, r, mode)

	r, rep := pipelineRun(t, dir, pipelineEnv(t), "scan.yaml", "--local", "--secrets", secrets)
	if r.code != ExitSource {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitSource, r)
	}
	assertContains(t, r, "[s.scan] scanning docker_v2 docker.io/****:1", "[s.scan] failed (exit 3)")
	assertNotContains(t, r, image)
	b, _ := json.Marshal(rep)
	if !strings.Contains(string(b), `"error":"`) || strings.Contains(string(b), image) {
		t.Errorf("the report: %s", b)
	}
}

// Trivy gets of the step's environment only what it needs: a wrapper on
// PLUGIN_SCAN_TRIVY writes the environment it is given, then runs the
// real Trivy; the registry password, a cloud key, a signing key's
// password, a proxy's login and the database's login (hoist fetches the
// database; Trivy runs offline) in the step's environment are not in it.
func TestTrivyEnvironmentHoldsNoSecret(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	dir := t.TempDir()
	dump := filepath.Join(dir, "trivy.env")
	wrapper := filepath.Join(dir, "trivy")
	os.WriteFile(wrapper, []byte("#!/bin/sh\nenv >> "+dump+"\nexec "+k.Trivy+" \"$@\"\n"), 0o755)
	r := mustPush(t, scanEnv(t, k, "PLUGIN_PUSH_ONLY", "true", "PLUGIN_SOURCE_TAR_PATH", f.DockerSave,
		"PLUGIN_REPO", reg.Host+"/scanned/app", "PLUGIN_TAGS", "1",
		"PLUGIN_REGISTRY", reg.Host, "PLUGIN_USERNAME", reg.User, "PLUGIN_PASSWORD", reg.Password,
		"PLUGIN_SCAN", "true", "PLUGIN_SCAN_TRIVY", wrapper, "PLUGIN_SCAN_SCANNERS", "vuln,secret",
		"AWS_SECRET_ACCESS_KEY", "aws-s3cret-key-1177", "PLUGIN_SIGN_PASSWORD", "sign-pw-3391",
		"PATH", "/usr/bin:/bin", "TRIVY_USERNAME", "db-user", "TRIVY_PASSWORD", "db-pass-for-trivy-5092",
		"HTTPS_PROXY", "http://proxy-user:proxy-pw-7731@127.0.0.1:9"))
	assertPushed(t, r, reg, reg.Host+"/scanned/app:1")
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatalf("the wrapper never ran: %v", err)
	}
	env := string(b)
	// The database's login is hoist's to use (masked in its output),
	// not Trivy's.
	assertNotContains(t, r, "db-pass-for-trivy-5092")
	for _, want := range []string{"TRIVY_DISABLE_VEX_NOTICE=true", "PATH=/usr/bin:/bin"} {
		if !strings.Contains(env, want) {
			t.Errorf("Trivy's environment lacks %s:\n%s", want, env)
		}
	}
	for _, bad := range []string{"PLUGIN_PASSWORD", reg.Password, "AWS_SECRET_ACCESS_KEY", "aws-s3cret-key-1177", "sign-pw-3391", "PLUGIN_",
		"TRIVY_USERNAME", "db-pass-for-trivy-5092", "HTTPS_PROXY", "proxy-pw-7731"} {
		if strings.Contains(env, bad) {
			t.Errorf("Trivy's environment holds %q:\n%s", bad, env)
		}
	}
}

// echoFront stands in front of a registry (target) and answers every
// manifest PUT with an error quoting the request's Authorization header
// and token, as a registry's error body may; everything else is passed
// on. An ACR token exchange is passed on for the registry it fronts.
func echoFront(t *testing.T, target *url.URL, token string) string {
	t.Helper()
	rp := httputil.NewSingleHostReverseProxy(target)
	var host string
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/"):
			io.Copy(io.Discard, req.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"errors":[{"code":"MANIFEST_INVALID","message":"denied for %s (token %s, %s)"}]}`, req.Header.Get("Authorization"), token, url.QueryEscape(token))
			return
		case req.URL.Path == "/oauth2/exchange":
			body, _ := io.ReadAll(req.Body)
			form, _ := url.ParseQuery(string(body))
			if form.Get("service") == host {
				form.Set("service", target.Host)
			}
			b := form.Encode()
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(b)), int64(len(b))
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(echo.Close)
	host = strings.TrimPrefix(echo.URL, "http://")
	return host
}

// The tokens of the cloud logins (ECR, GAR with a service-account key,
// ACR), obtained at run time, are masked in every byte hoist writes: a
// registry echoes the Authorization header and the token in its error.
// One destination fails there, another succeeds, so that the output files
// are written, and searched.
func TestCloudLoginTokensMasked(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	for _, kind := range []string{"ecr", "gar", "acr"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ok := harness.StartRegistry(t, harness.RegistryOptions{})
			var env map[string]string
			var tokens []string
			switch kind {
			case "ecr":
				aws, reg := ecrSetup(t)
				target, _ := url.Parse(reg.URL())
				host := echoFront(t, target, aws.Password)
				aws.Registry = host
				aws.AddRepository("cloud/app")
				env = map[string]string{"PLUGIN_REGISTRY_TYPE": "ecr", "PLUGIN_REGISTRY": host, "PLUGIN_REGION": aws.Region,
					"PLUGIN_ECR_ENDPOINT": aws.URL, "PLUGIN_STS_ENDPOINT": aws.URL, "PLUGIN_REPO": "cloud/app",
					"PLUGIN_ACCESS_KEY": aws.AccessKey, "PLUGIN_SECRET_KEY": aws.SecretKey}
				tokens = []string{aws.Password, b64("AWS:" + aws.Password), aws.SecretKey}
			case "gar":
				g, reg := googleSetup(t)
				target, _ := url.Parse(reg.URL())
				host := echoFront(t, target, g.AccessToken)
				env = map[string]string{"PLUGIN_REGISTRY_TYPE": "gar", "PLUGIN_REGISTRY": host + "/hoist-test/", "PLUGIN_REPO": "cloud/app", "PLUGIN_JSON_KEY": g.KeyFile}
				tokens = []string{g.AccessToken, b64("oauth2accesstoken:" + g.AccessToken)}
			case "acr":
				aad := harness.StartAzure(t)
				reg, refresh := harness.StartACR(t, aad)
				target, _ := url.Parse(reg.URL())
				host := echoFront(t, target, refresh)
				env = map[string]string{"PLUGIN_REGISTRY_TYPE": "acr", "PLUGIN_REPO": host + "/cloud/app", "AZURE_AUTHORITY_HOST": aad.URL,
					"PLUGIN_REGISTRY_CERTIFICATE": aad.CAFile, "TENANT_ID": aad.TenantID, "CLIENT_ID": aad.ClientID, "CLIENT_SECRET": aad.Secret}
				tokens = []string{refresh, b64("00000000-0000-0000-0000-000000000000:" + refresh), aad.Secret}
			}
			dir := t.TempDir()
			outs := map[string]string{"DRONE_OUTPUT": filepath.Join(dir, "drone.env"), "PLUGIN_DIGEST_FILE": filepath.Join(dir, "digest"), "PLUGIN_ARTIFACT_FILE": filepath.Join(dir, "artifact.json")}
			r := hoist(t, merged(map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_TAGS": "1",
				"PLUGIN_DESTINATIONS": ok.Host + "/cloud/app:1", "PLUGIN_DEBUG": "true"}, outs, env))
			if r.code != ExitPush {
				t.Errorf("exit %d, want %d:\n%s", r.code, ExitPush, r)
			}
			digest := digestOf(t, ok, ok.Host+"/cloud/app:1")
			assertContains(t, r, "denied for Basic ****", "(token ****, ****)", "debug: ", "1 of 2 destination(s) failed")
			written := writtenFiles(t, outs, digest, ok.Host+"/cloud/app:1")
			for _, tok := range tokens {
				for _, form := range []string{tok, url.QueryEscape(tok)} {
					if strings.Contains(r.stdout+r.stderr+written, form) {
						t.Errorf("a token is written, as %q:\n%s\n%s", form, r, written)
					}
				}
			}
		})
	}
}

// writtenFiles reads the output files, each of which must exist and name
// the pushed reference or digest, and returns their content.
func writtenFiles(t *testing.T, outs map[string]string, digest, ref string) string {
	t.Helper()
	var all bytes.Buffer
	for k, p := range outs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("%s was not written: %v", k, err)
			continue
		}
		if !bytes.Contains(b, []byte(digest)) && !bytes.Contains(b, []byte(ref)) {
			t.Errorf("%s names neither %s nor %s: %s", k, ref, digest, b)
		}
		all.Write(b)
	}
	return all.String()
}
