package cli

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/pipeline"
)

// checkout is a git checkout holding the repository's examples/ (the
// example pipelines and their app), committed, as a user's would be.
func checkout(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(harness.ModuleRoot(), "examples")
	if out, err := exec.Command("cp", "-r", src, filepath.Join(dir, "examples")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for n, c := range extra {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "app"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

// pipelineEnv is hoist's environment for a pipeline run: this machine's
// PATH and home, the shared engine, the test Docker daemon and the scan
// kit's database.
func pipelineEnv(t *testing.T, kv ...string) map[string]string {
	t.Helper()
	f := harness.Inputs(t)
	k := harness.Scan(t)
	dir, _ := harness.SharedEngine(t)
	env := map[string]string{
		"PATH": filepath.Join(harness.ModuleRoot(), "bin") + ":" + os.Getenv("PATH"), "HOME": t.TempDir(),
		"PLUGIN_ENGINE_DIR": dir, "DOCKER_HOST": f.Docker.Host,
		"PLUGIN_SCAN_TRIVY": k.Trivy, "PLUGIN_SCAN_CACHE_DIR": t.TempDir(), "PLUGIN_SCAN_DB_REPOSITORY": k.DBRef,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

// pipelineRun runs hoist pipeline run in dir and reads its report.
func pipelineRun(t *testing.T, dir string, env map[string]string, args ...string) (result, *pipeline.Report) {
	t.Helper()
	rep := filepath.Join(t.TempDir(), "report.json")
	r := hoistIn(t, dir, env, append([]string{"pipeline", "run", "--report", rep}, args...)...)
	var report pipeline.Report
	b, err := os.ReadFile(rep)
	if err == nil {
		err = json.Unmarshal(b, &report)
	}
	if err != nil {
		t.Fatalf("report: %v\n%s", err, r)
	}
	// The local registries --keep left running were started by this
	// test's hoist: end them by their PIDs.
	t.Cleanup(func() {
		for _, reg := range report.Registries {
			if reg.PID > 0 {
				syscall.Kill(reg.PID, syscall.SIGTERM)
			}
		}
	})
	return r, &report
}

// step is a step of the report.
func stepOf(t *testing.T, rep *pipeline.Report, id string) *pipeline.StepReport {
	t.Helper()
	for _, s := range rep.Steps {
		if s.Identifier == id {
			return s
		}
	}
	t.Fatalf("no step %s in the report", id)
	return nil
}

// localRegistry is the report's local registry for host, as a test
// registry crane can read.
func localRegistry(t *testing.T, rep *pipeline.Report, host string) *harness.Registry {
	t.Helper()
	for _, r := range rep.Registries {
		if r.Host == host {
			return &harness.Registry{Host: r.Addr}
		}
	}
	t.Fatalf("no local registry for %s in %+v", host, rep.Registries)
	return nil
}

// assertHold reads every reference the steps pushed back from its local
// registry with crane: each holds the manifest want, so all hold the
// same one, and that manifest's config is imageID, the image ID read
// from the build's own output by another tool than hoist (imageIDOf:
// skopeo on the tarball or the workspace store, or the Docker daemon).
// want is read from the build's output too (digestOf: skopeo) where it
// holds the registry's manifest: an OCI layout, and hoist's docker
// tarballs, which carry their OCI index beside manifest.json. A plain
// docker-archive (Kaniko's) holds no registry manifest (skopeo would
// make one of its own), nor does the daemon: there want is hoist's own
// (the scan record's digest, or a step's report), and the image ID is
// what ties the registries' bytes to the build.
func assertHold(t *testing.T, rep *pipeline.Report, want, imageID string, ids ...string) {
	t.Helper()
	if !strings.HasPrefix(imageID, "sha256:") {
		t.Fatalf("the build's image ID %q: the test proves nothing", imageID)
	}
	for _, id := range ids {
		s := stepOf(t, rep, id)
		if len(s.Pushed) == 0 {
			t.Errorf("step %s pushed nothing", id)
		}
		for _, p := range s.Pushed {
			host, path, _ := strings.Cut(p.Ref, "/")
			reg := localRegistry(t, rep, host)
			if got := reg.Digest(t, reg.Host+"/"+path); got != want {
				t.Errorf("%s: %s holds %s, want %s", id, p.Ref, got, want)
			}
			if got := imageIDAt(t, reg, reg.Host+"/"+path); got != imageID {
				t.Errorf("%s: %s holds the image %s, the build made %s", id, p.Ref, got, imageID)
			}
		}
	}
}

// imageIDOf is the image ID (the digest of the image's config) of an
// image archive or layout as skopeo reads it, not hoist: transport is
// docker-archive:PATH, oci-archive:PATH or oci:DIR:REF. Compression does
// not change it.
func imageIDOf(t *testing.T, transport string) string {
	t.Helper()
	raw := harness.Run(t, nil, "skopeo", "inspect", "--config", "--raw", transport)
	h, _, err := v1.SHA256(strings.NewReader(raw))
	if err != nil || raw == "" {
		t.Fatalf("the config of %s: %v %q", transport, err, raw)
	}
	return h.String()
}

// manifestDigestOf is the digest of the manifest an OCI archive or
// layout holds, as skopeo reads it: transport is oci-archive:PATH (a
// hoist docker tarball too) or oci:DIR:REF.
func manifestDigestOf(t *testing.T, transport string) string {
	t.Helper()
	d := strings.TrimSpace(harness.Run(t, nil, "skopeo", "inspect", "--format", "{{.Digest}}", transport))
	if !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("the manifest digest of %s: %q", transport, d)
	}
	return d
}

// imageIDAt is the image ID the manifest of ref names, read by crane.
func imageIDAt(t *testing.T, reg *harness.Registry, ref string) string {
	t.Helper()
	var m v1.Manifest
	if err := json.Unmarshal([]byte(reg.Crane(t, "manifest", ref)), &m); err != nil {
		t.Fatalf("the manifest of %s: %v", ref, err)
	}
	return m.Config.Digest.String()
}

// The document's workflows on BuildKit (runtime: Cloud), each against
// local registries standing in for Docker Hub, ECR, GAR and ACR: every
// registry, read back with crane, holds the digest the build step
// reported and the scan recorded; the image pulled back runs.
func TestPipelineLocalBuildKit(t *testing.T) {
	f := harness.Inputs(t)
	dir := checkout(t, nil)
	env := pipelineEnv(t)

	t.Run("build-scan-push", func(t *testing.T) {
		r, rep := pipelineRun(t, dir, env, "examples/pipelines/build-scan-push.yaml", "--local", "--keep")
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		build := stepOf(t, rep, "BuildOnly")
		if !strings.HasPrefix(build.Digest, "sha256:") || len(build.Tarballs) != 1 {
			t.Fatalf("build step %+v", build)
		}
		scanned := stepOf(t, rep, "AquaTrivy_1")
		var rec struct {
			Digest string            `json:"digest"`
			Passed bool              `json:"passed"`
			Labels map[string]string `json:"labels"`
		}
		b, err := os.ReadFile(scanned.ScanRecords[0])
		if err != nil || json.Unmarshal(b, &rec) != nil || rec.Digest != build.Digest || !rec.Passed ||
			rec.Labels["target"] != "test-image" || rec.Labels["variant"] != "new-"+itoa(rep.Sequence) {
			t.Errorf("scan record %s (%v): %s, build %s", scanned.ScanRecords, err, b, build.Digest)
		}
		// The registries hold the image of the build's tarball as
		// skopeo reads it, which is the digest scanned and the one the
		// build reported.
		tar := build.Tarballs[0]
		want := manifestDigestOf(t, "oci-archive:"+tar)
		if rec.Digest != want {
			t.Errorf("the scan record says %s, the tarball holds %s", rec.Digest, want)
		}
		assertHold(t, rep, want, imageIDOf(t, "docker-archive:"+tar), "push_ecr", "push_docker")
		hub := localRegistry(t, rep, "index.docker.io")
		if got := f.Docker.RunImage(t, hub.Host+"/myorg/test-image:latest"); got != "hello from an image built once, scanned, and pushed" {
			t.Errorf("the pushed image prints %q", got)
		}
		assertContains(t, r, "hoist: local registry for 123456789012.dkr.ecr.us-east-1.amazonaws.com at 127.0.0.1:",
			"accepted, not acted on: pipeline.orgIdentifier, pipeline.projectIdentifier",
			"[build_scan_push.push_ecr] pushed 123456789012.dkr.ecr.us-east-1.amazonaws.com/test-image:new-",
			"STAGE            STEP         STATUS   SECONDS  DIGEST")
		if rep.Status != "Success" || rep.Sequence < 1 {
			t.Errorf("report status %s sequence %d", rep.Status, rep.Sequence)
		}
	})

	t.Run("tar-push", func(t *testing.T) {
		r, rep := pipelineRun(t, dir, env, "examples/pipelines/tar-push.yaml", "--local", "--keep")
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		// Four builds of one Dockerfile: one image, four tarballs, as
		// skopeo reads them; each build reported it.
		want := manifestDigestOf(t, "oci-archive:"+stepOf(t, rep, "BuildDocker").Tarballs[0])
		for _, k := range []string{"GAR", "ECR", "Docker", "ACR"} {
			build := stepOf(t, rep, "Build"+k)
			if d := manifestDigestOf(t, "oci-archive:"+build.Tarballs[0]); d != want || build.Digest != want {
				t.Errorf("Build%s's tarball holds %s and it reported %s, BuildDocker's holds %s", k, d, build.Digest, want)
			}
			assertHold(t, rep, want, imageIDOf(t, "docker-archive:"+build.Tarballs[0]), "Push"+k)
		}
		if len(rep.Registries) != 4 {
			t.Errorf("registries %+v, want Docker Hub, ECR, GAR and ACR", rep.Registries)
		}
	})

	t.Run("multi-registry", func(t *testing.T) {
		r, rep := pipelineRun(t, dir, env, "examples/pipelines/multi-registry.yaml", "--local", "--keep")
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		// PLUGIN_BUILDX_LOAD: the build is in the daemon too, which
		// reads its image ID (the daemon keeps no registry manifest: the
		// digest is the build step's report).
		loaded := strings.TrimSpace(f.Docker.Run(t, "image", "inspect", "--format", "{{.Id}}", "myorg/myapp:new-no-push-"+itoa(rep.Sequence)))
		want := stepOf(t, rep, "build_only").Digest
		assertHold(t, rep, want, loaded, "BuildAndPushDockerRegistry_2", "BuildAndPushECR_1", "BuildAndPushGAR_1", "BuildAndPushACR_1")
	})

	t.Run("push-only and build-only", func(t *testing.T) {
		r, rep := pipelineRun(t, dir, env, "examples/pipelines/push-only.yaml", "--local", "--keep")
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		// The push-only steps take the build from the stage's workspace
		// image store, which skopeo reads.
		store := "oci:" + filepath.Join(rep.Workspace, "build_push", ".hoist", "images") + ":index.docker.io/myorg/myapp:new-nopush-" + itoa(rep.Sequence) + "-build-x"
		want := manifestDigestOf(t, store)
		if d := stepOf(t, rep, "BuildAndPushDockerRegistry_1").Digest; d != want {
			t.Errorf("the build reported %s, the store holds %s", d, want)
		}
		assertHold(t, rep, want, imageIDOf(t, store), "BuildAndPushDockerRegistry_2", "BuildAndPushECR_1")
		r, rep = pipelineRun(t, dir, env, "examples/pipelines/build-only.yaml", "--local")
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		if len(rep.Registries) != 0 || len(stepOf(t, rep, "BuildAndPushDockerRegistry_1").Pushed) != 0 {
			t.Errorf("build-only pushed: %+v", rep)
		}
		assertContains(t, r, "[build.check] manifest.json")
	})
}

const failingPipeline = `pipeline:
  identifier: failing
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
                  identifier: build
                  type: BuildAndPushDockerRegistry
                  spec:
                    connectorRef: hub
                    repo: team/broken
                    context: broken
                    dockerfile: broken/Dockerfile
                    tags: ["1"]
                    envVariables: {PLUGIN_NO_PUSH: "true", PLUGIN_TAR_PATH: broken.tar}
              - step:
                  identifier: push
                  type: BuildAndPushDockerRegistry
                  spec:
                    connectorRef: hub
                    repo: team/broken
                    tags: ["1"]
                    envVariables: {PLUGIN_PUSH_ONLY: "true", PLUGIN_SOURCE_TAR_PATH: broken.tar}
              - parallel:
                  - step:
                      identifier: on_failure
                      type: Run
                      when: {stageStatus: Failure}
                      spec:
                        command: echo "cleaning up after <+stage.identifier>"
                  - step:
                      identifier: always
                      type: Run
                      when: {stageStatus: All}
                      spec:
                        command: echo "always runs"
                  - step:
                      identifier: not_main
                      type: Run
                      when:
                        stageStatus: All
                        condition: <+codebase.branch> != "main"
                      spec:
                        command: echo "never printed"
    - stage:
        identifier: after
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: later, type: Run, spec: {command: echo later}}
`

const gatePipeline = `pipeline:
  identifier: gate
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
                  identifier: build
                  type: BuildAndPushECR
                  spec:
                    connectorRef: aws
                    region: eu-west-3
                    account: "123456789012"
                    imageName: dirty
                    context: dirty
                    dockerfile: dirty/Dockerfile
                    tags: ["1"]
                    envVariables: {PLUGIN_NO_PUSH: "true", PLUGIN_TAR_PATH: /harness/dirty.tar}
              - step:
                  identifier: scan
                  type: AquaTrivy
                  spec:
                    mode: orchestration
                    config: default
                    target: {type: container, name: dirty, variant: "1", workspace: /harness/dirty.tar}
                    image: {type: local_archive}
                    advanced: {fail_on_severity: high}
              - step:
                  identifier: push
                  type: BuildAndPushECR
                  spec:
                    connectorRef: aws
                    region: eu-west-3
                    account: "123456789012"
                    imageName: dirty
                    tags: ["1"]
                    envVariables: {PLUGIN_PUSH_ONLY: "true", PLUGIN_SOURCE_TAR_PATH: /harness/dirty.tar}
`

// Failure paths: a failing build skips the Success steps after it, runs
// the Failure and All steps (not one whose condition is false), skips the
// next stage, and hoist exits with the build's code; a scan that fails
// the gate stops the pushes: the registry stays empty.
func TestPipelineFailures(t *testing.T) {
	k := harness.Scan(t)
	dir := checkout(t, map[string]string{
		"broken/Dockerfile": "FROM scratch\nCOPY missing.txt /\n",
		"dirty/Dockerfile":  "FROM scratch\nCOPY config.env /app/config.env\n",
		"dirty/config.env":  "GITHUB_TOKEN=" + k.Secret + "\n",
		"failing.yaml":      failingPipeline,
		"gate.yaml":         gatePipeline,
	})
	env := pipelineEnv(t)

	r, rep := pipelineRun(t, dir, env, "failing.yaml", "--local")
	if r.code != ExitBuild {
		t.Errorf("exit %d, want the build's %d:\n%s", r.code, ExitBuild, r)
	}
	for id, want := range map[string]string{"build": "Failed", "push": "Skipped", "on_failure": "Success", "always": "Success", "not_main": "Skipped", "later": "Skipped"} {
		if s := stepOf(t, rep, id); s.Status != want {
			t.Errorf("step %s: %s, want %s", id, s.Status, want)
		}
	}
	if s := stepOf(t, rep, "build"); s.ExitCode != ExitBuild || len(s.Tarballs) != 0 || !strings.Contains(s.Error, "missing.txt") {
		t.Errorf("build step %+v", s)
	}
	assertContains(t, r, "[s.on_failure] cleaning up after s", "[s.always] always runs", `its condition "<+codebase.branch> != \"main\"" is false`,
		"stage after skipped: an earlier step failed", "step failed: pipeline failing: step s.build failed")
	assertNotContains(t, r, "never printed\n")
	if _, err := os.Stat(filepath.Join(dir, "broken.tar")); err == nil {
		t.Errorf("the run wrote into the checkout")
	}

	r, rep = pipelineRun(t, dir, env, "gate.yaml", "--local", "--keep")
	if r.code != ExitScan {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitScan, r)
	}
	if s := stepOf(t, rep, "scan"); s.Status != "Failed" || s.ExitCode != ExitScan || len(s.ScanRecords) != 1 {
		t.Errorf("scan step %+v", s)
	}
	if s := stepOf(t, rep, "push"); s.Status != "Skipped" {
		t.Errorf("push step %+v", s)
	}
	reg := localRegistry(t, rep, "123456789012.dkr.ecr.eu-west-3.amazonaws.com")
	if got := reg.Crane(t, "catalog", reg.Host); strings.TrimSpace(got) != "" {
		t.Errorf("the registry holds %q after a failed gate", got)
	}
	assertContains(t, r, "FAILED", "github-pat")
	assertNotContains(t, r, k.Secret)
}

// The multi-registry workflow against registries that demand their
// clouds' logins: Docker Hub, ECR, GAR and ACR stand-ins (TLS, the
// registry-kinds tests' identity stand-ins), reached by their real host
// names through --route (curl's --resolve), the credentials from a
// connectors file and a secrets file. Each registry, read back with crane
// and its own login, holds the build's digest; no secret is printed.
func TestPipelineConnectors(t *testing.T) {
	const (
		ecrHost = "123456789012.dkr.ecr.eu-west-3.amazonaws.com"
		garHost = "europe-west1-docker.pkg.dev"
		acrHost = "hoistreg.azurecr.io"
		hubHost = "index.docker.io"
	)
	loop := func(reg *harness.Registry) string { return "127.0.0.1" + reg.Host[strings.LastIndex(reg.Host, ":"):] }
	hub := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, TLS: true, Names: []string{hubHost}})
	aws := harness.StartAWS(t, "eu-west-3")
	aws.Password = "ecr-token-" + strings.Repeat("p", 12)
	aws.Registry = ecrHost
	aws.AddRepository("myapp")
	ecrReg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "AWS", Password: aws.Password, TLS: true, Names: []string{ecrHost}})
	g := harness.StartGoogle(t)
	garReg := harness.StartRegistry(t, harness.RegistryOptions{Auth: true, User: "oauth2accesstoken", Password: g.AccessToken, TLS: true, Names: []string{garHost}})
	key, _ := os.ReadFile(g.KeyFile)
	aad := harness.StartAzure(t)
	acrReg, _ := harness.StartACRNamed(t, aad, acrHost)

	dir := checkout(t, map[string]string{
		"connectors.yaml": `connectors:
  DOCKER_CONNECTOR:
    type: docker
    url: https://index.docker.io/v1/
    username: ` + hub.User + `
    password: <+secrets.getValue("hub_password")>
    certificate: ` + hub.CAFile + `
  AWS_CONNECTOR:
    type: aws
    accessKey: ` + aws.AccessKey + `
    secretKey: <+secrets.getValue("aws_secret_key")>
    ecrEndpoint: ` + aws.URL + `
    certificate: ` + ecrReg.CAFile + `
  GCP_CONNECTOR:
    type: gcp
    jsonKey: <+secrets.getValue("gcp_key")>
    certificate: ` + garReg.CAFile + `
  AZURE_CONNECTOR:
    type: azure
    tenantId: ` + aad.TenantID + `
    clientId: ` + aad.ClientID + `
    clientSecret: <+secrets.getValue("azure_secret")>
    authorityHost: ` + aad.URL + `
    env:
      PLUGIN_REGISTRY_CERTIFICATE: <+secrets.getValue("azure_cas")>
`,
	})
	cas := ""
	for _, p := range []string{aad.CAFile, acrReg.CAFile} {
		b, _ := os.ReadFile(p)
		cas += string(b)
	}
	secrets := filepath.Join(t.TempDir(), "secrets.env")
	os.WriteFile(secrets, []byte("hub_password="+hub.Password+"\naws_secret_key="+aws.SecretKey+"\ngcp_key="+b64(string(key))+"\nazure_secret="+aad.Secret+"\n"), 0o600)
	env := pipelineEnv(t, "azure_cas", cas)
	r, rep := pipelineRun(t, dir, env, "examples/pipelines/multi-registry.yaml", "--connectors", "connectors.yaml", "--secrets", secrets,
		"--route", hubHost+"=https://"+hub.Host, "--route", ecrHost+"=https://"+ecrReg.Host, "--route", garHost+"=https://"+garReg.Host,
		"--route", acrHost+"=https://"+loop(acrReg))
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	want := stepOf(t, rep, "build_only").Digest
	seq := itoa(rep.Sequence)
	for _, c := range []struct {
		step string
		reg  *harness.Registry
		ref  string
	}{
		{"BuildAndPushDockerRegistry_2", hub, hub.Host + "/myorg/myapp:new-no-push-" + seq},
		{"BuildAndPushECR_1", ecrReg, ecrReg.Host + "/myapp:new-no-push-" + seq},
		{"BuildAndPushGAR_1", garReg, garReg.Host + "/hoist-test/images/myapp:new-no-push-" + seq},
	} {
		if got := c.reg.Digest(t, c.ref); got != want {
			t.Errorf("%s: %s holds %s, the build made %s", c.step, c.ref, got, want)
		}
		if s := stepOf(t, rep, c.step); len(s.Pushed) != 1 || s.Pushed[0].Digest != want {
			t.Errorf("%s report %+v", c.step, s)
		}
	}
	acr := *acrReg
	acr.Host = loop(acrReg)
	if got := acr.Digest(t, acr.Host+"/team/myapp:new-no-push-"+seq); got != want {
		t.Errorf("ACR holds %s, the build made %s", got, want)
	}
	if aws.CallCount("GetAuthorizationToken") != 1 {
		t.Errorf("ECR token calls %v", aws.Calls)
	}
	assertContains(t, r, "registry kind: ecr (PLUGIN_REGISTRY names "+ecrHost+")", "registry kind: acr", "registry kind: gar")
	assertNotContains(t, r, hub.Password, aws.SecretKey, aws.Password, g.AccessToken, aad.Secret, b64(string(key)))
}

