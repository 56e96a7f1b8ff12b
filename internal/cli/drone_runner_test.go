package cli

import (
	"archive/tar"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/harness"
)

// droneState is the part of `drone-runner-docker exec --dump` the tests
// read: each step's status and exit code, as the runner recorded them.
type droneState struct {
	Stage struct {
		Status string `json:"status"`
		Steps  []struct {
			Name     string `json:"name"`
			Status   string `json:"status"`
			ExitCode int    `json:"exit_code"`
			Error    string `json:"error"`
		} `json:"steps"`
	} `json:"Stage"`
}

// step is the runner's record of the step name, or fails the test.
func (s droneState) step(t *testing.T, name string) (status string, exitCode int) {
	t.Helper()
	for _, st := range s.Stage.Steps {
		if st.Name == name {
			return st.Status, st.ExitCode
		}
	}
	t.Fatalf("the runner ran no step %q: %+v", name, s.Stage.Steps)
	return "", 0
}

// droneRunner runs pipeline files with Drone's docker runner against the
// test daemon, as the Drone server would run them: `drone-runner-docker
// exec` with the workspace (the directory it runs in) mounted at
// /drone/src, settings turned into PLUGIN_* variables, secrets from
// --secrets.
type droneRunner struct {
	bin     string
	docker  *harness.Docker
	environ map[string]string
	procEnv []string // the runner process's own extra variables
}

// runnerExec is what one exec of the runner left: its log (every step's
// lines, prefixed [step:N]), its exit code and the state it dumped.
type runnerExec struct {
	log   string
	code  int
	state droneState
	args  []string
}

func (r runnerExec) String() string {
	return "drone-runner-docker " + strings.Join(r.args, " ") + "\nexit " + itoa(r.code) + "\n" + r.log
}

// exec runs file (a `kind: pipeline, type: docker` file whose pipeline is
// named like the file) in workspace, with environ added to the runner's
// global environment (every step's); more are extra exec flags.
func (d *droneRunner) exec(t *testing.T, workspace, file string, environ map[string]string, more ...string) runnerExec {
	t.Helper()
	name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	// --repo-trusted: the steps use network_mode: host (the test's
	// registries are on loopback), which Drone allows trusted
	// repositories only.
	args := []string{"exec", "--stage-name", name, "--repo-trusted", "--dump"}
	env := merged(d.environ, environ)
	for _, k := range sortedKeys(env) {
		args = append(args, "--environ", k+"="+env[k])
	}
	args = append(append(args, more...), file)
	cmd := exec.Command(d.bin, args...)
	cmd.Dir = workspace
	cmd.Env = append(append(os.Environ(), d.docker.Env()...), d.procEnv...)
	var out, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("drone-runner-docker exec %s did not end in 3 minutes:\n%s", file, out.String())
	}
	r := runnerExec{code: cmd.ProcessState.ExitCode(), args: args}
	if err != nil && r.code < 0 {
		t.Fatalf("drone-runner-docker: %v", err)
	}
	// The dump is the JSON document after the log: from the first line
	// that is a lone "{".
	all := out.String()
	i := strings.Index(all, "\n{\n")
	if strings.HasPrefix(all, "{\n") {
		i = -1
	} else if i < 0 {
		t.Fatalf("drone-runner-docker printed no state (--dump):\n%s\n%s", all, stderr.String())
	}
	r.log = all[:i+1] + stderr.String()
	if err := json.Unmarshal([]byte(all[i+1:]), &r.state); err != nil {
		t.Fatalf("the runner's state: %v\n%s", err, all)
	}
	return r
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// droneFile is a pipeline of examples/drone, the files docs/ci.md shows.
func droneFile(name string) string {
	return filepath.Join(harness.ModuleRoot(), "examples", "drone", name+".yml")
}

// droneWorkspace is a checkout the runner mounts at /drone/src: a
// Dockerfile whose image prints its GREETING build argument, and files.
func droneWorkspace(t *testing.T, base string, files map[string]string) string {
	t.Helper()
	df := "FROM " + base + "\n"
	if _, ok := files["rootfs/etc/os-release"]; ok {
		df += "COPY rootfs/ /\n"
	}
	df += "ARG GREETING\nRUN echo \"$GREETING\" > /greeting.txt\nCMD [\"cat\", \"/greeting.txt\"]\n"
	return buildContext(t, df, files)
}

