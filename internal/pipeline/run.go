package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hoist-build/hoist/internal/engine"
	"github.com/hoist-build/hoist/internal/envlist"
	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/gitcmd"
	"github.com/hoist-build/hoist/internal/mask"
)

// RunOptions say how a pipeline runs.
type RunOptions struct {
	// Local starts one local registry per registry the pipeline pushes to
	// and routes every reference on those hosts to it; Keep leaves them
	// (and the workspaces) behind.
	Local, Keep    bool
	RegistryBinary string
	// Connectors give the steps their credentials (without Local).
	Connectors *Connectors
	// Routes send a registry host's requests to a loopback address
	// (PLUGIN_REGISTRY_ROUTES's forms), for every step.
	Routes map[string]string
	// Secrets are the secrets file's values; the environment is looked
	// up after them.
	Secrets map[string]string
	// Lookup is hoist's own environment, and Environ the same as
	// NAME=value entries (what a step run here keeps of it: passthrough).
	Lookup  func(string) (string, bool)
	Environ []string
	// SequenceID overrides <+pipeline.sequenceId> (0: the next one,
	// kept in State).
	SequenceID int
	// State is hoist's state directory of the checkout (.hoist).
	State string
	// Codebase is the checkout a stage with cloneCodebase copies.
	Codebase string
	// Workspace holds the stages' workspaces; "" makes a temporary one,
	// removed at the end unless Keep.
	Workspace string
	TempDir   string
	// BuildxOnK8 is CI_USE_BUILDX_ON_K8: BuildKit on Kubernetes stages.
	BuildxOnK8 bool
	// Version is hoist's version, for the steps' scan records and
	// provenance.
	Version string
	// Isolation "container" runs every Build and Push step in hoist's
	// plugin image; "" (process) runs BuildKit steps in this process.
	Isolation string
	// Images are the plugin images by build tool (kaniko, buildkit).
	Images map[string]string
	// Docker is the Docker daemon's address for containers ("" for the
	// default).
	Docker         string
	Stdout, Stderr io.Writer
	// ExitCode maps a step's error to its exit code.
	ExitCode func(error) int
	// Logf prints the runner's own lines.
	Logf func(string, ...any)
}

// runner is one run of a pipeline.
type runner struct {
	o        RunOptions
	plan     *Plan
	routes   map[string]string
	codebase Codebase
	// git is hoist's git (gitcmd), for the checkout.
	git    gitcmd.Git
	root   string
	temp   string
	out    *lockedWriter
	mu     sync.Mutex
	report *Report
	secret func(string) (string, bool)
	// mask holds every secret the run knows of: the secrets file's
	// values and every value a <+secrets.getValue(...)> resolved to.
	mask *mask.Set
	// engine is the run's BuildKit engine, given to every step that
	// builds in this process (nil when none does).
	engine *engine.Engine
	// outputs are what the steps that ran left for the later ones.
	outputs outputStore
}

// Run validates and runs a pipeline. A pipeline with problems runs
// nothing (the error is *Problems). The report is returned also when a
// step failed; the error says which.
func Run(ctx context.Context, p *Pipeline, o RunOptions) (*Report, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	// Every secret is known before anything is planned: the secrets
	// file's values, and whatever a lookup yields from then on. What the
	// run prints (its own lines and the steps' logs), its report and its
	// errors are masked with them, and every step starts its own mask
	// with them (its provenance records none of them).
	set := mask.NewSet()
	for _, v := range o.Secrets {
		set.Add(v)
	}
	logf := o.Logf
	o.Logf = func(format string, a ...any) { logf("%s", set.String(fmt.Sprintf(format, a...))) }
	out := mask.NewWriter(o.Stderr, set)
	r := &runner{o: o, out: &lockedWriter{w: out}, mask: set, report: &Report{File: p.File, Pipeline: p.Identifier, Ignored: p.Ignored}}
	rep, err := r.run(ctx, p)
	out.Flush()
	r.maskReport()
	return rep, r.masked(err)
}

