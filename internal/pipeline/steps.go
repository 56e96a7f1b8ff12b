package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/hoist-build/hoist/internal/envlist"
	"github.com/hoist-build/hoist/internal/mask"
	"github.com/hoist-build/hoist/internal/settings"
	"github.com/hoist-build/hoist/internal/step"
)

func masked(set *mask.Set, err error) error { return mask.Error(set, err) }

func loadSettings(lookup func(string) (string, bool), ws string) (*settings.Settings, error) {
	fs := pflag.NewFlagSet("step", pflag.ContinueOnError)
	settings.AddFlags(fs)
	return settings.Load(fs, lookup, ws)
}

// buildStep runs a Build and Push step in this process, on the step
// engine, with the settings its environment gives.
func (r *runner) buildStep(ctx context.Context, pd *Planned, ws string, of outputFiles, log io.Writer, rep *StepReport) error {
	m, list := r.processEnv(pd, ws, of)
	lookup := func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	set := r.stepMask(pd)
	s, err := loadSettings(lookup, ws)
	if err != nil {
		return masked(set, err)
	}
	st, err := step.FromSettings(s, step.Environ{Lookup: lookup, WorkDir: ws, TempDir: r.temp, Environ: list, Plugin: true, Version: r.o.Version, Secrets: set})
	if errors.Is(err, step.ErrSkip) {
		fmt.Fprintln(log, strings.TrimPrefix(err.Error(), step.ErrSkip.Error()+": "))
		return nil
	}
	if err != nil {
		return masked(set, err)
	}
	if st.Mode == step.ModeBuildOnly && s.TarPath != "" {
		rep.Tarballs = append(rep.Tarballs, wsPath(s.TarPath, ws))
	}
	return r.runStepEngine(ctx, st, pd, log, rep)
}

// runStepEngine runs a planned step and records what it did.
func (r *runner) runStepEngine(ctx context.Context, st step.Step, pd *Planned, log io.Writer, rep *StepReport) error {
	if r.routes != nil {
		st.Transport.Routes = r.routes
	}
	set := st.Secrets.Clone()
	set.Add(pd.Secrets...)
	w := mask.NewWriter(log, set)
	defer w.Flush()
	res, err := step.Run(ctx, st, step.Runtime{Stdout: w, Stderr: w, Mask: set, Engine: r.engine})
	if errors.Is(err, step.ErrSkip) {
		// Every destination holds its tag already (PLUGIN_SKIP_PUSH_IF_TAG_EXISTS).
		fmt.Fprintln(w, strings.TrimPrefix(err.Error(), step.ErrSkip.Error()+": "))
		return nil
	}
	rep.Digest = res.Digest
	for _, d := range res.Destinations {
		if d.Err == nil {
			rep.Pushed = append(rep.Pushed, Pushed{Ref: d.Ref, Digest: d.Digest})
			fmt.Fprintf(w, "pushed %s %s (%s)\n", d.Ref, d.Digest, d.Status)
		} else {
			fmt.Fprintf(w, "FAILED %s: %v\n", d.Ref, d.Err)
		}
	}
	if res.Scan != nil {
		rep.ScanRecords = append(rep.ScanRecords, res.Scan.Path)
		fmt.Fprintf(w, "scan %s %s, record %s\n", res.Scan.Digest, res.Scan.Verdict(), res.Scan.Path)
	}
	if err == nil && rep.Digest != "" {
		fmt.Fprintf(w, "digest %s\n", rep.Digest)
	}
	if err != nil && len(rep.Tarballs) > 0 {
		rep.Tarballs = nil
	}
	return masked(set, err)
}

// scanStep runs an AquaTrivy step as hoist's scan gate: the archive, the
// image in the workspace store or the daemon, or the registry image, with
// the scan settings of hoist's own environment (PLUGIN_SCAN_*: the
// database, the cache) and the step's spec (what it scans, its
// fail_on_severity) set on the typed settings.
func (r *runner) scanStep(ctx context.Context, pd *Planned, ws string, of outputFiles, log io.Writer, rep *StepReport) error {
	m := r.scanEnv(pd)
	m["DRONE_OUTPUT"], m["HARNESS_OUTPUT_SECRET_FILE"] = of.Env, of.Secret // a scan step's variables name none
	list := environ(m)
	lookup := func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	set := r.stepMask(pd)
	s, err := loadSettings(lookup, ws)
	if err != nil {
		return masked(set, err)
	}
	scanSettings(s, pd.Scan, ws)
	st, err := step.ScanFromSettings(s, step.Environ{Lookup: lookup, WorkDir: ws, TempDir: r.temp, Environ: list, Plugin: true, Version: r.o.Version, Secrets: set})
	if err != nil {
		return masked(set, err)
	}
	sp := pd.Scan
	st.Scan.Labels = map[string]string{"target": sp.Name, "variant": sp.Variant, "pipeline": r.plan.Pipeline.Identifier, "step": pd.Step.Stage.Identifier + "." + pd.Step.Identifier}
	fmt.Fprintf(log, "scanning %s %s (target %s, variant %s)\n", sp.ImageType, set.String(s.SourceTarPath+s.SourceImage), set.String(sp.Name), set.String(sp.Variant))
	return r.runStepEngine(ctx, st, pd, log, rep)
}

