package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/joho/godotenv"

	"github.com/hoist-build/hoist/internal/files"
	"github.com/hoist-build/hoist/internal/settings"
)

// OutputRef is a step's output variable named by an expression: the
// variables the step wrote to its DRONE_OUTPUT file (or to
// HARNESS_OUTPUT_SECRET_FILE), as Harness reads them once the step
// succeeded.
type OutputRef struct {
	// Expr is the expression as written, inside <+ and >.
	Expr string
	// Stage is the stage the expression names, "" for the stage where it
	// stands.
	Stage string
	Step  string
	Name  string
}

// The forms Harness documents for a step's output variable (its Run step
// reference, "Reference an output variable"): in the same stage,
// steps.ID.output.outputVariables.NAME and
// execution.steps.ID.output.outputVariables.NAME; in any stage,
// stages.STAGE.spec.execution.steps.ID... and
// pipeline.stages.STAGE.spec.execution.steps.ID....
var outputRe = regexp.MustCompile(`^(?:steps|execution\.steps|(?:pipeline\.)?stages\.([A-Za-z_][A-Za-z0-9_]*)\.spec\.execution\.steps)\.([A-Za-z_][A-Za-z0-9_]*)\.output\.outputVariables\.([A-Za-z_][A-Za-z0-9_]*)$`)

// OutputForms are the expressions of a step's output hoist resolves, for
// docs and errors.
var OutputForms = []string{
	"steps.STEP.output.outputVariables.NAME", "execution.steps.STEP.output.outputVariables.NAME",
	"stages.STAGE.spec.execution.steps.STEP.output.outputVariables.NAME", "pipeline.stages.STAGE.spec.execution.steps.STEP.output.outputVariables.NAME",
}

// OutputPlaceholder stands for a step's output while the pipeline is
// planned, before any step ran: a value a tag, a repository path and a
// command all take. A setting whose value holds it is checked when the
// step is about to run, with the real value.
const OutputPlaceholder = "hoist-output-placeholder"

// MaxOutputFile is the most a step's DRONE_OUTPUT file (and its secret
// outputs file) may hold: Harness bounds one output value to 256 KiB;
// hoist reads a whole file of up to 1 MiB, no more, so no step can make
// the steps after it hold more (docs/pipelines.md, Limits).
const MaxOutputFile = 1 << 20

// MaxOutputVars is the most variables one step's outputs may hold, all
// its files together: every secret output joins the run's mask, which
// every later line of the log is passed through, so no step may make
// the steps after it slow by writing thousands (docs/pipelines.md,
// Limits).
const MaxOutputVars = 256

// parseOutputRef reads e as a step's output: ok when it is one, an error
// when it names outputVariables in a form hoist does not resolve.
func parseOutputRef(e string) (OutputRef, bool, error) {
	if m := outputRe.FindStringSubmatch(e); m != nil {
		return OutputRef{Expr: e, Stage: m[1], Step: m[2], Name: m[3]}, true, nil
	}
	if !strings.Contains(e, ".output.outputVariables") && !strings.Contains(e, ".outputVariables[") {
		return OutputRef{}, false, nil
	}
	why := ""
	if strings.Count(e, "steps.") > 1 {
		why = " (step groups are not supported)"
	}
	return OutputRef{}, false, fmt.Errorf("<+%s> is not a step output hoist resolves%s: write <+%s>", clip(e), why, strings.Join(OutputForms, ">, <+"))
}

// output is a step's output variable where the scope stands: the
// reference checked (the step exists and runs before this one), then,
// when resolving, its value.
func (sc *Scope) output(ref OutputRef, resolve bool) (string, error) {
	if sc.Step == nil || sc.outputs == nil {
		return "", fmt.Errorf("<+%s> is a step's output, known once that step has run: hoist resolves it in a step's spec (a command, a setting, envVariables), not in a variable or a condition", clip(ref.Expr))
	}
	if err := sc.checkOutputRef(ref); err != nil {
		return "", err
	}
	if sc.used != nil && !slices.Contains(*sc.used, ref) {
		*sc.used = append(*sc.used, ref)
	}
	if !resolve {
		return "", nil
	}
	return sc.outputs(ref)
}