// startBuildKitContainer starts hoist's BuildKit image as a long-running
// buildkitd (its other entrypoint) on the host network, listening on a
// loopback TCP port, with the capabilities this machine grants
// (buildkitContainerFlags); it returns its address for
// PLUGIN_BUILDER_REMOTE_CONN. Removed when the test ends.
func startBuildKitContainer(t *testing.T, d *harness.Docker, image string) string {
	t.Helper()
	name := "hoist-test-drone-buildkitd-" + testImageTag()
	addr := "tcp://127.0.0.1:" + itoa(harness.FreePort(t))
	harness.RunErr(d.Env(), "docker", "rm", "-f", name)
	args := append([]string{"run", "-d", "--name", name, "--network", "host"}, buildkitContainerFlags...)
	d.Run(t, append(args, "--entrypoint", "/usr/bin/buildkitd", image, "--addr", addr)...)
	t.Cleanup(func() { harness.RunErr(d.Env(), "docker", "rm", "-f", name) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		logs, _ := harness.RunErr(d.Env(), "sh", "-c", "docker logs "+name+" 2>&1")
		if strings.Contains(logs, "running server on") {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("buildkitd in %s did not start:\n%s", name, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The document's five workflows as Drone pipelines (examples/drone, shown
// in docs/ci.md), run by Drone's docker runner with hoist's plugin images
// and the peers' setting names, against real registries; every pushed
// image is read back with crane and run. BuildKit steps use a buildkitd
// container the test starts (builder_remote_conn): this machine refuses
// privileged containers ("unable to apply caps"), and a real runner would
// run them privileged instead (docs/ci.md).
func TestDroneRunner(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	bin := harness.DroneRunner(t)
	buildkit := pluginImage(t, "buildkit")
	pluginImage(t, "kaniko")
	pluginImage(t, "kaniko-scan")
	k := harness.Scan(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	private := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	mirrorA := harness.StartRegistry(t, harness.RegistryOptions{})
	mirrorB := harness.StartRegistry(t, harness.RegistryOptions{})
	runner := &droneRunner{bin: bin, docker: f.Docker, environ: map[string]string{
		"HOIST_TAG":           testImageTag(),
		"REGISTRY":            reg.Host,
		"PRIVATE_REGISTRY":    private.Host,
		"MIRROR_A":            mirrorA.Host,
		"MIRROR_B":            mirrorB.Host,
		"BUILDKIT_HOST":       startBuildKitContainer(t, f.Docker, buildkit),
		"TRIVY_DB_REPOSITORY": k.DBRef,
	}}
	// The registry's login, in the runner's global environment (as an
	// operator's DRONE_RUNNER_ENVIRON): exec v1.8.3 panics on from_secret
	// (its compiler's repository secret provider is nil).
	login := map[string]string{"PLUGIN_USERNAME": private.User, "PLUGIN_PASSWORD": private.Password}
	// built is the digest a build step's log names ("built sha256:…"),
	// which the registries' digests (crane) must equal.
	built := func(t *testing.T, r runnerExec, step string) string {
		t.Helper()
		for line := range strings.Lines(r.log) {
			if rest, ok := strings.CutPrefix(line, "["+step+":"); ok {
				if _, after, ok := strings.Cut(rest, "] built "); ok {
					return strings.Fields(after)[0]
				}
			}
		}
		t.Fatalf("step %s names no built digest:\n%s", step, r)
		return ""
	}
	ok := func(t *testing.T, r runnerExec, steps ...string) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("the pipeline failed:\n%s", r)
		}
		for _, s := range steps {
			if status, code := r.state.step(t, s); status != "success" || code != 0 {
				t.Errorf("step %s: %s, exit %d", s, status, code)
			}
		}
	}
	// runs pulls ref (crane copies it first when its registry asks for a
	// login: the daemon has none) and returns what the image prints.
	runs := func(t *testing.T, r *harness.Registry, ref string) string {
		t.Helper()
		if r.User != "" {
			plain := reg.Host + "/copied/" + strings.ReplaceAll(strings.SplitN(ref, "/", 2)[1], ":", "-") + ":1"
			r.Crane(t, "copy", ref, plain)
			ref = plain
		}
		return f.Docker.RunImage(t, ref)
	}

	t.Run("build-only", func(t *testing.T) {
		ws := droneWorkspace(t, f.Base, nil)
		r := runner.exec(t, ws, droneFile("build-only"), nil)
		ok(t, r, "build")
		if tags := tagsOf(t, private, "drone/app"); len(tags) != 0 {
			t.Errorf("build-only pushed: %v", tags)
		}
		tar := filepath.Join(ws, "out", "build-only.tar")
		if _, err := os.Stat(tar); err != nil {
			t.Fatalf("no tarball in the workspace: %v\n%s", err, r)
		}
		if _, err := os.Stat(filepath.Join(ws, ".hoist", "images", "index.json")); err != nil {
			t.Errorf("no workspace image store: %v", err)
		}
		f.Docker.Run(t, "load", "-q", "-i", tar)
		if got := strings.TrimSpace(f.Docker.Run(t, "run", "--rm", "--network", "host", private.Host+"/drone/app:1")); got != "built once" {
			t.Errorf("the tarball's image prints %q", got)
		}

		// A push-only step of another build (here build 2) does not take
		// what this build left in the workspace store.
		r = runner.exec(t, ws, droneFile("push-only"), login, "--exclude", "build", "--build-number", "2")
		if status, code := r.state.step(t, "push"); r.code != 1 || status != "failure" || code != ExitSource {
			t.Errorf("push-only of another build: runner exit %d, step %s exit %d\n%s", r.code, status, code, r)
		}
		if !strings.Contains(r.log, "not made by this run") {
			t.Errorf("the step does not say why it takes nothing from the store:\n%s", r)
		}
		if tags := tagsOf(t, private, "drone/app"); len(tags) != 0 {
			t.Errorf("another build's push-only pushed: %v", tags)
		}
	})

	t.Run("push-only", func(t *testing.T) {
		ws := droneWorkspace(t, f.Base, nil)
		r := runner.exec(t, ws, droneFile("push-only"), login)
		ok(t, r, "build", "push")
		ref := private.Host + "/drone/app:1"
		if got, want := digestOf(t, private, ref), built(t, r, "build"); got != want {
			t.Errorf("%s is %s, the build made %s", ref, got, want)
		}
		if got := runs(t, private, ref); got != "pushed from the store" {
			t.Errorf("%s prints %q", ref, got)
		}
		if _, err := os.Stat(filepath.Join(ws, "out")); err == nil {
			t.Errorf("push-only from the store wrote a tarball")
		}
		// The runner sets DRONE_CARD_PATH=/dev/stdout and takes the card
		// out of the step's log (exec then drops it: its uploader is a
		// no-op), so the log holds no card frame; with the runner's cards
		// off (DRONE_FLAG_ENABLE_CARDS=false) the frame stays in the log,
		// where the test reads it: the push step's card names the digest
		// the registry holds, and carries no password.
		if strings.Contains(r.log, "\x1b]1338;") {
			t.Errorf("the runner left the card frame in the log: it did not take it as a card:\n%s", r)
		}
		off := *runner
		off.procEnv = []string{"DRONE_FLAG_ENABLE_CARDS=false"}
		r = off.exec(t, droneWorkspace(t, f.Base, nil), droneFile("push-only"), login)
		ok(t, r, "build", "push")
		c, raw := droneCard(t, r, "push")
		if c.Digest != digestOf(t, private, ref) || !slices.Contains(c.RepoTags, ref) {
			t.Errorf("the push step's card: digest %s, tags %v; want %s and %s", c.Digest, c.RepoTags, digestOf(t, private, ref), ref)
		}
		if strings.Contains(raw, private.Password) {
			t.Errorf("the card holds the password:\n%s", raw)
		}
		// The runner masks secrets, not its global environment: the
		// log holds the push step's own lines, and no password.
		if !strings.Contains(r.log, "[push:") || strings.Contains(r.log, private.Password) {
			t.Errorf("the push step's log is missing or holds the password:\n%s", r)
		}
	})

	t.Run("tarball-handoff", func(t *testing.T) {
		ws := droneWorkspace(t, f.Base, nil)
		r := runner.exec(t, ws, droneFile("tarball-handoff"), nil)
		ok(t, r, "build", "push")
		want := built(t, r, "build")
		for _, tag := range []string{"1", "latest"} {
			ref := reg.Host + "/drone/handoff:" + tag
			if got := digestOf(t, reg, ref); got != want {
				t.Errorf("%s is %s, the build made %s", ref, got, want)
			}
		}
		if got := runs(t, reg, reg.Host+"/drone/handoff:1"); got != "handed over" {
			t.Errorf("the pushed image prints %q", got)
		}
		// Kaniko snapshots the step's whole filesystem: the runner's
		// workspace mount (/drone/src, where the tarball was written)
		// stays out of the image.
		files := imageFiles(t, reg, reg.Host+"/drone/handoff:1")
		if !slices.Contains(files, "greeting.txt") || slices.ContainsFunc(files, func(f string) bool { return strings.HasPrefix(f, "drone") }) {
			t.Errorf("the image holds %v: want greeting.txt and nothing under /drone", files)
		}
	})

	t.Run("multi-registry", func(t *testing.T) {
		ws := droneWorkspace(t, f.Base, nil)
		r := runner.exec(t, ws, droneFile("multi-registry"), nil)
		ok(t, r, "build", "push-registry", "push-mirror-a", "push-mirror-b")
		want := built(t, r, "build")
		for _, d := range []struct {
			reg *harness.Registry
			ref string
		}{{reg, reg.Host + "/drone/multi:1"}, {mirrorA, mirrorA.Host + "/team/multi:1"}, {mirrorA, mirrorA.Host + "/team/multi:latest"}, {mirrorB, mirrorB.Host + "/mirror/multi:1"}} {
			if got := digestOf(t, d.reg, d.ref); got != want {
				t.Errorf("%s is %s, the build made %s", d.ref, got, want)
			}
			if got := runs(t, d.reg, d.ref); got != "built once and pushed thrice" {
				t.Errorf("%s prints %q", d.ref, got)
			}
		}
	})

	t.Run("promote", func(t *testing.T) {
		const password = "drone-promote-pw"
		key, pub := keyPair(t, password)
		_, otherPub := keyPair(t, "another")
		read := func(p string) string {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		ws := droneWorkspace(t, f.Base, map[string]string{"cosign.key": read(key), "cosign.pub": read(pub)})
		r := runner.exec(t, ws, droneFile("promote"), map[string]string{"COSIGN_KEY_PASSWORD": password})
		ok(t, r, "build", "sign-push", "promote")
		want := built(t, r, "build")
		if !strings.Contains(r.log, "promote: policy met on the source: signatures 1 valid; attestations: slsaprovenance1 1") {
			t.Errorf("the promote step does not say the policy was met:\n%s", r)
		}
		for _, d := range []struct {
			reg *harness.Registry
			ref string
		}{{reg, reg.Host + "/staging/app:rc-1"}, {mirrorA, mirrorA.Host + "/prod/app:1.1"}, {mirrorA, mirrorA.Host + "/prod/app:latest"}} {
			if got := digestOf(t, d.reg, d.ref); got != want {
				t.Errorf("%s is %s, the build made %s", d.ref, got, want)
			}
		}
		prod := mirrorA.Host + "/prod/app@" + want
		if out, err := verify(t, mirrorA, pub, prod); err != nil {
			t.Errorf("cosign verify %s: %v\n%s", prod, err, out)
		}
		if out, err := mirrorA.Cosign(t, "verify-attestation", "--key", pub, "--insecure-ignore-tlog=true", "--type", "slsaprovenance1", prod); err != nil {
			t.Errorf("cosign verify-attestation %s: %v\n%s", prod, err, out)
		}
		if got := runs(t, mirrorA, mirrorA.Host+"/prod/app:1.1"); got != "promoted as signed" {
			t.Errorf("the promoted image prints %q", got)
		}

		// Under another public key the promote step fails (exit 9) and
		// production gets nothing of build 2.
		ws = droneWorkspace(t, f.Base, map[string]string{"cosign.key": read(key), "cosign.pub": read(otherPub)})
		r = runner.exec(t, ws, droneFile("promote"), map[string]string{"COSIGN_KEY_PASSWORD": password}, "--build-number", "2")
		if status, code := r.state.step(t, "promote"); r.code != 1 || status != "failure" || code != ExitUnverified {
			t.Errorf("promote under another key: runner exit %d, promote step %s exit %d\n%s", r.code, status, code, r)
		}
		if tags := tagsOf(t, mirrorA, "prod/app"); slices.Contains(tags, "1.2") {
			t.Errorf("production got build 2 under another key: %v", tags)
		}
		if got := digestOf(t, mirrorA, mirrorA.Host+"/prod/app:latest"); got != want {
			t.Errorf("production's latest moved to %s under another key (build 1 made %s)", got, want)
		}
	})

	t.Run("build-scan-push", func(t *testing.T) {
		ws := droneWorkspace(t, f.Base, apkImage("musl", "1.2.4-r3"))
		r := runner.exec(t, ws, droneFile("build-scan-push"), nil)
		ok(t, r, "build", "scan", "push")
		want := built(t, r, "build")
		ref := reg.Host + "/drone/scanned:1"
		if got := digestOf(t, reg, ref); got != want {
			t.Errorf("%s is %s, the build made %s", ref, got, want)
		}
		if !strings.Contains(r.log, want+"  passed") {
			t.Errorf("the scan does not pass %s:\n%s", want, r)
		}
		if got := runs(t, reg, ref); got != "scanned before the push" {
			t.Errorf("%s prints %q", ref, got)
		}

		// A vulnerable image: the scan step fails (exit 7), the runner
		// stops the pipeline and the push step never runs.
		ws = droneWorkspace(t, f.Base, apkImage("musl", "1.2.4-r2"))
		r = runner.exec(t, ws, droneFile("build-scan-push"), nil, "--build-number", "2")
		if status, code := r.state.step(t, "scan"); r.code != 1 || status != "failure" || code != ExitScan {
			t.Errorf("scan of a vulnerable image: runner exit %d, scan step %s exit %d\n%s", r.code, status, code, r)
		}
		if status, _ := r.state.step(t, "push"); status != "skipped" {
			t.Errorf("the push step after a failed scan: %s\n%s", status, r)
		}
		if !strings.Contains(r.log, "CVE-2099-1001") {
			t.Errorf("the scan step does not name the finding:\n%s", r)
		}
		if tags := tagsOf(t, reg, "drone/scanned"); !slices.Equal(tags, []string{"1"}) {
			t.Errorf("the vulnerable build was pushed: tags %v", tags)
		}
	})

	// The runner joins a list setting with commas (and the peers'
	// urfave/cli splits it there): a build argument holding a comma becomes
	// two. The second is not KEY=value, nor a name (which, as with docker
	// build --build-arg NAME, would take its value from the environment):
	// hoist refuses it, exit 2, before anything is built.
	t.Run("list settings are comma-joined", func(t *testing.T) {
		ws := droneWorkspace(t, f.Base, nil)
		file := filepath.Join(t.TempDir(), "comma.yml")
		os.WriteFile(file, []byte("kind: pipeline\ntype: docker\nname: comma\nsteps:\n  - name: build\n    image: hoist/kaniko:${HOIST_TAG}\n    network_mode: host\n"+
			"    settings:\n      repo: ${REGISTRY}/drone/comma\n      build_args: [\"GREETING=built once, pushed thrice\"]\n"), 0o644)
		r := runner.exec(t, ws, file, nil)
		if status, code := r.state.step(t, "build"); r.code != 1 || status != "failure" || code != ExitSettings {
			t.Errorf("runner exit %d, step %s exit %d\n%s", r.code, status, code, r)
		}
		if !strings.Contains(r.log, `PLUGIN_BUILD_ARGS: malformed build argument "pushed thrice": want KEY=value`) {
			t.Errorf("no clear message:\n%s", r)
		}
		if tags := tagsOf(t, reg, "drone/comma"); len(tags) != 0 {
			t.Errorf("pushed: %v", tags)
		}
	})
}

// imageFiles lists the paths of ref's flattened filesystem (crane export),
// without a leading "/" or "./".
func imageFiles(t *testing.T, reg *harness.Registry, ref string) []string {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(reg.Crane(t, "export", ref, "-")))
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("crane export %s: %v", ref, err)
		}
		if name := strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"); name != "" && name != "." {
			out = append(out, name)
		}
	}
}

// droneCard is the card step wrote where Drone's runner reads it: a log
// line holding ESC ]1338; base64(JSON) ESC ]0m.
func droneCard(t *testing.T, r runnerExec, step string) (card struct {
	Digest   string   `json:"Digest"`
	RepoTags []string `json:"RepoTags"`
}, raw string) {
	t.Helper()
	for line := range strings.Lines(r.log) {
		rest, ok := strings.CutPrefix(line, "["+step+":")
		if !ok {
			continue
		}
		_, frame, ok := strings.Cut(rest, "\x1b]1338;")
		if !ok {
			continue
		}
		b64, _, _ := strings.Cut(frame, "\x1b]0m")
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("step %s's card is not base64: %v", step, err)
		}
		var doc struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("step %s's card: %v\n%s", step, err, b)
		}
		if err := json.Unmarshal(doc.Data, &card); err != nil {
			t.Fatalf("step %s's card data: %v\n%s", step, err, b)
		}
		return card, string(b)
	}
	t.Fatalf("step %s wrote no card to the runner's log:\n%s", step, r)
	return card, ""
}