// scanEnv is a scan step's environment: what it keeps of hoist's own
// (passthrough, Trivy's cache, the scan settings PLUGIN_SCAN_*), then the
// run's identity (the plan's: the record is this run's, for its push
// steps).
func (r *runner) scanEnv(pd *Planned) map[string]string {
	m := r.hostEnv()
	if v, ok := r.o.Lookup("TRIVY_CACHE_DIR"); ok {
		m["TRIVY_CACHE_DIR"] = v
	}
	for _, f := range settings.Fields() {
		for _, e := range f.Env {
			if strings.HasPrefix(e, "PLUGIN_SCAN_") {
				if v, ok := r.o.Lookup(e); ok {
					m[e] = v
				}
			}
		}
	}
	for _, e := range pd.Env {
		m[e.Name] = e.Value
	}
	return m
}

// scanSettings sets what an AquaTrivy step's spec decides on its typed
// settings: the image it scans (an archive in the workspace ws, or a
// reference), its fail_on_severity, plain progress lines.
//
// Without fail_on_severity the step is the vendor's: Harness's scan steps
// fail on findings only when Fail on Severity is set (developer.harness.io,
// "Fail on Severity threshold to fail STO pipelines"), so it reports and
// records the findings and passes, unless hoist's own environment sets
// PLUGIN_SCAN_EXIT_CODE. The other defaults are the vendor's already:
// every severity, unfixed vulnerabilities included, Trivy's image
// scanners (vuln, secret); docs/pipelines.md names the sources.
func scanSettings(s *settings.Settings, sp scanSpec, ws string) {
	switch sp.ImageType {
	case "local_archive":
		s.SourceTarPath, s.SourceImage = InWorkspace(sp.Archive, ws), ""
	default:
		s.SourceTarPath, s.SourceImage = "", sp.Image
	}
	switch sp.Severity {
	case "":
		if !s.IsSet("exit-code") {
			s.ScanExitCode = 0
		}
	case "none":
		s.ScanExitCode = 0
	default:
		s.ScanSeverity = strings.Split(sp.Severity, ",")
	}
	s.Progress = "plain"
}

// runCommand runs a Run step: its command in a shell in the workspace,
// or in spec.image (through the Docker daemon) with the workspace at
// /harness, with the stage's variables and the step's envVariables.
func (r *runner) runCommand(ctx context.Context, pd *Planned, ws string, of outputFiles, log io.Writer) error {
	env := map[string]string{}
	// The stage's variables, their secrets masked too.
	var secrets []string
	sc := &Scope{Pipeline: r.plan.Pipeline, Stage: pd.Step.Stage, Step: pd.Step, Seq: r.plan.Seq, Codebase: r.codebase, Secret: r.secret, Secrets: &secrets, ctx: ctx}
	for _, v := range pd.Step.Stage.Variables {
		if _, ok := env[v.Name]; !ok {
			val, err := sc.Expand(v.Value)
			if err != nil {
				return fmt.Errorf("stage variable %s: %w", v.Name, err)
			}
			env[v.Name] = val
		}
	}
	for _, e := range pd.Run.Env {
		env[e.Name] = e.Value
	}
	env["CI"], env["HARNESS_WORKSPACE"] = "true", "/harness"
	// The run's identity (the plan's), whatever the variables say.
	for _, e := range pd.Env {
		env[e.Name] = e.Value
	}
	shell := "sh"
	if pd.Run.Shell == "Bash" {
		shell = "bash"
	}
	set := r.stepMask(pd)
	set.Add(secrets...)
	w := mask.NewWriter(log, set)
	defer w.Flush()
	script := pd.Run.Command
	if len(pd.Run.OutputVars) > 0 {
		// The declared outputVariables, read from the shell when the
		// command is done, as Harness reads them.
		script += outputVarsScript(pd.Run.OutputVars)
	}
	if pd.Run.Image != "" {
		env["DRONE_OUTPUT"], env["HARNESS_OUTPUT_SECRET_FILE"], env["HOIST_OUTPUT_VARIABLES"] = outputMount+"/"+outputFileName, outputMount+"/"+secretFileName, outputMount+"/"+varsFileName
		return masked(set, r.container(ctx, pd, ws, pd.Run.Image, env, env["PLUGIN_ARTIFACT_FILE"] != "", []string{"-v", of.Dir + ":" + outputMount}, []string{shell, "-c", script}, w))
	}
	env["DRONE_OUTPUT"], env["HARNESS_OUTPUT_SECRET_FILE"], env["HOIST_OUTPUT_VARIABLES"] = of.Env, of.Secret, of.Vars
	for k, v := range r.hostEnv() {
		if _, set := env[k]; !set {
			env[k] = v
		}
	}
	env["HARNESS_WORKSPACE"] = ws
	cmd := command(context.Background(), environ(env), shell, "-c", script)
	cmd.Dir = ws
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return masked(set, runBounded(ctx, cmd))
}