// checkOutputRef reports a reference to a step that is not there, or
// that does not run before the step where the reference stands: the
// same step, a step of its parallel group, a later step, a stage that
// runs at the same time or later.
func (sc *Scope) checkOutputRef(ref OutputRef) error {
	stageGroup := func(id string) (int, *Stage) {
		for i, g := range sc.Pipeline.Stages {
			for _, st := range g {
				if st.Identifier == id {
					return i, st
				}
			}
		}
		return -1, nil
	}
	here, _ := stageGroup(sc.Stage.Identifier)
	target := sc.Stage
	if ref.Stage != "" && ref.Stage != sc.Stage.Identifier {
		at, st := stageGroup(ref.Stage)
		switch {
		case st == nil:
			var ids []string
			for _, g := range sc.Pipeline.Stages {
				for _, st := range g {
					ids = append(ids, st.Identifier)
				}
			}
			return fmt.Errorf("<+%s>: the pipeline has no stage %s (it has: %s)", clip(ref.Expr), ref.Stage, clip(strings.Join(ids, ", ")))
		case at == here:
			return fmt.Errorf("<+%s>: stage %s runs in parallel with stage %s, not before it: its steps' outputs are not there yet", clip(ref.Expr), ref.Stage, sc.Stage.Identifier)
		case at > here:
			return fmt.Errorf("<+%s>: stage %s runs after stage %s: its steps' outputs are not there yet", clip(ref.Expr), ref.Stage, sc.Stage.Identifier)
		}
		target = st
	}
	stepGroup := func(st *Stage, id string) int {
		for i, g := range st.Steps {
			for _, s := range g {
				if s.Identifier == id {
					return i
				}
			}
		}
		return -1
	}
	at := stepGroup(target, ref.Step)
	if at < 0 {
		var ids []string
		for _, g := range target.Steps {
			for _, s := range g {
				ids = append(ids, s.Identifier)
			}
		}
		return fmt.Errorf("<+%s>: stage %s has no step %s (it has: %s)", clip(ref.Expr), target.Identifier, ref.Step, clip(strings.Join(ids, ", ")))
	}
	if target != sc.Stage {
		return nil
	}
	mine := stepGroup(sc.Stage, sc.Step.Identifier)
	switch {
	case ref.Step == sc.Step.Identifier:
		return fmt.Errorf("<+%s>: a step cannot read its own outputs: they are there once it has run", clip(ref.Expr))
	case at == mine:
		return fmt.Errorf("<+%s>: step %s runs in parallel with step %s, not before it: its outputs are not there yet", clip(ref.Expr), ref.Step, sc.Step.Identifier)
	case at > mine:
		return fmt.Errorf("<+%s>: step %s runs after step %s: its outputs are not there yet", clip(ref.Expr), ref.Step, sc.Step.Identifier)
	}
	return nil
}

// placeholderOutputs resolves every output to OutputPlaceholder: the plan
// is made before any step ran.
func placeholderOutputs(OutputRef) (string, error) { return OutputPlaceholder, nil }

// stepOutputs are what one step left for the steps after it.
type stepOutputs struct {
	// status is the step's: Success, Failed, Skipped, Cancelled.
	status string
	vars   map[string]string
	// err is why the outputs could not be read.
	err error
}

// outputStore holds the outputs of the run's steps, by stage.step.
type outputStore struct {
	mu    sync.Mutex
	steps map[string]stepOutputs
}

func (o *outputStore) set(stage, step string, so stepOutputs) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.steps == nil {
		o.steps = map[string]stepOutputs{}
	}
	o.steps[stage+"."+step] = so
}

func (o *outputStore) get(stage, step string) (stepOutputs, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	so, ok := o.steps[stage+"."+step]
	return so, ok
}

