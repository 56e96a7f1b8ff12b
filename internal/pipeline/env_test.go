package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestExpressions(t *testing.T) {
	p := &Pipeline{Identifier: "pid", Name: "Pipe Name", Variables: []Var{{Name: "greeting", Value: "hi-<+pipeline.sequenceId>"}}}
	st := &Stage{Identifier: "sid", Name: "Stage Name", Variables: []Var{{Name: "region", Value: "eu-west-3"}}}
	s := &Step{Identifier: "stepid", Name: "Step Name", Stage: st}
	var secrets []string
	sc := &Scope{Pipeline: p, Stage: st, Step: s, Seq: 42, Codebase: Codebase{Branch: "main", CommitSha: "0123456789abcdef0123"},
		Secret: func(n string) (string, bool) {
			v, ok := map[string]string{"token": "s3cr3t-value"}[n]
			return v, ok
		}, Secrets: &secrets}
	for in, want := range map[string]string{
		"<+pipeline.sequenceId>":                   "42",
		"v-<+pipeline.sequenceId>-buildx":          "v-42-buildx",
		"<+pipeline.name>/<+pipeline.identifier>":  "Pipe Name/pid",
		"<+stage.name>/<+stage.identifier>":        "Stage Name/sid",
		"<+step.name>/<+step.identifier>":          "Step Name/stepid",
		"<+pipeline.variables.greeting>":           "hi-42",
		"<+stage.variables.region>":                "eu-west-3",
		"<+codebase.branch>@<+codebase.commitSha>": "main@0123456789abcdef0123",
		"<+codebase.shortCommitSha>":               "0123456",
		`<+secrets.getValue("token")>`:             "s3cr3t-value",
		`<+ secrets.getValue('token') >`:           "s3cr3t-value",
		"no expression":                            "no expression",
	} {
		got, err := sc.Expand(in)
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	if len(secrets) != 2 || secrets[0] != "s3cr3t-value" {
		t.Errorf("secrets collected for the mask: %q", secrets)
	}
	for in, want := range map[string]string{
		"<+pipeline.sequenceID>":           "unknown expression <+pipeline.sequenceID>",
		"<+pipeline.variables.missing>":    `pipeline has no variable "missing" (it has: greeting)`,
		"<+stage.variables.x>":             `stage sid has no variable "x"`,
		`<+secrets.getValue("nope")>`:      `secret "nope" is neither in the secrets file (--secrets) nor in the environment`,
		"<+trigger.branch>":                "unknown expression <+trigger.branch>",
		"tag-<+pipeline.sequenceId":        "unterminated expression",
		"<+codebase.repoUrl>":              "unknown expression <+codebase.repoUrl>",
		"<+pipeline.stages.s.variables.x>": "unknown expression",
	} {
		if _, err := sc.Expand(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

func TestConditions(t *testing.T) {
	sc := &Scope{Pipeline: &Pipeline{Identifier: "p", Variables: []Var{{Name: "deploy", Value: "true"}}}, Seq: 3, Codebase: Codebase{Branch: "main"}}
	for in, want := range map[string]bool{
		`<+codebase.branch> == "main"`:                                           true,
		`<+codebase.branch> != 'main'`:                                           false,
		`<+pipeline.variables.deploy> == "true" && <+codebase.branch> == "main"`: true,
		`<+codebase.branch> == "dev" || <+pipeline.sequenceId> == "3"`:           true,
		`!(<+codebase.branch> == "main")`:                                        false,
		`true`:                                                                   true,
		`false || false`:                                                         false,
		`<+pipeline.variables.deploy>`:                                           true,
	} {
		got, err := sc.EvalCondition(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{`<+codebase.branch> = "main"`, `<+codebase.branch> == "main`, `(true`, ``, `<+codebase.branch>.startsWith("m")`, `<+x.y> == "1"`} {
		if _, err := sc.EvalCondition(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// stepEnv plans one step of a one-stage pipeline and returns its
// environment as NAME=VALUE lines, sorted, without the runner's build
// variables.
func stepEnv(t *testing.T, infra, step string, conns *Connectors) ([]string, *Planned) {
	t.Helper()
	y := "pipeline:\n  identifier: p\n  stages:\n    - stage:\n        identifier: s\n        type: CI\n        spec:\n" + infra +
		"          execution:\n            steps:\n              - step:\n" + indent(step, "                  ")
	p, err := ParseBytes("x.yaml", []byte(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	pl, err := MakePlan(context.Background(), p, PlanOptions{Seq: 7, Codebase: Codebase{Branch: "main", CommitSha: "abc"}, Connectors: conns,
		Secret: func(n string) (string, bool) { return "secret-of-" + n, true }})
	if err != nil {
		t.Fatalf("%v", err)
	}
	for _, pd := range pl.Steps {
		var out []string
		for _, e := range pd.Environ() {
			k, _, _ := strings.Cut(e, "=")
			if strings.HasPrefix(k, "DRONE") || strings.HasPrefix(k, "HARNESS") || k == "CI" {
				continue
			}
			out = append(out, e)
		}
		sort.Strings(out)
		return out, pd
	}
	t.Fatal("no step")
	return nil, nil
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = by + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

const cloud = "          cloneCodebase: true\n          runtime: {type: Cloud, spec: {}}\n"
const k8s = "          cloneCodebase: true\n          infrastructure: {type: KubernetesDirect, spec: {namespace: default}}\n"

// Each step type's fields become the variables a runner sends
// (docs/ci.md's table; ../spec §4.1), plus what the infrastructure adds.
func TestStepTypeEnv(t *testing.T) {
	cases := []struct {
		name, infra, step string
		want              []string
	}{
		{"docker", cloud, `identifier: d
type: BuildAndPushDockerRegistry
spec:
  connectorRef: c
  repo: registry.example.com/team/app
  tags: [a-<+pipeline.sequenceId>, latest]
  dockerfile: app/Dockerfile
  context: app
  target: final
  labels: {team: core}
  buildArgs: {A: "1", B: two}
  cacheFrom:
    - type=registry,ref=r/c:1
    - type=local,src=/c
  cacheTo: type=registry,ref=r/c:2
  envDockerSecrets: {npm: NPM_TOKEN}
  fileDockerSecrets: {cfg: /harness/cfg}
  envVariables: {PLUGIN_NO_PUSH: "true"}`, []string{
			"PLUGIN_BUILD_ARGS=A=1,B=two", "PLUGIN_CACHE_FROM=type=registry,ref=r/c:1;type=local,src=/c", "PLUGIN_CACHE_TO=type=registry,ref=r/c:2",
			"PLUGIN_CONTEXT=app", "PLUGIN_CUSTOM_LABELS=team=core", "PLUGIN_DAEMON_OFF=true", "PLUGIN_DOCKERFILE=app/Dockerfile",
			"PLUGIN_NO_PUSH=true", "PLUGIN_REPO=registry.example.com/team/app", "PLUGIN_SECRETS_FROM_ENV=npm=NPM_TOKEN",
			"PLUGIN_SECRETS_FROM_FILE=cfg=/harness/cfg", "PLUGIN_TAGS=a-7,latest", "PLUGIN_TARGET=final"}},
		{"ecr on kubernetes", k8s, `identifier: e
type: BuildAndPushECR
spec:
  connectorRef: c
  region: eu-west-3
  account: "123456789012"
  imageName: app
  tags: ["1"]
  remoteCacheImage: 123456789012.dkr.ecr.eu-west-3.amazonaws.com/cache`, []string{
			"KUBERNETES_SERVICE_HOST=10.96.0.1", "PLUGIN_ARTIFACT_FILE=/addon/tmp/.plugin/artifact",
			"PLUGIN_CACHE_REPO=123456789012.dkr.ecr.eu-west-3.amazonaws.com/cache", "PLUGIN_ENABLE_CACHE=true",
			"PLUGIN_REGION=eu-west-3", "PLUGIN_REGISTRY=123456789012.dkr.ecr.eu-west-3.amazonaws.com", "PLUGIN_REPO=app",
			"PLUGIN_SNAPSHOT_MODE=redo", "PLUGIN_TAGS=1"}},
		{"ecr on cloud, remote cache", cloud, `identifier: e
type: BuildAndPushECR
spec:
  connectorRef: c
  region: eu-west-3
  account: "123456789012"
  imageName: app
  tags: ["1"]
  optimize: true
  remoteCacheImage: 123456789012.dkr.ecr.eu-west-3.amazonaws.com/cache`, []string{
			"PLUGIN_CACHE_FROM=type=registry,ref=123456789012.dkr.ecr.eu-west-3.amazonaws.com/cache",
			"PLUGIN_CACHE_TO=type=registry,ref=123456789012.dkr.ecr.eu-west-3.amazonaws.com/cache,mode=max",
			"PLUGIN_DAEMON_OFF=true", "PLUGIN_REGION=eu-west-3", "PLUGIN_REGISTRY=123456789012.dkr.ecr.eu-west-3.amazonaws.com", "PLUGIN_REPO=app", "PLUGIN_TAGS=1"}},
		{"gar", cloud, `identifier: g
type: BuildAndPushGAR
spec: {connectorRef: c, host: europe-west1-docker.pkg.dev, projectID: proj, imageName: images/app, tags: ["1"]}`, []string{
			"PLUGIN_DAEMON_OFF=true", "PLUGIN_REGISTRY=europe-west1-docker.pkg.dev/proj", "PLUGIN_REPO=images/app", "PLUGIN_TAGS=1"}},
		{"gcr", cloud, `identifier: g
type: BuildAndPushGCR
spec: {connectorRef: c, host: eu.gcr.io, projectID: proj, imageName: app, tags: ["1"]}`, []string{
			"PLUGIN_DAEMON_OFF=true", "PLUGIN_REGISTRY=eu.gcr.io/proj", "PLUGIN_REPO=app", "PLUGIN_TAGS=1"}},
		{"acr", cloud, `identifier: a
type: BuildAndPushACR
spec: {connectorRef: c, repository: hoistreg.azurecr.io/team/app, subscriptionId: sub-1, tags: ["1"]}`, []string{
			"PLUGIN_DAEMON_OFF=true", "PLUGIN_REGISTRY=hoistreg.azurecr.io", "PLUGIN_REPO=hoistreg.azurecr.io/team/app", "PLUGIN_TAGS=1", "SUBSCRIPTION_ID=sub-1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := stepEnv(t, c.infra, c.step, nil)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("env:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestConnectors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "c.yaml")
	os.WriteFile(good, []byte(`connectors:
  hub:
    type: docker
    url: https://index.docker.io/v1/
    username: me
    password: <+secrets.getValue("hub_pw")>
  aws:
    type: aws
    accessKey: AKIAEXAMPLE
    secretKey: <+secrets.getValue("aws_secret")>
    ecrEndpoint: http://127.0.0.1:1
    env: {PLUGIN_STS_ENDPOINT: http://127.0.0.1:2}
  gcp:
    type: gcp
    jsonKey: <+secrets.getValue("gcp_key")>
  az:
    type: azure
    tenantId: t
    clientId: c
    clientSecret: <+secrets.getValue("az")>
`), 0o644)
	conns, err := ReadConnectors(good)
	if err != nil {
		t.Fatal(err)
	}
	env, pd := stepEnv(t, cloud, `identifier: e
type: BuildAndPushECR
spec: {connectorRef: aws, region: eu-west-3, account: "123456789012", imageName: app, tags: ["1"], baseImageConnectorRefs: [hub]}`, conns)
	all := strings.Join(env, "\n")
	for _, w := range []string{"PLUGIN_ACCESS_KEY=AKIAEXAMPLE", "PLUGIN_SECRET_KEY=secret-of-aws_secret", "PLUGIN_ECR_ENDPOINT=http://127.0.0.1:1",
		"PLUGIN_STS_ENDPOINT=http://127.0.0.1:2", "PLUGIN_BASE_IMAGE_REGISTRY=https://index.docker.io/v1/", "PLUGIN_BASE_IMAGE_USERNAME=me",
		"PLUGIN_BASE_IMAGE_PASSWORD=secret-of-hub_pw"} {
		if !strings.Contains(all, w) {
			t.Errorf("env lacks %s:\n%s", w, all)
		}
	}
	if strings.Join(pd.Secrets, ",") != "secret-of-aws_secret,secret-of-hub_pw" {
		t.Errorf("secrets for the mask: %q", pd.Secrets)
	}
	env, _ = stepEnv(t, cloud, "identifier: a\ntype: BuildAndPushACR\nspec: {connectorRef: az, repository: r.azurecr.io/app, tags: [\"1\"]}", conns)
	if all := strings.Join(env, "\n"); !strings.Contains(all, "CLIENT_ID=c") || !strings.Contains(all, "CLIENT_SECRET=secret-of-az") || !strings.Contains(all, "TENANT_ID=t") {
		t.Errorf("azure env:\n%s", all)
	}

	// A connector of the wrong type, or missing, is a problem at the
	// connectorRef.
	p, _ := ParseBytes("x.yaml", []byte("pipeline:\n  identifier: p\n  stages:\n    - stage:\n        identifier: s\n        type: CI\n        spec:\n"+cloud+
		"          execution:\n            steps:\n              - step: {identifier: g, type: BuildAndPushGAR, spec: {connectorRef: aws, host: h, projectID: p, imageName: i, tags: [\"1\"]}}\n"+
		"              - step: {identifier: d, type: BuildAndPushDockerRegistry, spec: {connectorRef: nope, repo: app, tags: [\"1\"]}}\n"))
	_, err = MakePlan(context.Background(), p, PlanOptions{Seq: 1, Connectors: conns, Secret: func(string) (string, bool) { return "x", true }})
	if err == nil || !strings.Contains(err.Error(), "x.yaml:12:") || !strings.Contains(err.Error(), "a BuildAndPushGAR step needs a gcp connector; aws is a aws connector") ||
		!strings.Contains(err.Error(), `connector "nope" is not in the connectors file`) {
		t.Errorf("%v", err)
	}

	// Bad files: every problem at once.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("connectors:\n  a:\n    type: ftp\n  b:\n    type: docker\n    password: hunter2\n    token: x\n"), 0o644)
	_, err = ReadConnectors(bad)
	for _, w := range []string{`bad.yaml:3:5: connectors.a.type "ftp": want docker, aws, gcp or azure`, "bad.yaml:6:15: connectors.b.password is a secret written in the file",
		"connectors.b.token is not a field of a docker connector"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("%v lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the secret is printed: %v", err)
	}
}

// Kubernetes stages build with Kaniko, unless CI_USE_BUILDX_ON_K8 is given
// to the run (the document's table); Cloud and VM stages with BuildKit.
func TestBuildTool(t *testing.T) {
	step := "identifier: b\ntype: BuildAndPushDockerRegistry\nspec: {connectorRef: c, repo: app, tags: [\"1\"]}"
	for _, c := range []struct {
		infra  string
		buildx bool
		tool   string
	}{{k8s, false, "kaniko"}, {cloud, false, "buildkit"}, {"          cloneCodebase: true\n          infrastructure: {type: VM, spec: {}}\n", false, "buildkit"}} {
		_, pd := stepEnv(t, c.infra, step, nil)
		if pd.Tool != c.tool {
			t.Errorf("%q: tool %s, want %s", c.infra, pd.Tool, c.tool)
		}
	}
	y := "pipeline:\n  identifier: p\n  stages:\n    - stage:\n        identifier: s\n        type: CI\n        spec:\n" + k8s +
		"          execution:\n            steps:\n              - step:\n" + indent(step, "                  ")
	p, _ := ParseBytes("x.yaml", []byte(y))
	pl, err := MakePlan(context.Background(), p, PlanOptions{Seq: 1, BuildxOnK8: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, pd := range pl.Steps {
		if v, _ := pd.Lookup("CI_USE_BUILDX_ON_K8"); pd.Tool != "buildkit" || v != "true" {
			t.Errorf("with CI_USE_BUILDX_ON_K8: tool %s, CI_USE_BUILDX_ON_K8=%q", pd.Tool, v)
		}
	}
}

// A step run in this process keeps of hoist's own environment its home,
// paths, daemon, CA certificates and proxies (the first of a name, as a
// process's lookup reads it), the run's temporary directory, and nothing
// else: no secret of hoist's own environment.
func TestHostEnvIsTheAllowlist(t *testing.T) {
	t.Parallel()
	r := &runner{temp: "/run/tmp", o: RunOptions{Environ: []string{"HOME=/root", "PATH=/bin", "TMPDIR=/tmp", "HTTPS_PROXY=http://u:pw@proxy:3128",
		"no_proxy=localhost", "PATH=/second", "DOCKER_HOST=unix:///d.sock", "SSL_CERT_FILE=/ca.pem", "AWS_SECRET_ACCESS_KEY=k", "PLUGIN_PASSWORD=pw",
		"FTP_PROXY=ftp://p", "GITHUB_TOKEN=ghs_x", "MALFORMED"}}}
	want := map[string]string{"HOME": "/root", "PATH": "/bin", "TMPDIR": "/run/tmp", "HTTPS_PROXY": "http://u:pw@proxy:3128", "no_proxy": "localhost",
		"DOCKER_HOST": "unix:///d.sock", "SSL_CERT_FILE": "/ca.pem"}
	got := r.hostEnv()
	if len(got) != len(want) {
		t.Errorf("hostEnv = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("hostEnv[%s] = %q, want %q", k, got[k], v)
		}
	}
}

// The programs hoist pipeline runs (the registry for --local, docker, a
// Run step's shell) are looked for on the PATH of the environment they
// run with, not on the process's.
func TestProgramsAreFoundOnTheirEnvironmentsPATH(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	for _, n := range []string{"registry", "hoist-path-test"} {
		if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\necho ran $0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if p, err := findRegistryBinary("", bin); err != nil || p != filepath.Join(bin, "registry") {
		t.Errorf("findRegistryBinary on %s = %q, %v", bin, p, err)
	}
	if p, err := findRegistryBinary("", t.TempDir()); err == nil {
		t.Errorf("findRegistryBinary on an empty PATH = %q", p)
	}
	out, err := command(context.Background(), []string{"PATH=" + bin}, "hoist-path-test").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ran "+filepath.Join(bin, "hoist-path-test") {
		t.Errorf("a program on the step's PATH: %v, %q", err, out)
	}
	if _, err := command(context.Background(), []string{"PATH=" + t.TempDir()}, "sh").CombinedOutput(); err == nil || !strings.Contains(err.Error(), "not found on the step's PATH") {
		t.Errorf("sh on a PATH without it: %v, want not found", err)
	}
}

// The run's identity reaches every kind of step one way, the plan's, and
// a stage's or step's own variables do not change it: the state a step
// makes is stamped with it.
func TestRunIdentityIsThePlans(t *testing.T) {
	t.Parallel()
	y := `pipeline:
  identifier: p
  stages:
    - stage:
        identifier: s
        type: CI
        spec:
` + cloud + `          variables:
            - {name: HARNESS_EXECUTION_ID, type: String, value: stage-forged}
          execution:
            steps:
              - step:
                  identifier: build
                  type: BuildAndPushDockerRegistry
                  spec:
                    connectorRef: c
                    repo: registry.example.com/team/app
                    tags: ["1"]
                    envVariables: {PLUGIN_NO_PUSH: "true", PLUGIN_TAR_PATH: /harness/image.tar, HARNESS_EXECUTION_ID: forged, DRONE_COMMIT_SHA: forged}
              - step:
                  identifier: scan
                  type: AquaTrivy
                  spec:
                    mode: orchestration
                    config: default
                    target: {type: container, name: app, variant: "1", workspace: /harness/image.tar}
                    image: {type: local_archive}
              - step:
                  identifier: run
                  type: Run
                  spec:
                    command: "true"
                    envVariables: {HARNESS_EXECUTION_ID: forged}
`
	p, err := ParseBytes("x.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := MakePlan(context.Background(), p, PlanOptions{Seq: 1, ExecutionID: "exec-1", Codebase: Codebase{Branch: "main", CommitSha: "abc"},
		Secret: func(n string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Steps) != 3 {
		t.Fatalf("%d steps planned", len(pl.Steps))
	}
	for s, pd := range pl.Steps {
		for k, want := range map[string]string{"HARNESS_EXECUTION_ID": "exec-1", "DRONE_COMMIT_SHA": "abc"} {
			if got, _ := pd.Lookup(k); got != want {
				t.Errorf("step %s (%s): %s=%q, want %q", s.Identifier, pd.Kind, k, got, want)
			}
		}
	}
}
