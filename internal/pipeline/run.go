package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
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

// StepReport is what one step did.
type StepReport struct {
	Stage      string  `json:"stage"`
	Identifier string  `json:"identifier"`
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	Status     string  `json:"status"` // Success, Failed, Skipped, Cancelled
	ExitCode   int     `json:"exitCode"`
	Seconds    float64 `json:"seconds"`
	Digest     string  `json:"digest,omitempty"`
	// Pushed are the references the step pushed, each with its digest.
	Pushed      []Pushed `json:"pushed,omitempty"`
	Tarballs    []string `json:"tarballs,omitempty"`
	ScanRecords []string `json:"scanRecords,omitempty"`
	Error       string   `json:"error,omitempty"`
	Notes       []string `json:"notes,omitempty"`
}

// Pushed is one reference a step pushed.
type Pushed struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// RegistryReport is a local registry and what it holds at the end.
type RegistryReport struct {
	Host     string    `json:"host"`
	Addr     string    `json:"addr"`
	PID      int       `json:"pid,omitempty"` // with --keep
	Contents []Content `json:"contents"`
}

// Report is what a run did (hoist pipeline run --report).
type Report struct {
	File       string           `json:"file"`
	Pipeline   string           `json:"pipeline"`
	Sequence   int              `json:"sequenceId"`
	Status     string           `json:"status"`
	Seconds    float64          `json:"seconds"`
	Workspace  string           `json:"workspace,omitempty"`
	Ignored    []string         `json:"ignored,omitempty"`
	Steps      []*StepReport    `json:"steps"`
	Registries []RegistryReport `json:"registries,omitempty"`
}

