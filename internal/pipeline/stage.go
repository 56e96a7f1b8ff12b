package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hoist-build/hoist/internal/mask"
)

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
			if rep.Status != "Success" {
				// A step's outputs are read only when it succeeds.
				r.outputs.set(rep.Stage, rep.Identifier, stepOutputs{status: rep.Status})
			}
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
	// The outputs of the steps before it that its spec names, now that
	// they have run; then its output files (DRONE_OUTPUT and
	// HARNESS_OUTPUT_SECRET_FILE, as Harness gives every step).
	var of outputFiles
	np, err := r.withOutputs(ctx, pd)
	if err == nil {
		pd = np
		of, err = r.outputFiles(pd, ws)
	}
	if err == nil {
		switch pd.Kind {
		case "build":
			if pd.Tool == "kaniko" || r.o.Isolation == "container" {
				err = r.containerStep(ctx, pd, ws, of, log, rep)
			} else {
				err = r.buildStep(ctx, pd, ws, of, log, rep)
			}
		case "scan":
			err = r.scanStep(ctx, pd, ws, of, log, rep)
		case "run":
			err = r.runCommand(ctx, pd, ws, of, log)
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if err == nil {
		so := r.readOutputs(of, pd.Run.OutputVars)
		r.outputs.set(s.Stage.Identifier, s.Identifier, so)
		if so.err != nil {
			fmt.Fprintf(log, "warning: %v: the steps that name its outputs fail\n", r.mask.String(so.err.Error()))
		}
	}
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