// resolver resolves the outputs a step of stage st names, from what the
// steps before it left.
func (o *outputStore) resolver(st *Stage) func(OutputRef) (string, error) {
	return func(ref OutputRef) (string, error) {
		stage := ref.Stage
		if stage == "" {
			stage = st.Identifier
		}
		so, ok := o.get(stage, ref.Step)
		switch {
		case !ok:
			return "", fmt.Errorf("<+%s>: step %s of stage %s did not run", clip(ref.Expr), ref.Step, stage)
		case so.status != "Success":
			return "", fmt.Errorf("<+%s>: step %s of stage %s did not succeed (%s): a step's outputs are read only when it succeeds, as Harness reads them", clip(ref.Expr), ref.Step, stage, so.status)
		case so.err != nil:
			return "", fmt.Errorf("<+%s>: the outputs of step %s of stage %s: %w", clip(ref.Expr), ref.Step, stage, so.err)
		}
		v, ok := so.vars[ref.Name]
		if !ok {
			names := slices.Sorted(func(yield func(string) bool) {
				for k := range so.vars {
					if !yield(k) {
						return
					}
				}
			})
			wrote := "nothing"
			if len(names) > 0 {
				wrote = strings.Join(names, ", ")
			}
			return "", fmt.Errorf("<+%s>: step %s of stage %s wrote no %s to its DRONE_OUTPUT (it wrote: %s)", clip(ref.Expr), ref.Step, stage, ref.Name, clip(wrote))
		}
		return v, nil
	}
}

// outputFiles are a step's output files on this machine: its DRONE_OUTPUT
// and HARNESS_OUTPUT_SECRET_FILE, in a directory of its own under the
// run's root (outside the workspace), emptied before the step runs: what
// an earlier run left there says nothing of this one. A Build and Push
// step whose own variables name a DRONE_OUTPUT keeps it (a path in the
// workspace): its outputs are read from there.
type outputFiles struct {
	Dir, Env, Secret string
	// Vars holds a Run step's declared output variables, NUL-separated
	// name and value pairs, written by the lines hoist appends to its
	// command (runCommand).
	Vars string
	// Own is the step's own DRONE_OUTPUT as its variables give it, ""
	// for none; Root is the directory Env is read in, through no link
	// out of it (Dir, or the workspace for the step's own).
	Own, Root string
}

const (
	outputFileName = "output.env"
	secretFileName = "secret-output.env"
	varsFileName   = "output-variables"
	// outputMount is where a step run in a container finds its output
	// directory.
	outputMount = "/hoist-output"
)