// run is Run, its output, report and error masked by the caller: the
// plan, the workspace, the local registries and the engine, then the
// stages, then the verdict.
func (r *runner) run(ctx context.Context, p *Pipeline) (*Report, error) {
	start := time.Now()
	if err := r.makePlan(ctx, p); err != nil {
		return r.report, err
	}
	cleanup, err := r.makeRoot()
	defer cleanup()
	if err != nil {
		return r.report, err
	}
	if r.o.Local {
		regs, err := r.startLocal(ctx)
		defer r.stopLocal(ctx, regs)
		if err != nil {
			return r.report, err
		}
	}
	if r.engine, err = r.openEngine(ctx); err != nil {
		return r.report, err
	}
	if r.engine != nil {
		defer r.engine.Close()
	}
	r.runStages(ctx, p)
	r.report.Seconds = time.Since(start).Seconds()
	return r.report, r.verdict(ctx, p)
}

// makePlan plans the run: first with a placeholder sequence (a pipeline
// with problems takes no sequence number), the plugin images checked,
// then with the run's sequence number.
func (r *runner) makePlan(ctx context.Context, p *Pipeline) error {
	o := r.o
	pathList, _ := o.Lookup("PATH")
	r.git = gitcmd.Find(pathList)
	r.codebase = ReadCodebase(ctx, r.git, o.Codebase)
	r.secret = func(n string) (string, bool) {
		v, ok := o.Secrets[n]
		if !ok {
			v, ok = o.Lookup(n)
		}
		if ok {
			r.mask.Add(v)
		}
		return v, ok
	}
	// Each run is an execution of its own, as in Harness: the state its
	// steps leave in the workspace vouches for nothing in another run.
	po := PlanOptions{Seq: max(o.SequenceID, 1), ExecutionID: newExecutionID(), Codebase: r.codebase, Secret: r.secret, Connectors: o.Connectors, BuildxOnK8: o.BuildxOnK8}
	first, err := MakePlan(ctx, p, po)
	if err != nil {
		return err
	}
	r.plan = first
	if err := r.checkImages(ctx); err != nil {
		return err
	}
	seq := o.SequenceID
	if seq == 0 {
		if seq, err = NextSequence(files.Workspace(o.Codebase), o.State, p.Identifier); err != nil {
			return err
		}
	}
	po.Seq = seq
	plan, err := MakePlan(ctx, p, po)
	if err != nil {
		return err
	}
	r.plan, r.report.Sequence = plan, seq
	for h, a := range o.Routes {
		if r.routes == nil {
			r.routes = map[string]string{}
		}
		r.routes[h] = a
	}
	o.Logf("pipeline %s (%s), sequence %d", p.Identifier, p.File, seq)
	if len(p.Ignored) > 0 {
		o.Logf("accepted, not acted on: %s", strings.Join(p.Ignored, ", "))
	}
	for _, w := range plan.WarningLines() {
		o.Logf("%s", w)
	}
	return nil
}

// makeRoot makes the directory of the stages' workspaces (a temporary
// one, removed by cleanup, unless the options name one or Keep) and the
// run's temporary directory in it.
func (r *runner) makeRoot() (cleanup func(), err error) {
	cleanup = func() {}
	if r.root = r.o.Workspace; r.root == "" {
		if r.root, err = os.MkdirTemp(r.o.TempDir, "hoist-pipeline-"); err != nil {
			return cleanup, err
		}
		if !r.o.Keep {
			root := r.root
			cleanup = func() { os.RemoveAll(root) }
		}
	}
	r.report.Workspace = r.root
	r.temp = filepath.Join(r.root, ".tmp")
	return cleanup, os.MkdirAll(r.temp, 0o755)
}

// stopLocal records what the local registries hold in the report, and
// stops them unless Keep.
func (r *runner) stopLocal(ctx context.Context, regs []*LocalRegistry) {
	for _, reg := range regs {
		rr := RegistryReport{Host: reg.Host, Addr: reg.Addr}
		c, err := reg.List(context.WithoutCancel(ctx))
		if err != nil {
			r.o.Logf("warning: %v", err)
		}
		rr.Contents = c
		if r.o.Keep {
			rr.PID = reg.PID
		}
		r.report.Registries = append(r.report.Registries, rr)
	}
	if !r.o.Keep {
		StopLocalRegistries(regs)
	}
}