// Write writes the report as JSON, whole (a temporary file, then
// renamed); in the checkout ws, no symbolic link that leads out of it is
// followed.
func (r *Report) Write(ws files.Workspace, path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return ws.WriteAtomic(path, append(b, '\n'))
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

// run is Run, its output, report and error masked by the caller.
func (r *runner) run(ctx context.Context, p *Pipeline) (*Report, error) {
	start := time.Now()
	o := r.o
	pathList, _ := o.Lookup("PATH")
	r.git = gitcmd.Find(pathList)
	r.codebase = ReadCodebase(ctx, r.git, o.Codebase)
	secret := func(n string) (string, bool) {
		v, ok := o.Secrets[n]
		if !ok {
			v, ok = o.Lookup(n)
		}
		if ok {
			r.mask.Add(v)
		}
		return v, ok
	}
	r.secret = secret
	// The plan first, with a placeholder sequence: a pipeline with
	// problems takes no sequence number.
	// Each run is an execution of its own, as in Harness: the state its
	// steps leave in the workspace vouches for nothing in another run.
	execID := newExecutionID()
	first, err := MakePlan(ctx, p, PlanOptions{Seq: max(o.SequenceID, 1), ExecutionID: execID, Codebase: r.codebase, Secret: secret, Connectors: o.Connectors, BuildxOnK8: o.BuildxOnK8})
	if err != nil {
		return r.report, err
	}
	r.plan = first
	if err := r.checkImages(ctx); err != nil {
		return r.report, err
	}
	seq := o.SequenceID
	if seq == 0 {
		if seq, err = NextSequence(files.Workspace(o.Codebase), o.State, p.Identifier); err != nil {
			return r.report, err
		}
	}
	plan, err := MakePlan(ctx, p, PlanOptions{Seq: seq, ExecutionID: execID, Codebase: r.codebase, Secret: secret, Connectors: o.Connectors, BuildxOnK8: o.BuildxOnK8})
	if err != nil {
		return r.report, err
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

	if r.root = o.Workspace; r.root == "" {
		if r.root, err = os.MkdirTemp(o.TempDir, "hoist-pipeline-"); err != nil {
			return r.report, err
		}
		if !o.Keep {
			defer os.RemoveAll(r.root)
		}
	}
	r.report.Workspace = r.root
	r.temp = filepath.Join(r.root, ".tmp")
	if err := os.MkdirAll(r.temp, 0o755); err != nil {
		return r.report, err
	}

	if o.Local {
		regs, err := r.startLocal(ctx)
		if err != nil {
			return r.report, err
		}
		defer func() {
			for _, reg := range regs {
				rr := RegistryReport{Host: reg.Host, Addr: reg.Addr}
				c, err := reg.List(context.WithoutCancel(ctx))
				if err != nil {
					o.Logf("warning: %v", err)
				}
				rr.Contents = c
				if o.Keep {
					rr.PID = reg.PID
				}
				r.report.Registries = append(r.report.Registries, rr)
			}
			if !o.Keep {
				StopLocalRegistries(regs)
			}
		}()
	}
	if r.engine, err = r.openEngine(ctx); err != nil {
		return r.report, err
	}
	if r.engine != nil {
		defer r.engine.Close()
	}

	failed := false
	for _, group := range p.Stages {
		var wg sync.WaitGroup
		results := make([]bool, len(group))
		for i, st := range group {
			run, why := r.shouldRun(st.When, failed, &Scope{Pipeline: p, Stage: st, Seq: r.plan.Seq, Codebase: r.codebase, Secret: r.secret, ctx: ctx})
			if !run {
				r.skipStage(st, why)
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
	r.report.Seconds = time.Since(start).Seconds()
	r.report.Status = "Success"
	var failedSteps []string
	for _, s := range r.report.Steps {
		if s.Status == "Failed" || s.Status == "Cancelled" {
			r.report.Status = "Failed"
			failedSteps = append(failedSteps, s.Stage+"."+s.Identifier)
		}
	}
	if ctx.Err() != nil {
		return r.report, fmt.Errorf("pipeline %s: %w", p.Identifier, ctx.Err())
	}
	if len(failedSteps) > 0 {
		return r.report, fmt.Errorf("%w: pipeline %s: step %s failed", ErrStep, p.Identifier, strings.Join(failedSteps, ", "))
	}
	return r.report, nil
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

// shouldRun applies a when: stageStatus (or pipelineStatus) and the
// condition.
func (r *runner) shouldRun(w When, failedBefore bool, sc *Scope) (bool, string) {
	switch w.StageStatus {
	case "Success", "":
		if failedBefore {
			return false, "an earlier step failed (when: Success)"
		}
	case "Failure":
		if !failedBefore {
			return false, "nothing failed before it (when: Failure)"
		}
	}
	if w.Condition != "" {
		ok, err := sc.EvalCondition(w.Condition)
		if err != nil {
			return false, "its condition cannot be evaluated: " + err.Error()
		}
		if !ok {
			return false, fmt.Sprintf("its condition %q is false", w.Condition)
		}
	}
	return true, ""
}

func (r *runner) skipStage(st *Stage, why string) {
	r.o.Logf("stage %s skipped: %s", st.Identifier, why)
	for _, g := range st.Steps {
		for _, s := range g {
			r.add(&StepReport{Stage: st.Identifier, Identifier: s.Identifier, Name: s.Name, Type: s.Type, Status: "Skipped", Notes: []string{"stage skipped: " + why}})
		}
	}
}

func (r *runner) add(s *StepReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.report.Steps = append(r.report.Steps, s)
}

// runStage runs a stage's steps in its own workspace; it reports whether
// every step that ran succeeded.
func (r *runner) runStage(ctx context.Context, st *Stage) bool {
	if st.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, st.Timeout)
		defer cancel()
	}
	ws := filepath.Join(r.root, st.Identifier)
	if err := os.MkdirAll(ws, 0o755); err != nil {
		r.o.Logf("stage %s: workspace: %v", st.Identifier, err)
		return false
	}
	if st.CloneCodebase {
		what, err := CloneCodebase(ctx, r.git, r.o.Codebase, ws)
		if err != nil {
			r.o.Logf("stage %s: %v", st.Identifier, err)
			for _, g := range st.Steps {
				for _, s := range g {
					r.add(&StepReport{Stage: st.Identifier, Identifier: s.Identifier, Name: s.Name, Type: s.Type, Status: "Failed", ExitCode: 1, Error: err.Error()})
				}
			}
			return false
		}
		r.o.Logf("stage %s: workspace %s: cloned %s", st.Identifier, ws, what)
	} else {
		r.o.Logf("stage %s: workspace %s (cloneCodebase is false: empty)", st.Identifier, ws)
	}
	failed := false
	for _, group := range st.Steps {
		var wg sync.WaitGroup
		reps := make([]*StepReport, len(group))
		for i, s := range group {
			sc := &Scope{Pipeline: r.plan.Pipeline, Stage: st, Step: s, Seq: r.plan.Seq, Codebase: r.codebase, Secret: r.secret, ctx: ctx}
			run, why := r.shouldRun(s.When, failed, sc)
			if ctx.Err() != nil {
				run, why = false, "the run was cancelled"
			}
			if !run {
				reps[i] = &StepReport{Stage: st.Identifier, Identifier: s.Identifier, Name: s.Name, Type: s.Type, Status: "Skipped", Notes: []string{why}}
				r.o.Logf("[%s.%s] skipped: %s", st.Identifier, s.Identifier, why)
				continue
			}
			wg.Add(1)
			go func(i int, s *Step) {
				defer wg.Done()
				reps[i] = r.runStep(ctx, r.plan.Steps[s], ws)
			}(i, s)
		}
		wg.Wait()
		for _, rep := range reps {
			r.add(rep)
			if rep.Status == "Failed" || rep.Status == "Cancelled" {
				failed = true
			}
		}
	}
	return !failed
}

// runStep runs one step with its log prefixed by stage.step.
func (r *runner) runStep(ctx context.Context, pd *Planned, ws string) *StepReport {
	s := pd.Step
	rep := &StepReport{Stage: s.Stage.Identifier, Identifier: s.Identifier, Name: s.Name, Type: s.Type, Notes: slices.Clone(pd.Notes)}
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	log := &prefixWriter{w: r.out, prefix: "[" + s.Stage.Identifier + "." + s.Identifier + "] "}
	defer log.Flush()
	for _, n := range pd.Notes {
		fmt.Fprintln(log, r.mask.String(n))
	}
	start := time.Now()
	var err error
	switch pd.Kind {
	case "build":
		if pd.Tool == "kaniko" || r.o.Isolation == "container" {
			err = r.containerStep(ctx, pd, ws, log, rep)
		} else {
			err = r.buildStep(ctx, pd, ws, log, rep)
		}
	case "scan":
		err = r.scanStep(ctx, pd, ws, log, rep)
	case "run":
		err = r.runCommand(ctx, pd, ws, log)
	}
	rep.Seconds = time.Since(start).Seconds()
	// Whatever the step's own mask missed, the run's catches.
	err = mask.Error(r.stepMask(pd), err)
	switch {
	case err == nil:
		rep.Status = "Success"
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		rep.Status, rep.ExitCode, rep.Error = "Failed", 124, fmt.Sprintf("timed out after %s: %v", s.Timeout, err)
	case ctx.Err() != nil:
		rep.Status, rep.ExitCode, rep.Error = "Cancelled", 130, err.Error()
	default:
		rep.Status, rep.Error = "Failed", err.Error()
		rep.ExitCode = 1
		var ee interface{ ExitCode() int }
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			rep.ExitCode = ee.ExitCode()
		} else if r.o.ExitCode != nil {
			rep.ExitCode = r.o.ExitCode(err)
		}
	}
	if err != nil {
		fmt.Fprintf(log, "failed (exit %d): %s\n", rep.ExitCode, strings.ReplaceAll(err.Error(), "\n", "\n  "))
	} else {
		fmt.Fprintf(log, "done in %.1fs\n", rep.Seconds)
	}
	return rep
}

// passthrough are the variables of hoist's own environment a step run in
// this process keeps: where its home, caches and daemon are.
var passthrough = append([]string{"HOME", "PATH", "USER", "TMPDIR", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "DOCKER_HOST", "DOCKER_CONFIG",
	"PLUGIN_ENGINE_DIR", "PLUGIN_BUILDKITD", "SSL_CERT_FILE", "SSL_CERT_DIR"}, envlist.Proxy...)

// processEnv is a step's environment as it runs in this process: the
// runner's, its paths under /harness mapped into the workspace, and
// hoist's own home, caches and daemon.
func (r *runner) processEnv(pd *Planned, ws string) (map[string]string, []string) {
	m := r.hostEnv()
	for _, e := range pd.Env {
		m[e.Name] = InWorkspace(e.Value, ws)
	}
	m["DRONE_WORKSPACE"] = ws
	return m, environ(m)
}

// hostEnv is what a step run on this machine keeps of hoist's own
// environment (passthrough), its temporary directory the run's.
func (r *runner) hostEnv() map[string]string {
	m := map[string]string{}
	for _, e := range envlist.Filter(r.o.Environ, passthrough) {
		k, v, _ := strings.Cut(e, "=")
		if _, seen := m[k]; !seen {
			m[k] = v // the first wins, as in a process's lookup
		}
	}
	m["TMPDIR"] = r.temp
	return m
}

// environ is an environment as sorted NAME=VALUE entries.
func environ(m map[string]string) []string {
	var list []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		list = append(list, k+"="+m[k])
	}
	return list
}

// lockedWriter serializes whole writes of the parallel steps.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixWriter prefixes each line; a partial line waits for its end (at
// most 64 KiB, then it is written as it is).
type prefixWriter struct {
	w      io.Writer
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := slices.Index(p.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(p.buf[:i]), "\r")
		// A progress display redraws with carriage returns: the last
		// state of the line is what a log keeps.
		if j := strings.LastIndexByte(line, '\r'); j >= 0 {
			line = line[j+1:]
		}
		if _, err := io.WriteString(p.w, p.prefix+line+"\n"); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	if len(p.buf) > 64<<10 {
		io.WriteString(p.w, p.prefix+string(p.buf)+"\n")
		p.buf = nil
	}
	return len(b), nil
}

// Flush writes a last partial line.
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		io.WriteString(p.w, p.prefix+string(p.buf)+"\n")
		p.buf = nil
	}
}