func (r *runner) outputFiles(pd *Planned, ws string) (outputFiles, error) {
	dir := filepath.Join(r.root, ".outputs", pd.Step.Stage.Identifier, pd.Step.Identifier)
	if err := os.RemoveAll(dir); err != nil {
		return outputFiles{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return outputFiles{}, err
	}
	of := outputFiles{Dir: dir, Env: filepath.Join(dir, outputFileName), Secret: filepath.Join(dir, secretFileName), Vars: filepath.Join(dir, varsFileName), Root: dir}
	if v, ok := pd.Lookup("DRONE_OUTPUT"); ok && v != "" {
		of.Own, of.Env, of.Root = v, wsPath(v, ws), ws
	}
	return of, nil
}

// readOutputs reads a step's output files: regular files of at most
// MaxOutputFile bytes, read through no link out of the step's output
// directory, parsed as the runners parse them (godotenv). The secret
// outputs join the run's mask, so they are masked wherever a later step
// prints them.
func (r *runner) readOutputs(of outputFiles, declared []outputVar) stepOutputs {
	vars := map[string]string{}
	secret := map[string]bool{} // declared type Secret
	var masked []string
	tooMany := stepOutputs{err: fmt.Errorf("its outputs hold more than %d variables, hoist's limit for a step's outputs (docs/pipelines.md, Limits)", MaxOutputVars)}
	if len(declared) > 0 {
		b, err := files.Workspace(of.Dir).ReadRegular(of.Vars, MaxOutputFile)
		switch {
		case errors.Is(err, files.ErrTooLarge):
			return stepOutputs{err: fmt.Errorf("its output variables hold more than %d MiB, hoist's limit for a step's outputs (docs/pipelines.md, Limits)", MaxOutputFile>>20)}
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return stepOutputs{err: fmt.Errorf("read its output variables: %w", err)}
		}
		for _, d := range declared {
			secret[d.Name] = secret[d.Name] || d.Secret
		}
		parts := strings.Split(string(b), "\x00")
		for i := 0; i+1 < len(parts); i += 2 {
			for _, d := range declared {
				if d.Name == parts[i] {
					if d.Secret {
						masked = append(masked, parts[i+1])
					}
					vars[d.Name] = parts[i+1]
				}
			}
		}
	}
	for _, f := range []string{of.Env, of.Secret} {
		root := of.Dir
		if f == of.Env {
			root = of.Root
		}
		b, err := files.Workspace(root).ReadRegular(f, MaxOutputFile)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if errors.Is(err, files.ErrTooLarge) {
			return stepOutputs{err: fmt.Errorf("%s holds more than %d MiB, hoist's limit for a step's outputs (docs/pipelines.md, Limits)", filepath.Base(f), MaxOutputFile>>20)}
		}
		if err != nil {
			return stepOutputs{err: fmt.Errorf("read %s: %w", filepath.Base(f), err)}
		}
		m, err := godotenv.Parse(bytes.NewReader(b))
		if err != nil {
			return stepOutputs{err: fmt.Errorf("read %s: %w", filepath.Base(f), err)}
		}
		if len(m) > MaxOutputVars {
			return tooMany
		}
		for k, v := range m {
			if f == of.Secret {
				masked = append(masked, v)
			}
			if _, set := vars[k]; !set {
				vars[k] = v
				// An output declared Secret is masked wherever its
				// value was found.
				if secret[k] && f != of.Secret {
					masked = append(masked, v)
				}
			}
		}
		if len(vars) > MaxOutputVars {
			return tooMany
		}
	}
	r.mask.Add(masked...)
	return stepOutputs{status: "Success", vars: vars}
}

// withOutputs is a step planned again now that the steps before it have
// run: its expressions of other steps' outputs resolved from what those
// steps left, and its settings checked with the real values. A
// reference that cannot be resolved is a problem at its line:col.
func (r *runner) withOutputs(ctx context.Context, pd *Planned) (*Planned, error) {
	if len(pd.Outputs) == 0 {
		return pd, nil
	}
	ps := &parser{probs: &Problems{File: r.plan.Pipeline.File}, ignored: map[string]bool{}}
	var secrets []string
	sc := &Scope{Pipeline: r.plan.Pipeline, Stage: pd.Step.Stage, Step: pd.Step, Seq: r.plan.Seq, Codebase: r.codebase, Secret: r.secret, Secrets: &secrets, ctx: ctx,
		outputs: r.outputs.resolver(pd.Step.Stage)}
	np := planStep(ps, sc, pd.Step, r.plan.opts)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ps.probs.Items) > 0 {
		ps.probs.sort()
		return nil, fmt.Errorf("%w: %w", settings.ErrInvalid, ps.probs)
	}
	np.Secrets, np.Notes, np.Outputs = secrets, pd.Notes, pd.Outputs
	return np, nil
}

// outputVarsScript is what hoist appends to a Run step's command that
// declares outputVariables: when the command's last status is 0, each
// declared shell variable that is set is written, name and value
// NUL-separated (no value can hold a NUL), to the file
// $HOIST_OUTPUT_VARIABLES; the step's status stays the command's.
func outputVarsScript(vars []outputVar) string {
	var b strings.Builder
	b.WriteString("\n__hoist_status=$?\nif [ \"$__hoist_status\" -eq 0 ]; then\n")
	for _, v := range vars {
		// Names are shell variable names (runSpec checks them).
		fmt.Fprintf(&b, "  if [ -n \"${%s+x}\" ]; then printf '%%s\\0%%s\\0' '%s' \"$%s\" >> \"$HOIST_OUTPUT_VARIABLES\" || exit 1; fi\n", v.Var, v.Name, v.Var)
	}
	b.WriteString("fi\nexit \"$__hoist_status\"\n")
	return b.String()
}