// runBounded runs cmd until it ends or ctx does; then its whole process
// group gets SIGTERM, and SIGKILL 10 s later.
func runBounded(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	return ctx.Err()
}

// containerStep runs a Build and Push step in hoist's plugin image, as a
// CI runner runs it: the workspace at /harness, exactly the step's
// environment (and, with --local, the routes to the local registries).
func (r *runner) containerStep(ctx context.Context, pd *Planned, ws string, of outputFiles, log io.Writer, rep *StepReport) error {
	image := r.o.Images[pd.Tool]
	if image == "" {
		return fmt.Errorf("no plugin image for %s steps (--%s-image)", pd.Tool, pd.Tool)
	}
	env := map[string]string{}
	for _, e := range pd.Env {
		env[e.Name] = e.Value
	}
	if len(r.routes) > 0 {
		var routes []string
		for _, h := range slices.Sorted(maps.Keys(r.routes)) {
			routes = append(routes, h+"="+r.routes[h])
		}
		env["PLUGIN_REGISTRY_ROUTES"] = strings.Join(routes, ",")
	}
	// The step's outputs (DRONE_OUTPUT, as Harness gives plugin steps):
	// the report's digest and references, and the later steps' outputs.
	if of.Own == "" {
		env["DRONE_OUTPUT"] = outputMount + "/" + outputFileName
	}
	env["HARNESS_OUTPUT_SECRET_FILE"] = outputMount + "/" + secretFileName
	set := r.stepMask(pd)
	w := mask.NewWriter(log, set)
	defer w.Flush()
	runArgs := []string{"-v", of.Dir + ":" + outputMount}
	if pd.Tool == "buildkit" {
		// BuildKit runs its engine in the step's container, which needs
		// what a CI runner's privileged BuildKit step has: mounts and
		// namespaces (the capabilities and profiles below are the least
		// of it that works where --privileged is refused).
		runArgs = append(runArgs, buildkitContainer...)
	}
	outFile := of.Env
	// The artifact file's volume, by the step's typed settings.
	addon := pd.Settings != nil && pd.Settings.ArtifactFile != ""
	err := r.container(ctx, pd, ws, image, env, addon, runArgs, nil, w)
	if out, rerr := settings.ReadDotenv(outFile); rerr == nil {
		containerReport(rep, pd, out, ws, err == nil)
	}
	return masked(set, err)
}

// containerReport records what a step run in a container did, from its
// outputs (DRONE_OUTPUT): the digest, the references when the step
// pushes (its typed settings say so), the tarball when it succeeded.
func containerReport(rep *StepReport, pd *Planned, out map[string]string, ws string, ok bool) {
	rep.Digest = out["digest"]
	if pd.Pushes {
		for _, ref := range strings.Split(out["IMAGE_REFS"], ",") {
			if ref != "" {
				rep.Pushed = append(rep.Pushed, Pushed{Ref: ref, Digest: rep.Digest})
			}
		}
	}
	if t := out["IMAGE_TAR_PATH"]; t != "" && ok {
		rep.Tarballs = append(rep.Tarballs, wsPath(t, ws))
	}
}

