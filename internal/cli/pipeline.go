package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/gitcmd"
	"github.com/hoist-build/hoist/internal/pipeline"
	"github.com/hoist-build/hoist/internal/settings"
)

// pipelineFlags are the flags of hoist pipeline run.
type pipelineFlags struct {
	local, keep                 bool
	connectors, secrets, report string
	workspace, isolation        string
	kanikoImage, buildkitImage  string
	registryBinary, sequenceID  string
	state                       string
	routes                      []string
}

func pipelineCommand(ctx context.Context, env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Run or validate a CI pipeline YAML (Build and Push, AquaTrivy and Run steps) on this machine",
		Long: `hoist pipeline runs the stages of a CI pipeline file (the Harness CI YAML of
the Build and Push steps: BuildAndPushDockerRegistry, -ECR, -GAR, -GCR,
-ACR, AquaTrivy, Run) here, on hoist's step engine, so that a build-only /
scan / push-only pipeline can be tried, debugged and tested before it is
committed. It is for one machine, not a CI server: see docs/pipelines.md.`,
	}
	var f pipelineFlags
	run := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a pipeline: against local registries (--local) or real ones (--connectors)",
		Example: `  hoist pipeline run examples/pipelines/build-scan-push.yaml --local
  hoist pipeline run pipeline.yaml --connectors connectors.yaml --secrets secrets.env --report report.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := noStepSettings(cmd); err != nil {
				return err
			}
			return runPipeline(ctx, env, args[0], f)
		},
	}
	fl := run.Flags()
	fl.BoolVar(&f.local, "local", false, "start one local registry per registry the pipeline pushes to and send every reference on those hosts there (no credentials needed)")
	fl.BoolVar(&f.keep, "keep", false, "with --local, leave the local registries running and print their addresses; keep the workspaces")
	fl.StringVar(&f.connectors, "connectors", "", "connectors file: each connectorRef's registry kind and credentials (docs/pipelines.md)")
	fl.StringVar(&f.secrets, "secrets", "", "secrets file (NAME=value lines) for <+secrets.getValue(\"NAME\")>; the environment is looked up after it")
	fl.StringVar(&f.report, "report", "", "write the run's report as JSON to this file")
	fl.StringVar(&f.workspace, "workspace", "", "directory for the stages' workspaces (default: a temporary one, removed at the end unless --keep)")
	fl.StringVar(&f.isolation, "isolation", "process", "process: BuildKit steps run in this process; container: every Build and Push step runs in hoist's plugin image, as a CI runner runs it")
	fl.StringVar(&f.kanikoImage, "kaniko-image", "", "hoist's Kaniko plugin image, for Kubernetes stages (default hoist/kaniko:dev, or :VERSION for a release)")
	fl.StringVar(&f.buildkitImage, "buildkit-image", "", "hoist's BuildKit plugin image, for --isolation container (default hoist/buildkit:dev, or :VERSION for a release)")
	fl.StringVar(&f.registryBinary, "registry-binary", "", "the distribution registry executable for --local (default: docker-registry or registry on PATH)")
	fl.StringVar(&f.sequenceID, "sequence-id", "", "the value of <+pipeline.sequenceId> (default: the pipeline's counter in the state directory, incremented)")
	fl.StringVar(&f.state, "state", ".hoist", "hoist's state directory (the sequence counters)")
	fl.StringArrayVar(&f.routes, "route", nil, "HOST=https://127.0.0.1:PORT: reach registry HOST at that loopback address over HTTPS, certificate checked for HOST, login as usual (repeatable; for stand-ins and tests, like curl's --resolve)")

	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "List every problem of a pipeline at once, with line and column; exit 2 when there is one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := noStepSettings(cmd); err != nil {
				return err
			}
			file := abs(env, args[0])
			p, err := pipeline.Parse(file)
			var pl *pipeline.Plan
			if p != nil {
				pl, err = pipeline.MakePlan(ctx, p, pipeline.PlanOptions{Seq: 1, Codebase: pipeline.ReadCodebase(ctx, gitOf(env), env.WorkDir),
					Connectors: nil, BuildxOnK8: buildxOnK8(env)})
			}
			if err != nil {
				return pipelineError(err)
			}
			n := 0
			for _, g := range p.Stages {
				for _, st := range g {
					for _, sg := range st.Steps {
						n += len(sg)
					}
				}
			}
			fmt.Fprintf(env.Stdout, "%s: ok (%d stages, %d steps)\n", args[0], len(p.Stages), n)
			if len(p.Ignored) > 0 {
				fmt.Fprintln(env.Stdout, "accepted, not acted on:")
				for _, f := range p.Ignored {
					fmt.Fprintln(env.Stdout, "  "+f)
				}
			}
			for _, w := range pl.WarningLines() {
				fmt.Fprintln(env.Stdout, w)
			}
			return nil
		},
	}
	cmd.AddCommand(run, validate)
	return cmd
}

// noStepSettings refuses a step setting given to hoist pipeline: each
// step's settings come from the pipeline.
func noStepSettings(cmd *cobra.Command) error {
	var set []string
	cmd.InheritedFlags().Visit(func(f *pflag.Flag) { set = append(set, "--"+f.Name) })
	if len(set) > 0 {
		return fmt.Errorf("%w: hoist pipeline takes no step settings (%v): put them in the steps' envVariables", errUsage, set)
	}
	return nil
}

func abs(env Env, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(env.WorkDir, p)
}

func buildxOnK8(env Env) bool {
	v, _ := env.Lookup("CI_USE_BUILDX_ON_K8")
	b, _ := strconv.ParseBool(v)
	return b
}

// pipelineError is the validation error as it is printed: every problem.
func pipelineError(err error) error {
	var probs *pipeline.Problems
	if errors.As(err, &probs) {
		return fmt.Errorf("%w: %s", settings.ErrInvalid, probs.Error())
	}
	return err
}

func runPipeline(ctx context.Context, env Env, file string, f pipelineFlags) error {
	p, err := pipeline.Parse(abs(env, file))
	if p == nil {
		return pipelineError(err)
	}
	o := pipeline.RunOptions{
		Local: f.local, Keep: f.keep, RegistryBinary: f.registryBinary,
		Lookup: env.Lookup, Environ: env.Environ, State: abs(env, f.state), Codebase: env.WorkDir, TempDir: env.TempDir,
		BuildxOnK8: buildxOnK8(env), Version: Version, Stdout: env.Stdout, Stderr: env.Stderr,
		Images:   map[string]string{"kaniko": "hoist/kaniko:" + imageTag(), "buildkit": "hoist/buildkit:" + imageTag()},
		ExitCode: func(err error) int { return exitCode(ctx, err) },
		Logf:     func(format string, a ...any) { fmt.Fprintf(env.Stderr, "hoist: "+format+"\n", a...) },
	}
	if v, ok := env.Lookup("DOCKER_HOST"); ok {
		o.Docker = v
	}
	if f.kanikoImage != "" {
		o.Images["kaniko"] = f.kanikoImage
	}
	if f.buildkitImage != "" {
		o.Images["buildkit"] = f.buildkitImage
	}
	if f.workspace != "" {
		o.Workspace = abs(env, f.workspace)
	}
	for _, rt := range f.routes {
		h, a, ok := strings.Cut(rt, "=")
		if !ok || h == "" || a == "" {
			return fmt.Errorf("%w: --route %q: want HOST=https://127.0.0.1:PORT", errUsage, rt)
		}
		if o.Routes == nil {
			o.Routes = map[string]string{}
		}
		o.Routes[h] = a
	}
	switch f.isolation {
	case "process":
	case "container":
		o.Isolation = "container"
	default:
		return fmt.Errorf("%w: --isolation %q: want process or container", errUsage, f.isolation)
	}
	if f.sequenceID != "" {
		n, err := strconv.Atoi(f.sequenceID)
		if err != nil || n < 1 {
			return fmt.Errorf("%w: --sequence-id %q: want a positive number", errUsage, f.sequenceID)
		}
		o.SequenceID = n
	}
	if f.secrets != "" {
		if o.Secrets, err = settings.ReadDotenv(abs(env, f.secrets)); err != nil {
			return fmt.Errorf("%w: --secrets: %w", errUsage, err)
		}
	}
	if f.connectors != "" {
		if f.local {
			return fmt.Errorf("%w: --local and --connectors exclude each other: --local stands local registries in for every registry, --connectors pushes to the real ones", errUsage)
		}
		if o.Connectors, err = pipeline.ReadConnectors(abs(env, f.connectors)); err != nil {
			return fmt.Errorf("%w: %w", settings.ErrInvalid, err)
		}
	} else if !f.local {
		return fmt.Errorf("%w: say where the images go: --local (local registries, no credentials) or --connectors FILE (the real registries)", errUsage)
	}
	rep, err := pipeline.Run(ctx, p, o)
	if len(rep.Steps) > 0 {
		fmt.Fprintln(env.Stderr, "summary:")
		rep.Summary(env.Stderr)
	}
	if f.report != "" && rep.Sequence > 0 {
		if werr := rep.Write(files.Workspace(env.WorkDir), abs(env, f.report)); werr != nil && err == nil {
			err = fmt.Errorf("--report: %w", werr)
		}
	}
	if err != nil {
		var probs *pipeline.Problems
		if errors.As(err, &probs) {
			return pipelineError(err)
		}
		if errors.Is(err, pipeline.ErrStep) {
			for _, s := range rep.Steps {
				if s.Status == "Failed" {
					return &stepExit{err: err, code: s.ExitCode}
				}
			}
		}
		return err
	}
	return nil
}

// imageTag is the tag of hoist's plugin images that match this hoist: a
// release's version, else dev (what make images builds).
func imageTag() string {
	if strings.HasPrefix(Version, "v") && !strings.Contains(Version, "dirty") {
		return Version
	}
	return "dev"
}

// stepExit is a failed pipeline: hoist exits with its first failed step's
// exit code.
type stepExit struct {
	err  error
	code int
}

func (e *stepExit) Error() string { return e.err.Error() }
func (e *stepExit) Unwrap() error { return e.err }

// gitOf is the git of hoist's own PATH (gitcmd: absolute directories
// only), for the checkout.
func gitOf(env Env) gitcmd.Git {
	p, _ := env.Lookup("PATH")
	return gitcmd.Find(p)
}