// The document's Kubernetes workflows: each Build and Push step runs in
// hoist's Kaniko plugin image, as a cluster runs it (the workspace at
// /harness, the pod's variables); the scan runs here on the same
// tarball. Kaniko builds are not reproducible across builds, so each push
// is checked against its own build: the tarball's image, as skopeo reads
// it, is what each registry holds, read back with crane.
func TestPipelineKubernetes(t *testing.T) {
	image := pluginImage(t, "kaniko")
	dir := checkout(t, nil)
	env := pipelineEnv(t)

	r, rep := pipelineRun(t, dir, env, "examples/pipelines/build-scan-push-k8s.yaml", "--local", "--keep", "--kaniko-image", image)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	build, scanned := stepOf(t, rep, "BuildOnly"), stepOf(t, rep, "AquaTrivy_1")
	if len(build.Tarballs) != 1 || !strings.HasPrefix(scanned.Digest, "sha256:") {
		t.Fatalf("build %+v scan %+v", build, scanned)
	}
	// Kaniko's tarball is a plain docker-archive: the registries hold
	// the digest scanned and the tarball's image ID.
	assertHold(t, rep, scanned.Digest, imageIDOf(t, "docker-archive:"+build.Tarballs[0]), "push_ecr", "push_docker")
	for _, id := range []string{"push_ecr", "push_docker"} {
		if s := stepOf(t, rep, id); s.Digest != scanned.Digest {
			t.Errorf("%s reported %s, the scan %s", id, s.Digest, scanned.Digest)
		}
	}
	assertContains(t, r, "[build_scan_push.BuildOnly] build tool: kaniko (PLUGIN_BUILD_TOOL says so)", "[build_scan_push.BuildOnly] time=")
	hub := localRegistry(t, rep, "index.docker.io")
	if got := harness.Inputs(t).Docker.RunImage(t, hub.Host+"/myorg/test-image:latest"); got != "hello from an image built once, scanned, and pushed" {
		t.Errorf("the pushed image prints %q", got)
	}

	r, rep = pipelineRun(t, dir, env, "examples/pipelines/tar-push-k8s.yaml", "--local", "--keep", "--kaniko-image", image)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	for _, k := range []string{"GAR", "ECR", "Docker", "ACR"} {
		push, build := stepOf(t, rep, "Push"+k), stepOf(t, rep, "Build"+k)
		if len(build.Tarballs) != 1 {
			t.Errorf("Build%s wrote no tarball", k)
			continue
		}
		// Each push holds its own build's image (its tarball's image
		// ID, as skopeo reads it), under the digest the push reported.
		assertHold(t, rep, push.Digest, imageIDOf(t, "docker-archive:"+build.Tarballs[0]), "Push"+k)
	}
}