// container runs image with the workspace at /harness through the
// Docker daemon; the container is removed when it ends or ctx does.
// With addon, the container gets a volume at /addon (where a Kubernetes
// step writes its artifact file).
func (r *runner) container(ctx context.Context, pd *Planned, ws, image string, env map[string]string, addon bool, runArgs, cmdline []string, w io.Writer) error {
	cname := fmt.Sprintf("hoist-%s-%d-%s-%s-%d", r.plan.Pipeline.Identifier, r.plan.Seq, pd.Step.Stage.Identifier, pd.Step.Identifier, time.Now().UnixNano()%1e6)
	cname = strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			return c
		}
		return '-'
	}, cname)
	args := append([]string{"run", "--rm", "--name", cname, "--network", "host", "-v", ws + ":/harness", "-w", "/harness"}, runArgs...)
	if addon {
		// Kubernetes steps write their artifact file under /addon, a
		// volume of the pod beside the workspace.
		addon := filepath.Join(r.root, ".addon", pd.Step.Stage.Identifier, pd.Step.Identifier)
		if err := os.MkdirAll(addon, 0o755); err != nil {
			return err
		}
		args = append(args, "-v", addon+":/addon")
	}
	var envFile strings.Builder
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if strings.ContainsAny(env[k], "\n") {
			return fmt.Errorf("%s holds a line break, which a container's environment file cannot pass", k)
		}
		envFile.WriteString(k + "=" + env[k] + "\n")
	}
	// The environment goes in a file (mode 0600, removed after), not on
	// the command line, where any user could read the secrets.
	f, err := os.CreateTemp(r.temp, "env-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(envFile.String()); err != nil {
		f.Close()
		return err
	}
	f.Close()
	// "--" ends docker run's flags: the image is never read as one.
	args = append(args, "--env-file", f.Name(), "--", image)
	args = append(args, cmdline...)
	cmd := command(context.Background(), r.dockerEnv(), "docker", args...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = runBounded(ctx, cmd)
	if ctx.Err() != nil {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		command(rmCtx, cmd.Env, "docker", "rm", "-f", cname).Run()
	}
	return err
}

// ErrImage marks a plugin image or Docker daemon that is not there.
var ErrImage = errors.New("plugin image unavailable")

// checkImages makes sure, before anything runs, that the Docker daemon
// answers and holds the plugin images the steps run in.
func (r *runner) checkImages(ctx context.Context) error {
	need := map[string]bool{}
	for _, pd := range r.plan.Steps {
		if pd.Kind == "build" && (pd.Tool == "kaniko" || r.o.Isolation == "container") {
			need[r.o.Images[pd.Tool]] = true
		}
	}
	for _, image := range slices.Sorted(maps.Keys(need)) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		cmd := command(ctx, r.dockerEnv(), "docker", "image", "inspect", "--format", "{{.Id}}", image)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			msg := strings.TrimSpace(string(out))
			if strings.Contains(msg, "No such image") {
				return fmt.Errorf("%w: %s is not in the Docker daemon: make images builds hoist's plugin images, or name yours with --kaniko-image / --buildkit-image", ErrImage, image)
			}
			return fmt.Errorf("%w: %s: docker image inspect: %v: %s (Kubernetes stages and --isolation container run steps in hoist's plugin images through the Docker daemon at DOCKER_HOST)", ErrImage, image, err, msg)
		}
	}
	return nil
}

// command is name run with env (NAME=value entries), looked for on env's
// PATH, not on hoist's own (which exec.Command reads): a step's programs
// are found as its runner would find them.
func command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	path, ok := envlist.LookPath(name, envlist.Value(env, "PATH"))
	if !ok {
		path = name
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	if !ok {
		cmd.Err = fmt.Errorf("%s: not found on the step's PATH (%s)", name, envlist.Value(env, "PATH"))
	}
	return cmd
}

// dockerEnv is the docker CLI's environment.
func (r *runner) dockerEnv() []string {
	m := r.hostEnv()
	delete(m, "TMPDIR")
	if r.o.Docker != "" {
		m["DOCKER_HOST"] = r.o.Docker
	}
	return environ(m)
}

// wsPath is where a step's path is on this machine: /harness/... and
// relative paths are in the workspace.
func wsPath(p, ws string) string {
	p = InWorkspace(p, ws)
	if !filepath.IsAbs(p) {
		p = filepath.Join(ws, p)
	}
	return p
}

// buildkitContainer are the docker run flags a BuildKit step's container
// gets.
var buildkitContainer = []string{"--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--security-opt", "seccomp=unconfined",
	"--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"}