// Summary is the run's table: one row per step.
func (r *Report) Summary(w io.Writer) {
	rows := [][]string{{"STAGE", "STEP", "STATUS", "SECONDS", "DIGEST", "DESTINATIONS"}}
	for _, s := range r.Steps {
		var dests []string
		for _, p := range s.Pushed {
			dests = append(dests, p.Ref)
		}
		for _, t := range s.Tarballs {
			dests = append(dests, "tarball "+t)
		}
		for _, t := range s.ScanRecords {
			dests = append(dests, "scan record "+t)
		}
		digest := s.Digest
		if digest == "" {
			digest = "-"
		}
		status := s.Status
		if s.Status == "Failed" {
			status = fmt.Sprintf("Failed (%d)", s.ExitCode)
		}
		rows = append(rows, []string{s.Stage, s.Identifier, status, fmt.Sprintf("%.1f", s.Seconds), digest, strings.Join(dests, ", ")})
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row[:len(row)-1] {
			width[i] = max(width[i], len(c))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, c := range row {
			if i == len(row)-1 {
				b.WriteString(c)
			} else {
				fmt.Fprintf(&b, "%-*s  ", width[i], c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	for _, reg := range r.Registries {
		keep := ""
		if reg.PID > 0 {
			keep = fmt.Sprintf(", running (pid %d; stop it with kill %d)", reg.PID, reg.PID)
		}
		fmt.Fprintf(w, "local registry %s at %s%s:\n", reg.Host, reg.Addr, keep)
		sort.Slice(reg.Contents, func(i, j int) bool { return reg.Contents[i].Ref < reg.Contents[j].Ref })
		for _, c := range reg.Contents {
			fmt.Fprintf(w, "  %s  %s\n", c.Ref, c.Digest)
		}
		if len(reg.Contents) == 0 {
			fmt.Fprintln(w, "  (empty)")
		}
	}
}

// newExecutionID is a run's HARNESS_EXECUTION_ID: 22 URL-safe characters
// (128 random bits), as Harness writes its execution identifiers.
func newExecutionID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