// --isolation container: the Cloud pipeline's Build and Push steps run in
// hoist's BuildKit plugin image with exactly a runner's environment: the
// same pipeline proves the plugin image.
func TestPipelineIsolationContainer(t *testing.T) {
	image := pluginImage(t, "buildkit")
	dir := checkout(t, nil)
	r, rep := pipelineRun(t, dir, pipelineEnv(t), "examples/pipelines/build-scan-push.yaml", "--local", "--keep", "--isolation", "container", "--buildkit-image", image)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	tar := stepOf(t, rep, "BuildOnly").Tarballs[0]
	want := manifestDigestOf(t, "oci-archive:"+tar)
	if scanned := stepOf(t, rep, "AquaTrivy_1"); scanned.Digest != want {
		t.Errorf("scanned %s, the tarball holds %s", scanned.Digest, want)
	}
	assertHold(t, rep, want, imageIDOf(t, "docker-archive:"+tar), "push_ecr", "push_docker")
	assertContains(t, r, "[build_scan_push.BuildOnly] build tool: buildkit", "engine: started buildkitd")
}

// Ctrl-C stops every running step (a Run step's whole process group) and
// the local registries, and hoist exits 130 promptly.
func TestPipelineCancel(t *testing.T) {
	dir := checkout(t, map[string]string{"slow.yaml": `pipeline:
  identifier: slow
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - parallel:
                  - step: {identifier: sleeper, type: Run, spec: {command: 'echo $$ > sleeper.pid; echo started; sleep 120; echo woke'}}
                  - step:
                      identifier: push
                      type: BuildAndPushDockerRegistry
                      when: {stageStatus: All}
                      spec: {connectorRef: c, repo: team/app, tags: ["1"], envVariables: {PLUGIN_PUSH_ONLY: "true", PLUGIN_SOURCE_TAR_PATH: none.tar}}
              - step: {identifier: after, type: Run, spec: {command: echo after}}
`})
	env := pipelineEnv(t)
	ws := filepath.Join(t.TempDir(), "ws")
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		for i := 0; i < 300 && !strings.Contains(stderr.String(), "[s.sleeper] started"); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
	}()
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	start := time.Now()
	code := Main(ctx, []string{"pipeline", "run", "slow.yaml", "--local", "--workspace", ws}, Env{
		Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, Environ: environ, WorkDir: dir, Stdout: &stdout, Stderr: &stderr})
	out := stderr.String()
	if code != ExitCancelled || time.Since(start) > 30*time.Second {
		t.Errorf("exit %d after %s, want %d promptly:\n%s", code, time.Since(start), ExitCancelled, out)
	}
	if !strings.Contains(out, "[s.sleeper] started") || strings.Contains(out, "woke") || strings.Contains(out, "[s.after] after") {
		t.Errorf("output:\n%s", out)
	}
	pid, err := os.ReadFile(filepath.Join(ws, "s", "sleeper.pid"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err != nil || n <= 0 {
		t.Fatalf("sleeper pid %q %v", pid, err)
	}
	if syscall.Kill(n, 0) == nil {
		t.Errorf("the Run step's shell %d still runs", n)
	}
	m := regexp.MustCompile(`local registry for index.docker.io at (127\.0\.0\.1:\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no local registry in:\n%s", out)
	}
	if c, err := net.DialTimeout("tcp", m[1], time.Second); err == nil {
		c.Close()
		t.Errorf("the local registry at %s still answers", m[1])
	}
}

// Secrets from the secrets file reach the steps and never the output: a
// Run step that prints one, through a stage variable and its own env.
func TestPipelineSecretsMasked(t *testing.T) {
	const secret = "s3cr3t-pipeline-value-8472"
	dir := checkout(t, map[string]string{"secret.yaml": `pipeline:
  identifier: secret
  stages:
    - stage:
        identifier: s
        type: CI
        variables:
          - {name: STAGE_TOKEN, type: String, value: '<+secrets.getValue("token")>'}
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step:
                  identifier: show
                  type: Run
                  spec:
                    envVariables: {STEP_TOKEN: '<+secrets.getValue("token")>'}
                    command: 'echo "stage=$STAGE_TOKEN step=$STEP_TOKEN len=${#STEP_TOKEN}"; exit 3'
`})
	secrets := filepath.Join(t.TempDir(), "s.env")
	os.WriteFile(secrets, []byte("token="+secret+"\n"), 0o600)
	r, rep := pipelineRun(t, dir, pipelineEnv(t), "secret.yaml", "--local", "--secrets", secrets)
	if r.code != 3 || stepOf(t, rep, "show").ExitCode != 3 {
		t.Errorf("exit %d, want the Run step's 3:\n%s", r.code, r)
	}
	assertContains(t, r, "[s.show] stage=", "len=26")
	assertNotContains(t, r, secret)
	b, _ := json.Marshal(rep)
	if strings.Contains(string(b), secret) {
		t.Errorf("the report holds the secret")
	}
}

// The AquaTrivy step's other image types, local_image and docker_v2, scan
// the image the build step pushed (the same digest, its target and
// variant in the record), and a Run step with spec.image runs in that
// image with the workspace at /harness.
func TestPipelineScanImagesAndRunImage(t *testing.T) {
	f := harness.Inputs(t)
	dir := checkout(t, map[string]string{"kinds.yaml": `pipeline:
  identifier: kinds
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
                    repo: myorg/kinds
                    context: examples/pipelines/app
                    dockerfile: examples/pipelines/app/Dockerfile
                    tags: ["1"]
                    envVariables: {PLUGIN_HOIST_FUTURE_SETTING: x}
              - parallel:
                  - step:
                      identifier: scan_local
                      type: AquaTrivy
                      spec:
                        mode: orchestration
                        config: default
                        target: {type: container, name: kinds, variant: local}
                        image: {type: local_image, name: myorg/kinds, tag: "1"}
                  - step:
                      identifier: scan_registry
                      type: AquaTrivy
                      spec:
                        mode: orchestration
                        config: default
                        target: {type: container, name: kinds, variant: registry}
                        image: {type: docker_v2, domain: docker.io, name: myorg/kinds, tag: "1"}
                  - step:
                      identifier: in_image
                      type: Run
                      spec:
                        image: ` + f.Base + `
                        shell: Sh
                        envVariables: {WHO: <+step.identifier>}
                        command: 'test -f /harness/examples/pipelines/app/Dockerfile && echo "$WHO sees the workspace at $(pwd)"'
`})
	r, rep := pipelineRun(t, dir, pipelineEnv(t), "kinds.yaml", "--local", "--keep")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	// The image as the registry holds it (crane), and the scans' records.
	hub := localRegistry(t, rep, "index.docker.io")
	want := hub.Digest(t, hub.Host+"/myorg/kinds:1")
	for _, id := range []string{"scan_local", "scan_registry"} {
		s := stepOf(t, rep, id)
		if s.Digest != want || len(s.ScanRecords) != 1 {
			t.Errorf("%s: %+v, want digest %s", id, s, want)
			continue
		}
		b, _ := os.ReadFile(s.ScanRecords[0])
		if !strings.Contains(string(b), `"digest": "`+want+`"`) && !strings.Contains(string(b), `"digest":"`+want+`"`) {
			t.Errorf("%s: record %s", id, b)
		}
	}
	// A setting hoist does not know, in a step's envVariables, is named.
	assertContains(t, r, "[s.in_image] in_image sees the workspace at /harness",
		"[s.build] warning: setting PLUGIN_HOIST_FUTURE_SETTING is not a hoist setting and is ignored")
}

// mirroredPipeline builds FROM a Docker Hub name that only a mirror holds
// (PLUGIN_REGISTRY_MIRRORS: the engine's setting), writing its outputs to
// relative paths.
const mirroredPipeline = `pipeline:
  identifier: mirrored
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
                  identifier: build
                  type: BuildAndPushDockerRegistry
                  spec:
                    connectorRef: hub
                    repo: registry.example.com/team/app
                    tags: ["1"]
                    context: mirrored
                    dockerfile: mirrored/Dockerfile
                    envVariables:
                      PLUGIN_REGISTRY_MIRRORS: "@MIRROR@"
                      PLUGIN_DIGEST_FILE: out/digest.txt
                      DRONE_OUTPUT: out/output.env
                      PLUGIN_ARTIFACT_FILE: out/artifact.json
              - step: {identifier: show, type: Run, spec: {command: 'echo "built <+steps.build.output.outputVariables.digest>"'}}
`

// One engine, given to the steps: the run starts it configured for what
// its BuildKit steps ask (here a Docker Hub mirror), and the step builds
// on it, FROM a name only the mirror holds. An engine already running
// without the mirror is not used silently: the run stops before any step,
// naming the mirror and the fix (exit 6).
//
// And a step's relative output paths (PLUGIN_DIGEST_FILE, DRONE_OUTPUT,
// PLUGIN_ARTIFACT_FILE) are in its stage's workspace, not in the
// directory of the process that runs hoist pipeline run.
func TestPipelineEngineAndOutputPaths(t *testing.T) {
	f := harness.Inputs(t)
	mirror := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": f.Base, "PLUGIN_DAEMON_OFF": "true",
		"PLUGIN_DESTINATIONS": mirror.Host + "/library/hoist-pipeline-mirrored:1"})
	dir := checkout(t, map[string]string{
		"mirrored/Dockerfile": "FROM hoist-pipeline-mirrored:1\nRUN echo via-mirror > /m.txt\n",
		"mirrored.yaml":       strings.Replace(mirroredPipeline, "@MIRROR@", mirror.Host, 1),
	})
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if cwd == dir {
		t.Fatal("the process runs in the checkout")
	}
	ws := filepath.Join(t.TempDir(), "ws")
	env := pipelineEnv(t, "PLUGIN_ENGINE_DIR", filepath.Join(t.TempDir(), "engine"), "PLUGIN_BUILDKITD", harness.Buildkitd(t))
	r, rep := pipelineRun(t, dir, env, "mirrored.yaml", "--local", "--keep", "--workspace", ws)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	assertContains(t, r, "engine: started buildkitd")
	assertNotContains(t, r, "using the running embedded engine")
	s := stepOf(t, rep, "build")
	reg := localRegistry(t, rep, "registry.example.com")
	digest := strings.TrimSpace(reg.Crane(t, "digest", reg.Host+"/team/app:1"))
	if s.Digest != digest {
		t.Errorf("the step reports %s, the registry holds %s", s.Digest, digest)
	}
	if got := f.Docker.RunImage(t, reg.Host+"/team/app:1", "cat", "/m.txt"); got != "via-mirror" {
		t.Errorf("the image prints %q", got)
	}
	// The step's own DRONE_OUTPUT is where its outputs are read from.
	assertContains(t, r, "[s.show] built "+digest+"\n")
	stage := filepath.Join(ws, "s")
	for file, want := range map[string]string{"out/digest.txt": digest, "out/output.env": digest, "out/artifact.json": digest} {
		b, err := os.ReadFile(filepath.Join(stage, file))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s in the stage workspace: %q %v, want %q", file, b, err, want)
		}
		for _, wrong := range []string{cwd, dir} {
			if _, err := os.Stat(filepath.Join(wrong, file)); err == nil {
				t.Errorf("%s was written in %s, not in the stage workspace", file, wrong)
			}
		}
	}

	// The shared engine runs, started without the mirror.
	shared, _ := harness.SharedEngine(t)
	r, rep = pipelineRun(t, dir, pipelineEnv(t, "PLUGIN_ENGINE_DIR", shared), "mirrored.yaml", "--local")
	if r.code != ExitEngine {
		t.Errorf("exit %d, want %d:\n%s", r.code, ExitEngine, r)
	}
	assertContains(t, r, "the running embedded engine at "+shared+" was started without what this step needs: Docker Hub mirror "+mirror.Host+" (PLUGIN_REGISTRY_MIRRORS)",
		"hoist engine stop")
	if len(rep.Steps) != 0 {
		t.Errorf("steps ran: %+v", rep.Steps)
	}
}

// A stage skipped by its condition is not a failure: the stage after it
// (when: Success, the default) runs, and the run succeeds. Before, the
// skipped stage counted as failed and skipped every stage after it.
func TestSkippedStageIsNoFailure(t *testing.T) {
	t.Parallel()
	dir := checkout(t, map[string]string{"skip.yaml": `pipeline:
  identifier: skip
  stages:
    - stage:
        identifier: first
        type: CI
        when: {pipelineStatus: Success, condition: <+codebase.branch> == "never"}
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: skipped, type: Run, spec: {command: echo skipped-ran}}
    - stage:
        identifier: second
        type: CI
        spec:
          runtime: {type: Cloud, spec: {}}
          execution:
            steps:
              - step: {identifier: runs, type: Run, spec: {command: echo second-ran}}
`})
	r, rep := pipelineRun(t, dir, map[string]string{"HOME": t.TempDir()}, "skip.yaml", "--local")
	if r.code != 0 {
		t.Errorf("exit %d, want 0:\n%s", r.code, r)
	}
	assertContains(t, r, "stage first skipped", "[second.runs] second-ran")
	assertNotContains(t, r, "skipped-ran", "an earlier step failed")
	if s := stepOf(t, rep, "runs"); s.Status != "Success" {
		t.Errorf("step runs: %s, want Success", s.Status)
	}
}