// runStages runs the stages in order, the members of a parallel group at
// once; a stage's when decides whether it runs.
func (r *runner) runStages(ctx context.Context, p *Pipeline) {
	failed := false
	for _, group := range p.Stages {
		var wg sync.WaitGroup
		results := make([]bool, len(group))
		for i, st := range group {
			run, why := r.shouldRun(st.When, failed, &Scope{Pipeline: p, Stage: st, Seq: r.plan.Seq, Codebase: r.codebase, Secret: r.secret, ctx: ctx})
			if !run {
				// Skipped is not failed: the stages after it run.
				r.skipStage(st, why)
				results[i] = true
				continue
			}
			wg.Add(1)
			go func(i int, st *Stage) {
				defer wg.Done()
				results[i] = r.runStage(ctx, st)
			}(i, st)
		}
		wg.Wait()
		for _, ok := range results {
			failed = failed || !ok
		}
		if ctx.Err() != nil {
			failed = true
		}
	}
}

// verdict is the run's status in the report and its error: cancelled, a
// step failed (which), or none.
func (r *runner) verdict(ctx context.Context, p *Pipeline) error {
	r.report.Status = "Success"
	var failedSteps []string
	for _, s := range r.report.Steps {
		if s.Status == "Failed" || s.Status == "Cancelled" {
			r.report.Status = "Failed"
			failedSteps = append(failedSteps, s.Stage+"."+s.Identifier)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("pipeline %s: %w", p.Identifier, ctx.Err())
	}
	if len(failedSteps) > 0 {
		return fmt.Errorf("%w: pipeline %s: step %s failed", ErrStep, p.Identifier, strings.Join(failedSteps, ", "))
	}
	return nil
}

// masked is err with the run's secrets masked: a *Problems keeps its
// type (the command layer prints its items), every string of it masked
// in place.
func (r *runner) masked(err error) error {
	var probs *Problems
	if errors.As(err, &probs) {
		r.mask.Strings(probs)
		return err
	}
	return mask.Error(r.mask, err)
}

// maskReport masks the whole report: every string it holds (the steps'
// errors and notes, the references pushed to a repository named by a
// secret, the local registries' contents), as the summary prints it and
// --report writes it.
func (r *runner) maskReport() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mask.Strings(r.report)
}

// stepMask is a step's mask: the run's secrets and the step's own.
func (r *runner) stepMask(pd *Planned) *mask.Set {
	m := r.mask.Clone()
	m.Add(pd.Secrets...)
	return m
}

// ErrStep marks a run in which a step failed.
var ErrStep = errors.New("step failed")

func lookupDefault(l func(string) (string, bool), k, def string) string {
	if v, ok := l(k); ok && v != "" {
		return v
	}
	return def
}

// startLocal starts the local registries: one per host a step pushes to
// or a scan step pulls from.
func (r *runner) startLocal(ctx context.Context) ([]*LocalRegistry, error) {
	hosts := r.plan.localHosts()
	if len(hosts) == 0 {
		return nil, nil
	}
	bin, err := findRegistryBinary(r.o.RegistryBinary, envlist.Value(r.o.Environ, "PATH"))
	if err != nil {
		return nil, err
	}
	regs, err := StartLocalRegistries(ctx, bin, filepath.Join(r.root, ".registries"), hosts)
	if err != nil {
		return nil, err
	}
	if r.routes == nil {
		r.routes = map[string]string{}
	}
	for h, a := range Routes(regs) {
		r.routes[h] = a
	}
	for _, reg := range regs {
		r.o.Logf("local registry for %s at %s", reg.Host, reg.Addr)
	}
	return regs, nil
}

// newExecutionID is a run's HARNESS_EXECUTION_ID: 22 URL-safe characters
// (128 random bits), as Harness writes its execution identifiers.
func newExecutionID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
